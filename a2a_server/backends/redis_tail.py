"""Live tails of the Redis logs: one ``XREAD BLOCK`` connection per process serves every follower.

    followers of task a (at 7, at 9) ─┐
    followers of task b (at 3) ───────┼─► Tail: XREAD BLOCK 5000 COUNT 1000 STREAMS l:a l:b g wake 0-7 0-3 0-c 0-w
    /a2a/events followers (at c) ─────┘        │ each entry is decoded once, handed to every follower past it
                                               ▼
                                         bounded buffer per follower (full: dropped, reads on from the log)

A follower reads its backlog itself (XRANGE in pages), then joins the tail at the id it reached: the tail reads
from that explicit id, so an event committed in between is neither lost nor repeated; replay and live are one
path. A new follower wakes the blocked read with an XADD to this process's wake stream. Connections: the tail
holds one, whatever the number of followers and tasks (the wake XADD and the backlog use the command pool).
A lost connection: the tail retries with backoff (up to 1 s apart) from the same ids; followers wait meanwhile.
A follower's buffer is bounded in entries and in bytes (the raw fields plus a fixed cost per entry), as the
in-process bus is (``bus.py``, ``_Sub``); one that goes past is dropped from the tail and reads on from the log in
pages of about one bound, then joins the tail again where it got to (``follow.py`` does the same in-process).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING

from a2a_server.backends.bus import DEFAULT_BYTE_LIMIT, take_front
from a2a_server.backends.follow import page_events, settled_at, through_settling
from a2a_server.backends.redis_conn import UNAVAILABLE, Client, dedicated_client
from a2a_server.backends.sqlite_schema import KINDS
from a2a_server.model import LoggedEvent, Task, TaskState, new_id
from a2a_server.ports import EventFilter, GlobalEvent

if TYPE_CHECKING:
    from a2a_server.backends.redis_store import RedisStore

log = logging.getLogger("a2a_server.redis")
PAGE = 1000
BLOCK_MS = 5000
# what a raw entry costs in a follower's buffer beyond its fields' bytes (tuple, dict, bytes objects)
ENTRY_OVERHEAD = 400


def entry_bytes(fields: dict[bytes, bytes]) -> int:
    return ENTRY_OVERHEAD + sum(len(k) + len(v) for k, v in fields.items())


def decode_logged(task_id: str, context_id: str, entry_id: bytes, fields: dict[bytes, bytes]) -> LoggedEvent:
    event = KINDS[fields[b"y"].decode()].model_validate_json(fields[b"e"])
    event.task_id, event.context_id = task_id, context_id
    return LoggedEvent(int(entry_id.split(b"-")[1]), event)


def decode_global(cursor: int, f: dict[bytes, bytes]) -> GlobalEvent:
    task_id, context_id = f[b"t"].decode(), f[b"c"].decode()
    logged = decode_logged(task_id, context_id, b"0-" + f[b"n"], f)
    state = TaskState(f[b"s"].decode()) if f.get(b"s") else None
    return GlobalEvent(cursor, task_id, context_id, f[b"k"].decode(), f[b"o"].decode(), state, logged)


class _Sub:
    """One follower's place in the tail: its stream, the id it has, a bounded buffer of raw entries.

    Bounded as the in-process bus is (``bus.py``): in entries, and in bytes for what arrives while the follower
    is busy elsewhere (a stream blocked on a client that does not read) since it last took a batch."""

    def __init__(self, key: str, position: int, limit: int, byte_limit: int = DEFAULT_BYTE_LIMIT) -> None:
        self.key, self.position, self.limit, self.byte_limit = key, position, limit, byte_limit
        self.buffer: deque[tuple[int, dict[bytes, bytes]]] = deque()
        self.sizes: deque[int] = deque()  # the estimate of each buffered entry
        self.buffered_bytes = 0
        self.waiting = True  # until the follower takes a batch, and again whenever it waits for the next one
        self.busy_bytes = 0  # what arrived since it last took a batch, while it was busy
        self.wakeup = asyncio.Event()
        self.dropped = self.closed = False

    def feed(self, entries: list[tuple[int, dict[bytes, bytes]]]) -> bool:
        fresh = [e for e in entries if e[0] > self.position]
        if not fresh:
            return True
        sizes = [entry_bytes(f) for _, f in fresh]
        total = sum(sizes)
        if not self.waiting:
            self.busy_bytes += total
        if len(self.buffer) + len(fresh) > self.limit or self.busy_bytes > self.byte_limit:
            self.dropped = True
            self.buffer.clear()
            self.sizes.clear()
            self.buffered_bytes = 0
            self.wakeup.set()
            return False
        self.buffer.extend(fresh)
        self.sizes.extend(sizes)
        self.buffered_bytes += total
        self.position = fresh[-1][0]
        self.wakeup.set()
        return True

    async def next_batch(self) -> list[tuple[int, dict[bytes, bytes]]] | None:
        self.waiting = True
        while not self.buffer:
            if self.dropped or self.closed:
                return None
            self.wakeup.clear()
            await self.wakeup.wait()
        self.waiting, self.busy_bytes = False, 0
        if self.dropped:
            return None
        # at most the byte bound at a time (at least one entry): a follower that then blocks holds no more
        batch, taken = take_front(self.buffer, self.sizes, self.byte_limit)
        self.buffered_bytes -= taken
        return batch


class Tail:
    """The process's one multiplexed ``XREAD BLOCK`` reader (see the module docstring)."""

    def __init__(
        self, url: str, name: str, commands: Client, prefix: str, buffer_limit: int,
        byte_limit: int = DEFAULT_BYTE_LIMIT,
    ) -> None:  # fmt: skip
        self.url, self.name, self.commands, self.limit, self.byte_limit = url, name, commands, buffer_limit, byte_limit
        self.wake_key = f"{prefix}:wake:{new_id()}"
        self._wake_id = "0-0"
        self._subs: dict[str, list[_Sub]] = {}
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._client: Client | None = None
        self._closed = False
        self._wakes: set[asyncio.Task[None]] = set()
        self._expire_due = 0.0
        self.healthy = True

    def join(self, key: str, position: int) -> _Sub:
        sub = _Sub(key, position, self.limit, self.byte_limit)
        if self._closed:
            sub.closed = True
            return sub
        self._subs.setdefault(key, []).append(sub)
        if self._reader is None:
            self._client = dedicated_client(self.url, self.name)
            self._reader = asyncio.create_task(self._read_forever())
        self._changed.set()
        wake = asyncio.create_task(self._wake())
        self._wakes.add(wake)
        wake.add_done_callback(self._wakes.discard)
        return sub

    def leave(self, sub: _Sub) -> None:
        sub.closed = True
        sub.wakeup.set()
        subs = self._subs.get(sub.key)
        if subs is not None and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.key]

    def followers(self) -> int:
        return sum(len(s) for s in self._subs.values())

    async def _wake(self) -> None:
        try:  # interrupts the blocked XREAD so that it reads the new follower's stream too
            await self.commands.xadd(self.wake_key, {"w": "1"}, maxlen=1)
            if time.monotonic() > self._expire_due:  # a process that dies leaves its wake key for an hour at most
                self._expire_due = time.monotonic() + 600
                await self.commands.expire(self.wake_key, 3600)
        except Exception:  # unreachable or LOADING: the reader is reconnecting and rebuilds its streams anyway
            pass

    async def _read_forever(self) -> None:
        assert self._client is not None
        delay = 0.05
        while not self._closed:
            if not self._subs:
                self._changed.clear()
                await self._changed.wait()
                continue
            streams: dict[str, str] = {k: f"0-{min(s.position for s in subs)}" for k, subs in self._subs.items()}
            streams[self.wake_key] = self._wake_id
            try:
                reply = await self._client.xread(streams, count=PAGE, block=BLOCK_MS)
            except Exception as exc:  # unreachable, LOADING after a restart, anything: the tail must go on
                if self.healthy:
                    log.warning("live tail: lost Redis (%s); reconnecting", exc)
                self.healthy = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if not self.healthy:
                log.info("live tail: Client is back")
            self.healthy, delay = True, 0.05
            for raw_key, entries in reply or []:
                key = raw_key.decode()
                if key == self.wake_key:
                    self._wake_id = entries[-1][0].decode()
                    continue
                parsed = [(int(eid.split(b"-")[1]), fields) for eid, fields in entries]
                for sub in list(self._subs.get(key, ())):
                    if not sub.feed(parsed):
                        self.leave(sub)
                        sub.closed = False  # dropped, not closed: its owner sees ``dropped``

    async def close(self) -> None:
        self._closed = True
        for subs in list(self._subs.values()):
            for sub in list(subs):
                self.leave(sub)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose(close_connection_pool=True)
        with contextlib.suppress(*UNAVAILABLE):
            await self.commands.delete(self.wake_key)


