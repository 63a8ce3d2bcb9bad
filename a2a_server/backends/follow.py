"""Followers of the in-process logs (memory and SQLite): subscribe first, read the log, then tail the bus.

Subscribing before reading is what makes replay + live one sequence with no gap: an event committed while
the log is being read is both in the read and in the buffer, and the buffer's copy is skipped by its id.

A follower whose subscription is dropped (it fell a buffer's bound behind: ``bus.py``) does the same again
from the last event it handed over, so its reader loses nothing and sees nothing twice:

    tail the bus ─► dropped ─► subscribe again, read the log after the last event handed over, in pages
        ▲                        ├─ a full page: more is logged; unsubscribe while the page is handed over
        │                        │  (a blocked reader then holds one page and nothing in the bus), repeat
        └────────────────────────┴─ a short page: caught up; the subscription carries on from there

A page is at most about one buffer's bound (in events and in estimated bytes), so a reader that blocks on a
client that does not read holds about that much, wherever it is behind.
"""

from __future__ import annotations

import builtins
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType
from typing import Protocol

from a2a_server.backends.bus import EventBus, Subscription, take_front
from a2a_server.backends.weight import EVENT_OVERHEAD
from a2a_server.model import LoggedEvent, Task
from a2a_server.ports import EventFilter, GlobalEvent

# the global catch-up reads the log in pages of this many events; a task's catch-up in pages of at most this many
PAGE = 500


class _Reader(Protocol):
    async def read_after(self, task_id: str, after: int, limit: int | None = None) -> builtins.list[LoggedEvent]: ...


async def settled_at(log: _Reader, task_id: str, last: int) -> bool:
    """Whether event ``last`` is the newest of the task's log and settles the task (every backend's followers).

    One read: events committed after ``last`` meanwhile are in it too (and in the live buffer), and then
    ``last`` is not the newest. (Two reads, last id then the event, lost a settling event committed between
    them: the follower ended without it.)"""
    if last <= 0:
        return False
    newest = await log.read_after(task_id, last - 1, 2)
    return len(newest) == 1 and newest[0].id == last and newest[0].event.settles


class _GlobalLog(Protocol):
    async def read_global(self, where: EventFilter, after: int, limit: int) -> builtins.list[GlobalEvent]: ...


def page_events(byte_limit: int) -> int:
    """Events per page of a catch-up read: about one subscriber buffer's bound of one-word chunks."""
    return max(8, min(PAGE, byte_limit // EVENT_OVERHEAD))


def slices(events: list[LoggedEvent], weigh: Callable[[LoggedEvent], int], limit: int) -> list[list[LoggedEvent]]:
    """``events`` cut into runs of at most ``limit`` estimated bytes (at least one event each), as the bus hands
    out its batches (``take_front``)."""
    buffer, sizes = deque(events), deque(map(weigh, events))
    out: list[list[LoggedEvent]] = []
    while buffer:
        out.append(take_front(buffer, sizes, limit)[0])
    return out


def through_settling(events: list[LoggedEvent]) -> tuple[list[LoggedEvent], bool]:
    """``events`` up to and including the first settling one, and whether there was one: a follower ends there
    (every backend's followers, live or catching up)."""
    for i, logged in enumerate(events):
        if logged.event.settles:
            return events[: i + 1], True
    return events, False


class LocalFollow:
    """``TaskFollow`` over an in-process bus (see ``ports.TaskFollow`` and the module docstring)."""

    def __init__(self, log: _Reader, bus: EventBus[LoggedEvent], task_id: str, after: int, fresh: bool) -> None:
        self._log = log
        self._bus = bus
        # now: every event committed is buffered (a follower that reads a backlog first is busy with it)
        self._sub: Subscription[LoggedEvent] = bus.subscribe(task_id, waiting=fresh)
        self.task_id = task_id
        self.after = after
        self.fresh = fresh
        self.catch_ups = 0  # how often it fell a buffer's bound behind and read on from the log
        self._page = page_events(bus.byte_limit)
        self._closed = False

    @property
    def snapshot(self) -> Task | None:
        task: Task | None = self._sub.attachment
        return task

    async def batches(self) -> AsyncIterator[list[LoggedEvent]]:
        last = self.after
        from_log, replay = not self.fresh, True  # replay: the first read, of the backlog the caller asked for
        while True:
            while from_log:
                page = await self._log.read_after(self.task_id, last, self._page)
                full = len(page) == self._page
                if full:
                    # more is logged than this page: the next read has what the bus would buffer meanwhile
                    self._sub.close()
                if not replay:
                    # a catch-up ends where a live follower would have: at the first settling event
                    page, settled = through_settling(page)
                    full = full and not settled
                for run in slices(page, self._bus.weigh, self._bus.byte_limit):
                    yield run
                    last = run[-1].id
                if full:
                    if self._closed:
                        return
                    self._sub = self._bus.subscribe(self.task_id, waiting=False)  # before the next read: no gap
                    continue
                if page and page[-1].event.settles:
                    return
                if not page and await settled_at(self._log, self.task_id, last):
                    return  # the caller has seen the settling event already; nothing more will come
                from_log = False
            while (batch := await self._sub.next_batch()) is not None:
                fresh, settled = through_settling([le for le in batch if le.id > last])
                if settled:
                    yield fresh
                    return
                if fresh:
                    yield fresh
                    last = fresh[-1].id
            if not self._sub.dropped or self._closed:
                return  # closed: by its owner or by the backend
            # fell the buffer's bound behind: read on from the log (subscribed again first)
            self.catch_ups += 1
            self._sub = self._bus.subscribe(self.task_id, waiting=False)
            from_log, replay = True, False

    def close(self) -> None:
        self._closed = True
        self._sub.close()

    async def __aenter__(self) -> LocalFollow:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


async def follow_all(
    log: _GlobalLog, bus: EventBus[GlobalEvent], where: EventFilter, after: int
) -> AsyncGenerator[list[GlobalEvent], None]:
    """``EventLog.follow_all`` for an in-process log: catch up in pages, then tail; a dropped follower (too
    slow for the bus buffer) catches up from the log again instead of losing events. Ends when the bus closes."""
    while True:
        sub = bus.subscribe("*")
        try:
            while True:
                rows = await log.read_global(where, after, PAGE)
                if rows:
                    yield rows
                    after = rows[-1].cursor
                if len(rows) < PAGE:
                    break
            while (batch := await sub.next_batch()) is not None:
                fresh = [g for g in batch if g.cursor > after and g.matches(where)]
                if fresh:
                    yield fresh
                    after = fresh[-1].cursor
            if not sub.dropped:
                return
        finally:
            sub.close()
