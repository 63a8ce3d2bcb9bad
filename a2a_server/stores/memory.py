"""The in-memory store: for tests, demos and ``--store memory``. Nothing survives a restart.

Tasks are kept as JSON snapshots, like every other store: a saved task never changes until the next
``save``, and ``get`` hands out a fresh object (a JSON round trip costs ~14 µs; a deep copy ~44 µs).
"""

from __future__ import annotations

import builtins
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from a2a_server.errors import InvalidParams, TaskNotFound
from a2a_server.model import LoggedEvent, Task, TaskEvent, TaskState
from a2a_server.stores.base import TaskPage


@dataclass(slots=True)
class _Row:
    json: str
    context_id: str
    state: TaskState
    timestamp: str


class MemoryStore:
    def __init__(self) -> None:
        # insertion order = creation order; listing walks it backwards (newest first)
        self._tasks: OrderedDict[str, _Row] = OrderedDict()
        self._logs: dict[str, list[LoggedEvent]] = {}

    async def save(self, task: Task) -> None:
        self._tasks[task.id] = _Row(task.model_dump_json(), task.context_id, task.status.state, task.status.timestamp)

    async def get(self, task_id: str) -> Task | None:
        row = self._tasks.get(task_id)
        return Task.model_validate_json(row.json) if row is not None else None

    async def list(
        self,
        *,
        context_id: str | None = None,
        state: TaskState | None = None,
        updated_after: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> TaskPage:
        matching = [
            task_id
            for task_id, row in reversed(self._tasks.items())
            if (context_id is None or row.context_id == context_id)
            and (state is None or row.state == state)
            and (updated_after is None or row.timestamp > updated_after)
        ]
        start = 0
        if page_token:
            if page_token not in matching:
                raise InvalidParams(f"Invalid params: pageToken {page_token!r} is not from a previous page")
            start = matching.index(page_token)
        page = matching[start : start + page_size]
        rest = matching[start + page_size : start + page_size + 1]
        tasks = [Task.model_validate_json(self._tasks[i].json) for i in page]
        return TaskPage(tasks=tasks, next_page_token=rest[0] if rest else "", total_size=len(matching))

    async def append(self, task_id: str, event: TaskEvent, *, snapshot: Task | None = None) -> LoggedEvent:
        return (await self.append_many(task_id, [event], snapshot=snapshot))[0]

    async def append_many(
        self, task_id: str, events: Sequence[TaskEvent], *, snapshot: Task | None = None
    ) -> builtins.list[LoggedEvent]:
        if snapshot is not None:
            await self.save(snapshot)
        if task_id not in self._tasks:
            raise TaskNotFound(task_id)
        log = self._logs.setdefault(task_id, [])
        start = len(log) + 1
        logged = [LoggedEvent.model_construct(id=start + i, event=e) for i, e in enumerate(events)]
        log.extend(logged)
        return logged

    async def read_after(self, task_id: str, after: int) -> builtins.list[LoggedEvent]:
        # ids are 1..n with no gaps, so the events after id k start at index k
        return self._logs.get(task_id, [])[max(after, 0) :]

    async def last_event_id(self, task_id: str) -> int:
        log = self._logs.get(task_id)
        return log[-1].id if log else 0

    async def unsettled(self) -> builtins.list[Task]:
        return [Task.model_validate_json(r.json) for r in self._tasks.values() if not r.state.settled]

    async def purge_finished_before(self, timestamp: str) -> int:
        old = [i for i, r in self._tasks.items() if r.state.terminal and r.timestamp < timestamp]
        for task_id in old:
            del self._tasks[task_id]
            self._logs.pop(task_id, None)
        return len(old)

    async def integrity_check(self) -> str:
        return "ok"

    async def close(self) -> None:
        return None