class RedisFollow:
    """``TaskFollow`` on Redis (see ``ports.TaskFollow`` and the module docstring)."""

    def __init__(self, store: RedisStore, tail: Tail, task_id: str, after: int, fresh: bool) -> None:
        self._store, self._tail = store, tail
        self.task_id, self.after, self.fresh = task_id, after, fresh
        self._snapshot: Task | bytes | None = None  # parsed only when asked for (a blocking send asks once)
        self._context: str | None = None
        # a fresh follower joins now: nothing is logged after ``after`` yet, and the run may start at once
        self._sub: _Sub | None = tail.join(store.lkey(task_id), after) if fresh else None
        self._closed = False
        self.catch_ups = 0  # how often it fell its buffer's bound behind and read on from the log
        self._page = page_events(tail.byte_limit)

    @property
    def snapshot(self) -> Task | None:
        if isinstance(self._snapshot, bytes):
            self._snapshot = Task.model_validate_json(self._snapshot)
        return self._snapshot

    async def batches(self) -> AsyncIterator[list[LoggedEvent]]:
        last = self.after
        replay = True  # the first read, of the backlog the caller asked for
        while True:
            if self._sub is None:
                # the log in pages (the backlog; or, after a drop, what the follower fell behind), then the tail
                newest: LoggedEvent | None = None
                while True:
                    page, snap = await self._store.read_page(self.task_id, last, self._page)
                    self._snapshot = snap or self._snapshot
                    full = len(page) == self._page
                    if not replay:  # a catch-up ends where a live follower would have: at the first settling event
                        page, settled = through_settling(page)
                        full = full and not settled
                    if page:
                        yield page
                        newest, last = page[-1], page[-1].id
                    if not full:
                        break
                if newest is not None and newest.event.settles:
                    return
                if newest is None and await settled_at(self._store, self.task_id, last):
                    return
                if self._closed:
                    return
                self._sub = self._tail.join(self._store.lkey(self.task_id), last)
            while (raw := await self._sub.next_batch()) is not None:
                context = self._context or await self._context_id()
                out = []
                for eid, fields in raw:
                    if eid <= last:
                        continue
                    out.append(decode_logged(self.task_id, context, b"0-%d" % eid, fields))
                    if b"s" in fields:
                        self._snapshot = fields[b"s"]
                    if out[-1].event.settles:
                        break
                if out:
                    yield out
                    last = out[-1].id
                    if out[-1].event.settles:
                        return
            if not self._sub.dropped or self._closed:
                return  # closed: by its owner or by the store
            # fell its buffer's bound behind (the tail has let it go): read on from the log
            self.catch_ups += 1
            self._sub, replay = None, False

    async def _context_id(self) -> str:
        self._context = await self._store.context_id(self.task_id)
        return self._context

    def close(self) -> None:
        self._closed = True
        if self._sub is not None:
            self._tail.leave(self._sub)

    async def __aenter__(self) -> RedisFollow:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


async def follow_all(
    store: RedisStore, tail: Tail, where: EventFilter, after: int
) -> AsyncGenerator[builtins.list[GlobalEvent], None]:
    """``EventLog.follow_all`` on the global Stream: catch up in pages, then tail from the cursor reached; a
    dropped follower catches up from the Stream again. Ends when the store closes."""
    while True:
        while True:
            rows = await store.read_global(after, PAGE)
            fresh = [g for g in (decode_global(c, f) for c, f in rows) if g.matches(where)]
            if rows:
                after = rows[-1][0]
            if fresh:
                yield fresh
            if len(rows) < PAGE:
                break
        sub = tail.join(store.gkey, after)
        try:
            while (raw := await sub.next_batch()) is not None:
                fresh = [g for g in (decode_global(c, f) for c, f in raw if c > after) if g.matches(where)]
                after = max(after, raw[-1][0])
                if fresh:
                    yield fresh
            if not sub.dropped:
                return
        finally:
            tail.leave(sub)
