"""The in-memory backend's store and log: for tests, demos and ``--store memory``. Nothing survives a restart.

Tasks are kept as JSON snapshots, like every other store: a stored task never changes until the next write,
and ``get`` hands out a fresh object (a JSON round trip costs ~14 µs; a deep copy ~44 µs).
"""

from __future__ import annotations

import asyncio
import builtins
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from a2a_server.backends.bus import DEFAULT_BYTE_LIMIT, EventBus
from a2a_server.backends.follow import LocalFollow, follow_all
from a2a_server.backends.weight import global_bytes, logged_bytes
from a2a_server.errors import InvalidParams, TaskNotFound
from a2a_server.model import LoggedEvent, MessageEvent, StatusEvent, Task, TaskEvent, TaskState
from a2a_server.ports import EventFilter, GlobalEvent, LeaseLost, TaskExists, TaskPage

S = TypeVar("S", TaskState, None)


@dataclass(slots=True)
class _Row:
    json: str
    context_id: str
    state: TaskState
    timestamp: str
    owner: str
    skill: str
    epoch: int
    seq: int  # the last event the snapshot reflects
    # the task's state as of its newest event (a status logged without a snapshot moves it too)
    logged_state: TaskState | None = None


def event_state(event: TaskEvent, before: S) -> TaskState | S:
    """The task's state as of ``event``: a status event sets it, a direct reply completes the task, an artifact
    happens in the state before."""
    if isinstance(event, StatusEvent):
        return event.status.state
    return TaskState.COMPLETED if isinstance(event, MessageEvent) else before


class MemoryStore:
    """``TaskStore`` and ``EventLog`` in one object (see ``a2a_server.ports``)."""

    def __init__(self, buffer_limit: int = 8192, byte_limit: int = DEFAULT_BYTE_LIMIT) -> None:
        # insertion order = creation order; listing walks it backwards (newest first)
        self._tasks: OrderedDict[str, _Row] = OrderedDict()
        self._logs: dict[str, list[LoggedEvent]] = {}
        self._global: list[GlobalEvent] = []
        self._cursor = 0
        self.bus: EventBus[LoggedEvent] = EventBus(buffer_limit, byte_limit, logged_bytes)
        self.global_bus: EventBus[GlobalEvent] = EventBus(buffer_limit, byte_limit, global_bytes)

    def _row(self, task: Task, seq: int) -> _Row:
        state = task.status.state
        return _Row(task.model_dump_json(), task.context_id, state, task.status.timestamp, task.owner, task.skill,
                    task.epoch, seq)  # fmt: skip

    def create(self, task: Task) -> Awaitable[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if task.id in self._tasks:
            done.set_exception(TaskExists(task.id))
        else:
            self._tasks[task.id] = self._row(task, 0)
            done.set_result(None)
        return done

    def _visible(self, task_id: str, owner: str | None) -> _Row | None:
        row = self._tasks.get(task_id)
        return row if row is not None and (owner is None or row.owner == owner) else None

    async def get(self, task_id: str, *, owner: str | None = None) -> Task | None:
        row = self._visible(task_id, owner)
        return Task.model_validate_json(row.json) if row is not None else None

    async def snapshot(self, task_id: str, *, owner: str | None = None) -> tuple[Task, int] | None:
        row = self._visible(task_id, owner)
        return (Task.model_validate_json(row.json), row.seq) if row is not None else None

    async def list(
        self,
        *,
        owner: str | None = None,
        context_id: str | None = None,
        state: TaskState | None = None,
        updated_after: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> TaskPage:
        matching = [
            task_id
            for task_id, row in reversed(self._tasks.items())
            if (owner is None or row.owner == owner)
            and (context_id is None or row.context_id == context_id)
            and (state is None or row.state == state)
            and (updated_after is None or row.timestamp > updated_after)
        ]
        start = 0
        if page_token:
            if page_token not in matching:
                raise InvalidParams(f"Invalid params: pageToken {page_token!r} is not from a previous page",
                                    param="pageToken")  # fmt: skip
            start = matching.index(page_token)
        page = matching[start : start + page_size]
        rest = matching[start + page_size : start + page_size + 1]
        tasks = [Task.model_validate_json(self._tasks[i].json) for i in page]
        return TaskPage(tasks=tasks, next_page_token=rest[0] if rest else "", total_size=len(matching))

    async def take_over(self, task_id: str) -> int:
        row = self._tasks.get(task_id)
        if row is None:
            raise TaskNotFound(task_id)
        row.epoch += 1
        return row.epoch

    async def append_many(
        self,
        task_id: str,
        events: Sequence[TaskEvent],
        *,
        snapshot: Task | None = None,
        epoch: int,
        create: bool = False,
    ) -> builtins.list[LoggedEvent]:
        if create and snapshot is not None and task_id not in self._tasks:
            self._tasks[task_id] = self._row(snapshot, 0)
        row = self._tasks.get(task_id)
        if row is None:
            raise TaskNotFound(task_id)
        if epoch != row.epoch:
            raise LeaseLost(f"task {task_id}: written with epoch {epoch}, the task is at epoch {row.epoch}")
        state, log = row.logged_state or row.state, self._logs.setdefault(task_id, [])
        start = len(log) + 1
        logged = [LoggedEvent(start + i, e) for i, e in enumerate(events)]
        log.extend(logged)
        out = []
        for le in logged:
            state = event_state(le.event, state)
            self._cursor += 1
            out.append(GlobalEvent(self._cursor, task_id, row.context_id, row.skill, row.owner, state, le))
        if snapshot is not None:
            row = self._tasks[task_id] = self._row(snapshot, log[-1].id if log else 0)
        row.logged_state = state
        self._global.extend(out)
        self.bus.publish_many(task_id, logged, snapshot)
        self.global_bus.publish_many("*", out)
        return logged

    async def read_after(self, task_id: str, after: int, limit: int | None = None) -> builtins.list[LoggedEvent]:
        # ids are 1..n with no gaps, so the events after id k start at index k
        start = max(after, 0)
        return self._logs.get(task_id, [])[start : None if limit is None else start + limit]

    async def last_event_id(self, task_id: str) -> int:
        log = self._logs.get(task_id)
        return log[-1].id if log else 0

    def follow(self, task_id: str, after: int = 0, *, fresh: bool = False) -> LocalFollow:
        return LocalFollow(self, self.bus, task_id, after, fresh)

    def follow_all(self, where: EventFilter, after: int = 0) -> AsyncGenerator[builtins.list[GlobalEvent], None]:
        return follow_all(self, self.global_bus, where, after)

    async def read_global(self, where: EventFilter, after: int, limit: int) -> builtins.list[GlobalEvent]:
        out: list[GlobalEvent] = []
        for g in self._global:  # a list ordered by cursor: fine for a store that lives in memory
            if g.cursor > after and g.matches(where):
                out.append(g)
                if len(out) >= limit:
                    break
        return out

    async def last_cursor(self) -> int:
        return self._cursor

    async def unsettled(self) -> builtins.list[Task]:
        return [Task.model_validate_json(r.json) for r in self._tasks.values() if not r.state.settled]

    async def purge_finished_before(self, timestamp: str) -> int:
        old = {i for i, r in self._tasks.items() if r.state.terminal and r.timestamp < timestamp}
        for task_id in old:
            del self._tasks[task_id]
            self._logs.pop(task_id, None)
        if old:
            self._global = [g for g in self._global if g.task_id not in old]
        return len(old)

    async def integrity_check(self) -> str:
        return "ok"

    async def close(self) -> None:
        self.bus.close_all()
        self.global_bus.close_all()
