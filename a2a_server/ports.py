"""The ports: what the service and the runners are written against, and what every backend promises.

    transport ─► TaskService ─► TaskStore (create, read, list)   TaskQueue.put   Control.cancel
                                                  ▲                     │                │
    Runner ◄── TaskQueue.claim ◄───────────────────┼─────────────────────┘                │
      │  drives the skill, obeys Control ◄─────────┼──────────────────────────────────────┘
      └─► EventLog.append_many(events, snapshot, epoch) ─► followers (SSE streams, /a2a/events)

A backend (``a2a_server.backends``) implements every port; the embedded default keeps the queue and the
control in-process. The contracts are written so that a Redis backend fits without changing them: a task's
log is a Stream with explicit ``0-<n>`` ids, the global order a second Stream, the queue a Stream per skill
with a consumer group (claim = XREADGROUP, expiry = XAUTOCLAIM, ack = XACK after the final event), and cancel
a pub/sub message or a key the runner watches.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from a2a_server.model import LoggedEvent, Task, TaskState


class LeaseLost(RuntimeError):
    """A write carried an epoch older than the task's: another runner took the task over (fencing)."""


class TaskExists(RuntimeError):
    """``create`` of a task id that is already stored."""


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: list[Task]
    next_page_token: str
    total_size: int


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events ``follow_all`` yields: every field that is set must match (``state``: the task's state
    as of that event). ``owner`` None means every owner (an administrator, or auth off)."""

    context_id: str | None = None
    skill: str | None = None
    state: TaskState | None = None
    owner: str | None = None


@dataclass(slots=True)  # not frozen: one is built per event on the hot path, and a frozen __init__ costs 3x
class GlobalEvent:
    """One event in the global order: ``cursor`` increases across every task and is never reused."""

    cursor: int
    task_id: str
    context_id: str
    skill: str
    owner: str
    state: TaskState | None
    logged: LoggedEvent

    def matches(self, f: EventFilter) -> bool:
        return (
            (f.context_id is None or f.context_id == self.context_id)
            and (f.skill is None or f.skill == self.skill)
            and (f.state is None or f.state == self.state)
            and (f.owner is None or f.owner == self.owner)
        )


@dataclass(frozen=True, slots=True)
class Job:
    """What the queue carries for one run of a task: everything a runner needs besides the stored task."""

    task_id: str
    skill: str
    # the epoch the task was stored with when it was queued; the first delivery writes with it
    epoch: int
    # params metadata overlaid with message metadata, for SkillContext.metadata
    metadata: dict[str, Any] = field(default_factory=dict)
    # a new task that named its context: its skill gets the context's earlier turns
    with_context: bool = False
    # the task as queued, when the queue lives in the same process (saves the runner a read)
    task: Task | None = None
    # a re-run of a task whose earlier runner was lost: the runner takes it over and says so on its stream
    rerun: bool = False
    # the task is not stored yet: the run's first write stores it with its first events, in one transaction
    # (the service queues a new task with a fresh random id this way; see TaskService.submit)
    create: bool = False


@dataclass(frozen=True, slots=True)
class Lease:
    """A claimed job. ``deliveries`` > 1 means an earlier holder lost it (died or stalled past the lease):
    the runner takes the task over (``TaskStore.take_over``) before writing."""

    job: Job
    deliveries: int
    token: str  # the backend's handle of the queue entry


class TaskStore(Protocol):
    """Tasks by id. ``owner`` is part of every read (None = any owner); a task of another owner is "not there".

    - ``create`` stores a new task (its ``epoch`` as given); ``TaskExists`` if the id is taken. The write is
      queued when ``create`` returns, ahead of every later write of this process (a runner's first events may
      be queued before it commits); the awaitable completes once it is stored.
    - Snapshots are written only with events (``EventLog.append_many``), by the current holder of the task.
    - ``take_over`` raises the task's epoch by one and returns it: every later write with an older epoch fails
      with ``LeaseLost`` (a runner presumed dead cannot overwrite the one that replaced it).
    - ``snapshot`` returns the task with the id of the last event it reflects, read together.
    - Implementations must not block the event loop.
    """

    def create(self, task: Task) -> Awaitable[None]: ...

    async def get(self, task_id: str, *, owner: str | None = None) -> Task | None: ...

    async def snapshot(self, task_id: str, *, owner: str | None = None) -> tuple[Task, int] | None: ...

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
        """Tasks newest first; ``page_token`` is opaque and comes from a previous page."""
        ...

    async def take_over(self, task_id: str) -> int: ...

    async def unsettled(self) -> builtins.list[Task]:
        """Tasks neither terminal nor interrupted, oldest first."""
        ...

    async def purge_finished_before(self, timestamp: str) -> int:
        """Delete terminal tasks (and their logs) whose status timestamp is older; return how many."""
        ...

    async def integrity_check(self) -> str: ...

    async def close(self) -> None: ...


class TaskFollow(Protocol):
    """A follower of one task's log, subscribed from the moment ``EventLog.follow`` returned it.

    ``batches()`` yields the events with id > ``after``: the stored ones first, then live ones as they are
    committed, in batches of whatever is ready; no gap, no duplicate. It ends after a settling event that is
    the newest of the log (a continued input-required task has more), or when the backend closes.
    A reader that falls behind its live buffer's bound (in events, ``subscriber_buffer``, and in estimated
    bytes, ``subscriber_buffer_bytes``) loses that buffer and reads on from the log, in pages of about one
    bound, from the last event it was handed (``catch_ups`` counts these): it is never ended for being slow,
    and one that blocks (a client that does not read) holds about one bound, not its backlog.
    ``snapshot`` is the task as written with the newest batch seen, when the backend had it at hand.
    The owner must ``close()`` it (``async with``).
    """

    @property
    def catch_ups(self) -> int: ...

    @property
    def snapshot(self) -> Task | None: ...

    def batches(self) -> AsyncIterator[list[LoggedEvent]]: ...

    def close(self) -> None: ...

    async def __aenter__(self) -> TaskFollow: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class EventLog(Protocol):
    """Per task an append-only log with ids 1, 2, 3 … (``<task>:<n>`` on the wire), and one global order.

    - ``append_many`` gives the events the next ids of their task, atomically with ``snapshot`` (both or
      neither), if ``epoch`` is the task's current epoch; else ``LeaseLost`` (``TaskNotFound`` if no task).
      ``create=True``: the snapshot is a new task, stored first by this write unless it is stored already.
      An event reaches a follower only after it is committed.
    - ``read_after(task, n, limit)``: the events with id > n in id order (n = 0: the whole log), at most
      ``limit`` of them (None: all).
    - ``follow(task, after)``: see ``TaskFollow``; ``fresh=True`` promises that nothing is logged after
      ``after`` yet (the caller subscribes before the run starts), so the log is not read back.
    - ``follow_all(filter, after)``: every matching event with a global cursor > ``after``, stored then live,
      in the global order; never ends by itself (a dropped follower catches up from the log).
    """

    async def append_many(
        self, task_id: str, events: Sequence[Any], *, snapshot: Task | None = None, epoch: int, create: bool = False
    ) -> builtins.list[LoggedEvent]: ...

    async def read_after(self, task_id: str, after: int, limit: int | None = None) -> builtins.list[LoggedEvent]: ...

    async def last_event_id(self, task_id: str) -> int: ...

    def follow(self, task_id: str, after: int = 0, *, fresh: bool = False) -> TaskFollow: ...

    def follow_all(self, where: EventFilter, after: int = 0) -> AsyncGenerator[builtins.list[GlobalEvent], None]: ...

    async def last_cursor(self) -> int: ...


class TaskQueue(Protocol):
    """Jobs waiting for a runner, per skill. At-least-once: a job is handed out again until it is acked.

    - ``put`` queues a job; ``withdraw`` takes a job that no runner claimed yet back out (True if it did).
    - ``claim(skills)`` waits for a job of one of those skills and leases it for ``lease_seconds``.
    - ``heartbeat`` extends a lease (``LeaseLost`` if it already expired and went to another runner).
    - ``ack`` removes the job for good: call it only after the task's final event is committed.
    - A lease that is not heartbeated expires; its job is claimed again with ``deliveries`` + 1.
    """

    async def put(self, job: Job) -> None: ...

    async def withdraw(self, task_id: str) -> bool: ...

    async def claim(self, skills: Sequence[str], worker: str) -> Lease: ...

    async def heartbeat(self, lease: Lease) -> None: ...

    async def ack(self, lease: Lease) -> None: ...

    def depth(self, skill: str) -> int:
        """Jobs of ``skill`` waiting for a runner (not counting claimed ones)."""
        ...

    async def close(self) -> None: ...


class Control(Protocol):
    """Cancel reaches the runner that holds the task, wherever it runs, within 100 ms.

    A runner ``watch``es each task it runs with a callback that asks the run to stop, and ``unwatch``es it
    when the run ends (a later ``watch`` of the same task replaces the callback). ``cancel`` returns True
    when a runner holds the task (the request was delivered).
    """

    def watch(self, task_id: str, on_cancel: Callable[[], None]) -> None: ...

    def unwatch(self, task_id: str, on_cancel: Callable[[], None]) -> None:
        """Forget ``on_cancel`` for the task, if it is still the one watching (not a later runner's)."""
        ...

    async def cancel(self, task_id: str) -> bool: ...

    async def close(self) -> None: ...


class LiveView(Protocol):
    """A co-located runner's view of the tasks it runs right now (tokens not yet in any snapshot)."""

    def live(self, task_id: str) -> tuple[Task, int] | None:
        """The running task as it is now and the id of the last event it reflects; None if not running here."""
        ...


# ---------------------------------------------------------------------------------------------- push notifications


@dataclass(slots=True)
class Delivery:
    """Where one push config's delivery stands; saved after every attempt, so a restart resumes from ``cursor``.

    ``state``: "active" (delivering or caught up), "failing" (``max_failures`` attempts in a row failed; the
    sender keeps retrying at the longest backoff), "done" (the task is terminal and every event was sent)."""

    cursor: int = 0  # the id of the last event of the task that was delivered (or skipped: not sent by design)
    state: str = "active"
    attempts: int = 0  # failed attempts in a row for the event after ``cursor``
    delivered: int = 0  # notifications accepted by the receiver (2xx)
    last_status: str | None = None  # "200", "500", "timeout", "refused: …" — the outcome of the last attempt
    last_attempt: str | None = None  # ISO 8601 UTC
    next_try: str | None = None  # ISO 8601 UTC, while a retry is scheduled


@dataclass(slots=True)
class PushConfig:
    """One webhook of one task. ``(task_id, id)`` is unique; ``owner`` is the task's owner; ``dialect`` is the
    wire generation it was set in (it picks the payload shape); ``secret`` signs every notification."""

    task_id: str
    id: str
    url: str
    owner: str
    dialect: str
    secret: str
    token: str | None = None
    auth_scheme: str | None = None
    auth_credentials: str | None = None
    artifacts: bool = False  # also notify artifact updates (status changes are always notified)
    created: str = ""
    delivery: Delivery = field(default_factory=Delivery)


class PushStore(Protocol):
    """Push configs and each config's durable delivery state. ``owner`` is part of every read (None = any).

    - ``put`` stores a config, replacing the one with the same ``(task_id, id)`` (its delivery state too).
    - ``record`` saves a config's delivery state; False when the config is gone (deleted meanwhile).
    - ``active`` lists every config not "done", oldest first: what a sender resumes after a restart.
    - ``failing`` lists the configs of these tasks whose state is "failing", oldest first: what a read of a task
      shows (push_status.py). It runs on every read, so it must be cheap, above all when nothing is failing.
    - Implementations must not block the event loop.
    """

    async def put(self, config: PushConfig) -> None: ...

    async def get(self, task_id: str, config_id: str, *, owner: str | None = None) -> PushConfig | None: ...

    async def list(self, task_id: str, *, owner: str | None = None) -> builtins.list[PushConfig]: ...

    async def delete(self, task_id: str, config_id: str, *, owner: str | None = None) -> bool: ...

    async def record(self, task_id: str, config_id: str, delivery: Delivery) -> bool: ...

    async def active(self) -> builtins.list[PushConfig]: ...

    async def failing(self, task_ids: Sequence[str], *, owner: str | None = None) -> builtins.list[PushConfig]: ...


# ---------------------------------------------------------------- caller limits shared by processes (limits.py)


class Rate(Protocol):
    """A token bucket per caller shared by several processes (the gate's own ``Buckets`` otherwise)."""

    async def take(self, who: str) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        ...


class RunningTasks(Protocol):
    """The tasks each owner submitted that may still run (the cap of ``LimitedService``)."""

    async def of(self, owner: str) -> dict[str, float]:
        """Task id → when it was submitted (unix seconds)."""
        ...

    async def add(self, owner: str, task_id: str, since: float) -> None: ...

    async def forget(self, owner: str, task_ids: list[str]) -> None: ...
