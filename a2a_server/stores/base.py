"""The store interface: tasks plus an append-only, per-task event log.

Contract:
- ``append`` gives each event of a task an id strictly greater than every earlier id of that task
  (1, 2, 3, …). Ids are per task, which maps onto a Redis Stream per task (XADD with explicit
  ``0-<n>`` ids) and onto an SQLite table keyed by (task_id, seq).
- ``append`` (and ``append_many``) to a task that was never saved raises ``TaskNotFound``.
- ``read_after(task_id, after)`` returns the events with id > ``after`` in id order; ``after=0`` is
  the whole log. An acknowledged ``append`` is visible to every later ``read_after``.
- ``save`` stores the task's current snapshot (state, history, artifacts). The engine is the only
  writer; the store never derives one from the other.
- Implementations must not block the event loop.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from a2a_server.model import LoggedEvent, Task, TaskEvent, TaskState


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: list[Task]
    next_page_token: str
    total_size: int


class TaskStore(Protocol):
    async def save(self, task: Task) -> None: ...

    async def get(self, task_id: str) -> Task | None: ...

    async def list(
        self,
        *,
        context_id: str | None = None,
        state: TaskState | None = None,
        updated_after: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> TaskPage:
        """Tasks newest first; ``page_token`` is opaque and comes from a previous page."""
        ...

    async def append(self, task_id: str, event: TaskEvent, *, snapshot: Task | None = None) -> LoggedEvent:
        """Log ``event``; with ``snapshot``, also save that task in the same transaction (both or neither)."""
        ...

    async def append_many(
        self, task_id: str, events: Sequence[TaskEvent], *, snapshot: Task | None = None
    ) -> builtins.list[LoggedEvent]:
        """``append`` for several events in order, in one transaction (with ``snapshot`` if given)."""
        ...

    async def read_after(self, task_id: str, after: int) -> builtins.list[LoggedEvent]: ...

    async def last_event_id(self, task_id: str) -> int: ...

    async def unsettled(self) -> builtins.list[Task]:
        """Tasks neither terminal nor interrupted: after a restart, the ones a dead process left running."""
        ...

    async def purge_finished_before(self, timestamp: str) -> int:
        """Delete terminal tasks (and their logs) whose status timestamp is older; return how many."""
        ...

    async def integrity_check(self) -> str:
        """ "ok" when the storage is sound."""
        ...

    async def close(self) -> None: ...
