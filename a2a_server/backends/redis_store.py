"""The Redis store: ``TaskStore`` + ``EventLog`` shared by every API replica and worker (``--store redis://…``).

Contract, beyond the ports (key layout in redis_lua.py):
- Every write is one Lua script: an ``append_many`` checks the epoch (fencing: ``LeaseLost``), gives the events the
  next ids ``0-<n>`` of the task's Stream, copies them to the global Stream with the next global cursors, and
  stores the snapshot, atomically. A write carries a token, so a write retried after a lost connection whose
  first attempt was applied is not applied twice.
- A lost connection is retried with backoff: reads for ~1 s, then ``StoreUnavailable`` (503); ``append_many``
  for ``write_patience`` seconds (a Redis restart does not fail the running tasks), then ``StoreUnavailable``.
- Live followers read Redis itself (redis_tail.py): a follower on any replica sees every committed event.
- A task's log is capped at ``log_cap`` events (the runner ends a task before that); the global Stream at
  ``global_cap`` (a ``/a2a/events`` cursor older than that resumes at the oldest kept event). A final task and
  its log expire ``ttl`` seconds after the final write (the retention), besides ``purge_finished_before``.
- Listing, recovery and retention queries: redis_index.py.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Sequence
from typing import Any

from a2a_server.backends.bus import DEFAULT_BYTE_LIMIT
from a2a_server.backends.memory import event_state
from a2a_server.backends.redis_conn import (
    UNAVAILABLE,
    Client,
    command_client,
    guard,
    parse_url,
    process_name,
    unavailable,
)
from a2a_server.backends.redis_index import PAGE, RedisIndex
from a2a_server.backends.redis_lua import APPEND, CREATE, TAKE_OVER
from a2a_server.backends.redis_tail import RedisFollow, Tail, decode_logged, follow_all
from a2a_server.backends.sqlite_schema import KIND_OF
from a2a_server.errors import TaskNotFound
from a2a_server.model import LoggedEvent, Task, TaskEvent, new_id
from a2a_server.ports import EventFilter, GlobalEvent, LeaseLost, TaskExists

log = logging.getLogger("a2a_server.redis")
_IMPLIED = {"task_id", "context_id"}


class RedisStore(RedisIndex):
    """``TaskStore`` and ``EventLog`` on Redis (see ``a2a_server.ports`` and the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        buffer_limit: int = 8192,
        byte_limit: int = DEFAULT_BYTE_LIMIT,
        log_cap: int = 1_000_000,
        global_cap: int = 1_000_000,
        ttl: float = 0.0,
        write_patience: float = 30.0,
    ) -> None:
        parsed = parse_url(url)
        self.url, self.address, self.p = parsed.url, parsed.address, parsed.prefix
        self.name = process_name()  # every connection of this store: CLIENT LIST tells them apart
        self.redis: Client = command_client(self.url, self.name)
        self.log_cap, self.global_cap, self.ttl = log_cap, global_cap, int(ttl)
        self.write_patience = write_patience
        self.tail = Tail(self.url, self.name, self.redis, self.p, buffer_limit, byte_limit)
        self._create = self.redis.register_script(CREATE)
        self._take_over = self.redis.register_script(TAKE_OVER)
        self._append = self.redis.register_script(APPEND)
        self._creating: dict[str, asyncio.Future[None]] = {}

    @classmethod
    async def open(cls, url: str, *, patience: float = 30.0, **kwargs: Any) -> RedisStore:
        """Connect, waiting up to ``patience`` seconds for Redis (it may start together with this process)."""
        store = cls(url, **kwargs)
        deadline, delay = time.monotonic() + patience, 0.1
        while True:
            try:
                await store.redis.ping()
                return store
            except UNAVAILABLE as exc:
                if time.monotonic() + delay > deadline:
                    await store.close()
                    raise unavailable(store.address, "answer PING", exc) from exc
                log.warning("Redis at %s is not reachable (%s); retrying in %.1f s", store.address, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    # ------------------------------------------------------------------ TaskStore

    def create(self, task: Task) -> Awaitable[None]:
        # queued now, ahead of every later write of this process to the same task (they await it first)
        done = asyncio.ensure_future(self._do_create(task))
        self._creating[task.id] = done
        done.add_done_callback(lambda _: self._creating.pop(task.id, None) if self._creating.get(task.id) is done
                               else None)  # fmt: skip
        return done

    async def _do_create(self, task: Task) -> None:
        s = task.status
        args = [task.id, task.model_dump_json(), s.state.value, s.timestamp, task.context_id, task.owner, task.skill,
                task.epoch, int(s.state.settled), int(s.state.terminal)]  # fmt: skip
        keys = [self.hkey(task.id), f"{self.p}:all", f"{self.p}:seq", f"{self.p}:open", f"{self.p}:done"]
        with guard(self.address, "store a new task"):
            created = await self._create(keys, args)
        if not created:
            raise TaskExists(task.id)

    async def _created(self, task_id: str) -> None:
        pending = self._creating.get(task_id)
        if pending is not None:
            await asyncio.shield(pending)

    async def get(self, task_id: str, *, owner: str | None = None) -> Task | None:
        found = await self.snapshot(task_id, owner=owner)
        return found[0] if found is not None else None

    async def snapshot(self, task_id: str, *, owner: str | None = None) -> tuple[Task, int] | None:
        with guard(self.address, "read a task"):
            js, seq, who = await self.redis.hmget(self.hkey(task_id), ["j", "q", "o"])
        if js is None or (owner is not None and who.decode() != owner):
            return None
        return Task.model_validate_json(js), int(seq)

    async def take_over(self, task_id: str) -> int:
        await self._created(task_id)
        with guard(self.address, "take a task over"):
            epoch = int(await self._take_over([self.hkey(task_id)], []))
        if epoch < 0:
            raise TaskNotFound(task_id)
        return epoch

    async def integrity_check(self) -> str:
        with guard(self.address, "answer PING"):
            await self.redis.ping()
        return "ok"

    async def close(self) -> None:
        await self.tail.close()
        await self.redis.aclose(close_connection_pool=True)

    # ------------------------------------------------------------------ EventLog

    async def append_many(
        self,
        task_id: str,
        events: Sequence[TaskEvent],
        *,
        snapshot: Task | None = None,
        epoch: int,
        create: bool = False,
    ) -> builtins.list[LoggedEvent]:
        await self._created(task_id)
        args: list[Any] = [task_id, epoch, int(create), new_id(), int(snapshot is not None)]
        if snapshot is not None:
            st = snapshot.status.state
            args += [snapshot.model_dump_json(), st.value, snapshot.status.timestamp, snapshot.context_id,
                     snapshot.owner, snapshot.skill, snapshot.epoch, int(st.settled), int(st.terminal)]  # fmt: skip
        else:
            args += ["", "", "", "", "", "", 0, 0, 0]
        args += [self.log_cap, self.global_cap, self.ttl, len(events)]
        for e in events:
            changed = event_state(e, None)
            args += [KIND_OF[type(e)], e.model_dump_json(exclude_none=True, exclude=_IMPLIED),
                     changed.value if changed is not None else ""]  # fmt: skip
        keys = [self.hkey(task_id), self.lkey(task_id), self.gkey, f"{self.p}:gc", f"{self.p}:all", f"{self.p}:seq",
                f"{self.p}:open", f"{self.p}:done"]  # fmt: skip
        deadline = time.monotonic() + self.write_patience
        delay = 0.05
        while True:  # the same token on every attempt: a write that was applied is not applied again
            try:
                reply = await self._append(keys, args)
                break
            except UNAVAILABLE as exc:
                if time.monotonic() + delay > deadline:
                    raise unavailable(self.address, f"log {len(events)} events of task {task_id}", exc) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        verdict = reply[0].decode()
        if verdict == "missing":
            raise TaskNotFound(task_id)
        if verdict == "fenced":
            raise LeaseLost(f"task {task_id}: written with epoch {epoch}, the task is at epoch {int(reply[1])}")
        first = int(reply[1])
        return [LoggedEvent(first + i, e) for i, e in enumerate(events)]

    async def read_after(self, task_id: str, after: int, limit: int | None = None) -> builtins.list[LoggedEvent]:
        out: list[LoggedEvent] = []
        while limit != 0:
            count = PAGE if limit is None else min(PAGE, limit - len(out))
            page, _ = await self.read_page(task_id, after, count)
            out += page
            if len(page) < count or len(out) == limit:
                return out
            after = page[-1].id
        return out

    async def read_page(self, task_id: str, after: int, count: int) -> tuple[builtins.list[LoggedEvent], Task | None]:
        """Up to ``count`` events after ``after``, and the newest snapshot written with one of them."""
        with guard(self.address, "read a task's events"):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hget(self.hkey(task_id), "c")
                pipe.xrange(self.lkey(task_id), f"0-{max(after, 0) + 1}", "+", count=count)
                context, entries = await pipe.execute()
        if context is None:
            return [], None
        snap: Task | None = None
        out = []
        for entry_id, fields in entries:
            out.append(decode_logged(task_id, context.decode(), entry_id, fields))
            if b"s" in fields:
                snap = Task.model_validate_json(fields[b"s"])
        return out, snap

    async def context_id(self, task_id: str) -> str:
        with guard(self.address, "read a task's context"):
            context = await self.redis.hget(self.hkey(task_id), "c")
        return context.decode() if context is not None else ""

    async def last_event_id(self, task_id: str) -> int:
        await self._created(task_id)
        with guard(self.address, "read a task's last event id"):
            n = await self.redis.hget(self.hkey(task_id), "n")
        return int(n) if n is not None else 0

    def follow(self, task_id: str, after: int = 0, *, fresh: bool = False) -> RedisFollow:
        return RedisFollow(self, self.tail, task_id, after, fresh)

    def follow_all(self, where: EventFilter, after: int = 0) -> AsyncGenerator[builtins.list[GlobalEvent], None]:
        return follow_all(self, self.tail, where, after)

    async def last_cursor(self) -> int:
        with guard(self.address, "read the global cursor"):
            value = await self.redis.get(f"{self.p}:gc")
        return int(value) if value is not None else 0

    async def read_global(self, after: int, count: int) -> builtins.list[tuple[int, dict[bytes, bytes]]]:
        """Raw entries of the global Stream after ``after`` (cursor, fields)."""
        with guard(self.address, "read the global event order"):
            entries = await self.redis.xrange(self.gkey, f"0-{max(after, 0) + 1}", "+", count=count)
        return [(int(entry_id.split(b"-")[1]), fields) for entry_id, fields in entries]
