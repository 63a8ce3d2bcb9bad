"""Followers of the in-process logs (memory and SQLite): subscribe first, read the log, then tail the bus.

Subscribing before reading is what makes replay + live one sequence with no gap: an event committed while
the log is being read is both in the read and in the buffer, and the buffer's copy is skipped by its id.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import Protocol

from a2a_server.backends.bus import EventBus
from a2a_server.model import LoggedEvent, Task
from a2a_server.ports import EventFilter, GlobalEvent

# the global catch-up reads the log in pages of this many events
PAGE = 500


class _Reader(Protocol):
    async def read_after(self, task_id: str, after: int) -> builtins.list[LoggedEvent]: ...


class _TaskLog(_Reader, Protocol):
    async def last_event_id(self, task_id: str) -> int: ...


async def settled_at(log: _Reader, task_id: str, last: int) -> bool:
    """Whether event ``last`` is the newest of the task's log and settles the task (every backend's followers).

    One read: events committed after ``last`` meanwhile are in it too (and in the live buffer), and then
    ``last`` is not the newest. (Two reads, last id then the event, lost a settling event committed between
    them: the follower ended without it.)"""
    if last <= 0:
        return False
    newest = await log.read_after(task_id, last - 1)
    return len(newest) == 1 and newest[0].id == last and newest[0].event.settles


class _GlobalLog(Protocol):
    async def read_global(self, where: EventFilter, after: int, limit: int) -> builtins.list[GlobalEvent]: ...


class LocalFollow:
    """``TaskFollow`` over an in-process bus (see ``ports.TaskFollow``)."""

    def __init__(self, log: _TaskLog, bus: EventBus[LoggedEvent], task_id: str, after: int, fresh: bool) -> None:
        self._log = log
        self._sub = bus.subscribe(task_id)  # now: every event committed from here on is buffered
        self.task_id = task_id
        self.after = after
        self.fresh = fresh

    @property
    def dropped(self) -> bool:
        return self._sub.dropped

    @property
    def snapshot(self) -> Task | None:
        task: Task | None = self._sub.attachment
        return task

    async def batches(self) -> AsyncIterator[list[LoggedEvent]]:
        last = self.after
        if not self.fresh:
            backlog = await self._log.read_after(self.task_id, last)
            if backlog:
                yield backlog
                last = backlog[-1].id
                if backlog[-1].event.settles:
                    return
            elif await settled_at(self._log, self.task_id, last):
                return  # the caller has seen the settling event already; nothing more will come
        while (batch := await self._sub.next_batch()) is not None:
            fresh = [le for le in batch if le.id > last]
            for i, logged in enumerate(fresh):
                if logged.event.settles:
                    yield fresh[: i + 1]
                    return
            if fresh:
                yield fresh
                last = fresh[-1].id

    def close(self) -> None:
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
