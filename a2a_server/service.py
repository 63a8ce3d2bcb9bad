"""TaskService: the only thing a transport calls. Owner checks live here; runners do the work elsewhere.

    submit ─► validate (skill, params) ─► store the task (new: create; continued: take over + save the
              message) ─► follow (optional, subscribed before anything can run) ─► TaskQueue.put
    get / snapshot / list ─► a co-located runner's live view, else the TaskStore (owner-scoped)
    cancel ─► Control.cancel reaches the runner ─► wait for the final event
              no runner holds it (still queued, or interrupted) ─► withdraw it and end it canceled here
    follow(task, after) / events(task, after) / follow_all(filter, after) ─► the EventLog

Every method that takes ``owner`` treats a task of another owner as not there (``TaskNotFound``).
``owner=None`` sees every task (an administrator, or auth off).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from a2a_server.channels import Channels
from a2a_server.consumers.guard import UrlGuard
from a2a_server.dialects.base import SendRequest
from a2a_server.errors import (
    InvalidParams,
    ShuttingDown,
    TaskBusy,
    TaskNotCancelable,
    TaskNotFound,
    UnsupportedOperation,
)
from a2a_server.ledger import Channel, ChannelState, Ledger, Receipt
from a2a_server.metrics import Metrics
from a2a_server.model import LoggedEvent, Message, StatusEvent, Task, TaskState, TaskStatus, new_id
from a2a_server.ports import (
    Control,
    EventFilter,
    EventLog,
    GlobalEvent,
    Job,
    LeaseLost,
    LiveView,
    PushConfig,
    PushStore,
    TaskExists,
    TaskFollow,
    TaskPage,
    TaskQueue,
    TaskStore,
)
from a2a_server.push_configs import PushConfigs
from a2a_server.push_status import shown as push_shown
from a2a_server.skill import InvalidSkillParams, Skill, SkillRegistry, UnknownSkill

log = logging.getLogger("a2a_server.tasks")

# what transports may name besides the service itself
__all__ = [
    "ANONYMOUS", "Channel", "ChannelState", "Channels", "EventFilter", "GlobalEvent", "Receipt", "Submitted",
    "TaskFollow", "TaskPage", "TaskService",
]  # fmt: skip

ANONYMOUS = "anonymous"
# a non-blocking send of a new task waits this long for its run's first write, then stores the task itself
_STORE_WAIT = 0.5
# a cancel looks for the task's runner this many times (10 ms apart) before it ends the task itself
_CANCEL_ROUNDS = 5


@runtime_checkable
class Inbox(Protocol):
    """Delivers a message to the run of a task that is still running (a skill with ``accepts_followups``).

    In-process the runner is the inbox; a Redis backend would carry the message to the runner that holds the
    task (this belongs with the ports once a second implementation exists)."""

    def deliver(self, task_id: str, message: Message) -> bool:
        """Hand ``message`` to the task's run; False when no run of it is here (or it has ended)."""
        ...


@dataclass(slots=True)
class Submitted:
    task: Task
    # subscribed before the job was queued (when asked for): it sees every event of the run
    follow: TaskFollow | None
    # the id of the last event before this run (0 for a new task)
    after: int
    # the task is stored by its run's first write (see ``stored``), not yet by submit
    deferred: bool = False


class TaskService:
    def __init__(
        self,
        store: TaskStore,
        events: EventLog,
        queue: TaskQueue,
        control: Control,
        skills: SkillRegistry,
        *,
        metrics: Metrics | None = None,
        live: LiveView | None = None,
        cancel_grace: float = 2.0,
        push: PushStore | None = None,
        push_guard: UrlGuard | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.store, self.event_log, self.queue, self.control, self.skills = store, events, queue, control, skills
        # push notification configs (set/get/list/delete; a config given with a message is stored by submit)
        self.push = PushConfigs(push, events, self.get, push_guard)
        # billing channels (issue 12): a send naming one is checked here and charged by its run
        self.channels = Channels(ledger, lambda task_id: self.cancel(task_id, None)) if ledger is not None else None
        self.metrics = metrics or Metrics()
        self.live = live
        # the co-located runner takes follow-up messages for the tasks it runs (a remote runner: not yet)
        self.inbox = live if isinstance(live, Inbox) else None
        self.cancel_grace = cancel_grace
        self.closing = False

    # ------------------------------------------------------------------ submit

    async def submit(
        self, req: SendRequest, dialect: str, *, owner: str = ANONYMOUS, follow: bool = False
    ) -> Submitted:
        """Create a task (or continue an interrupted one) and queue its run; returns once it is stored, or, with
        ``follow``, at once with a follower subscribed before the run (``Submitted.deferred``: the run's first
        write stores the task)."""
        if self.closing:
            raise ShuttingDown()
        existing = await self.store.get(req.task_id, owner=owner) if req.task_id else None
        push: PushConfig | None = None
        if existing is not None and req.push is not None:  # delivers this turn's events on
            last = await self.event_log.last_event_id(existing.id)
            push = await self.push.prepare(existing, req.push, dialect, after=last)
        if existing is not None:
            skill = self._skill(existing.skill)
            if not existing.status.state.settled and getattr(skill, "accepts_followups", False):
                _validate(skill, req)
                if push is not None:
                    await self.push.save(push)
                return await self._follow_up(existing, skill, req, follow)
            _continuable(existing)
            task = existing
        elif req.task_id and not req.client_task_id:
            raise TaskNotFound(req.task_id)
        else:
            skill = self._skill(req.skill)
            task = Task(
                id=req.task_id or new_id(),
                context_id=req.context_id or new_id(),
                status=TaskStatus(state=TaskState.SUBMITTED),
                dialect=dialect,
                skill=skill.name,
                owner=owner,
                epoch=1,  # the epoch of the first delivery: it writes without a take-over
            )
        channel = await self.channels.check(req.metadata, owner) if self.channels is not None else None
        _validate(skill, req)
        if existing is None and req.push is not None:
            push = await self.push.prepare(task, req.push, dialect, after=0)
        req.message.task_id, req.message.context_id = task.id, task.context_id
        task.history.append(req.message)
        after, deferred = 0, False
        if existing is None and req.task_id:
            await _created(self.store.create(task), task.id)  # an id the client chose may be taken
        elif existing is None:
            # a fresh random id cannot be taken: the run's first write stores the task with its first events, in
            # one transaction (before the split a send cost one commit; a create of its own made it two)
            deferred = True
        else:
            after = await self._save_turn(task)
        # DEBUG: the run logs one INFO line per turn when it settles (three lines per task cost ~15 % of a send)
        log.debug("task %s [%s] %s (%s)", task.id, task.skill, "continued" if existing else "created", dialect)
        # subscribed before the job is queued: a new task's log is known to be empty, never read back
        # a continued task's turn is logged already (its working status): that one is read back
        follower = self.event_log.follow(task.id, after, fresh=existing is None) if follow or deferred else None
        with_context = existing is None and req.context_id is not None
        if push is not None:  # stored before the run can log anything: it is delivered from the first event
            await self.push.save(push)
        if channel is not None and self.channels is not None:
            await self.channels.bind(channel, task.id)  # once the task is ours, before it can run
        await self.queue.put(Job(task.id, task.skill, task.epoch, req.metadata, with_context, task, create=deferred))
        if deferred and not follow and follower is not None:
            async with follower:  # the caller may read the task next: answer once it is stored
                await _settles(follower, _STORE_WAIT, first=True)
            await self._stored(task)
            follower, deferred = None, False
        return Submitted(task, follower, after, deferred)

    async def _follow_up(self, stored: Task, skill: Skill, req: SendRequest, follow: bool) -> Submitted:
        """A message for a task that is still running, to a skill that takes follow-ups: into its run's inbox."""
        _validate(skill, req)
        live = self.live.live(stored.id) if self.live is not None else None
        if live is None or self.inbox is None:
            raise TaskBusy(f"Task {stored.id} is {stored.status.state.value} but not running on this server yet; "
                           "send the message again in a moment")  # fmt: skip
        task, last = live
        req.message.task_id, req.message.context_id = task.id, task.context_id
        # subscribed before the message is delivered (and with no await since ``live``: no event after ``last``
        # is logged yet, so ``fresh``): the follower sees everything the message causes
        follower = self.event_log.follow(task.id, last, fresh=True) if follow else None
        if not self.inbox.deliver(task.id, req.message):
            if follower is not None:
                follower.close()
            raise TaskBusy(f"Task {task.id} ended while the message was delivered; it takes no more messages")
        log.info("task %s [%s] took a follow-up message", task.id, task.skill)
        return Submitted(task, follower, last)

    async def _save_turn(self, task: Task) -> int:
        """Take a continued task's turn: under a fresh epoch, store its new message with a ``working`` status (so
        a second message is refused, and a follower waits for the run); the id of the event before that status."""
        task.epoch = await self.store.take_over(task.id)
        last = await self.event_log.last_event_id(task.id)
        task.status = TaskStatus(state=TaskState.WORKING)
        event = StatusEvent(task_id=task.id, context_id=task.context_id, status=task.status)
        try:
            await self.event_log.append_many(task.id, [event], snapshot=task, epoch=task.epoch)
        except LeaseLost:  # another message for the same task won the race
            raise TaskBusy(f"Task {task.id} is taking another message; wait until it needs input") from None
        return last

    def _skill(self, name: object) -> Skill:
        known = ", ".join(self.skills.names())
        if name is not None and not isinstance(name, str):
            raise InvalidParams(f"Invalid params: metadata.skill must be a string naming a skill ({known})",
                                param="metadata.skill")  # fmt: skip
        try:
            return self.skills.get(name)
        except UnknownSkill as exc:
            raise InvalidParams(f"Invalid params: {exc.args[0]}", {"skills": ",".join(self.skills.names())},
                                param="metadata.skill") from None  # fmt: skip

    async def send(
        self, req: SendRequest, dialect: str, *, blocking: bool, timeout: float, owner: str = ANONYMOUS
    ) -> Task:
        """``submit`` (it answers once the task is stored); with ``blocking``, wait up to ``timeout`` seconds for
        the task to settle."""
        if not blocking:
            return await self.get((await self.submit(req, dialect, owner=owner)).task.id, owner)
        submitted = await self.submit(req, dialect, owner=owner, follow=True)
        follower = submitted.follow
        assert follower is not None
        async with follower:
            if await _settles(follower, timeout) and follower.snapshot is not None:
                return follower.snapshot  # the task as written with its settling event
        if submitted.deferred:
            await self._stored(submitted.task)
        return await self.get(submitted.task.id, owner)

    async def _stored(self, task: Task) -> None:
        """Make sure a deferred task is stored: a skill slow to produce its first event has not written it yet."""
        if await self.store.get(task.id) is None:
            with contextlib.suppress(TaskExists):  # its run stored it meanwhile
                await self.store.create(task)

    # ------------------------------------------------------------------ queries

    async def find(self, task_id: str, owner: str | None = ANONYMOUS) -> Task | None:
        """The task as it is now (a running task's live state, tokens included), else the stored one."""
        live = self.live.live(task_id) if self.live is not None else None
        if live is not None:
            return live[0] if owner is None or live[0].owner == owner else None
        return await self.store.get(task_id, owner=owner)

    async def get(self, task_id: str, owner: str | None = ANONYMOUS) -> Task:
        task = await self.find(task_id, owner)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def snapshot(self, task_id: str, owner: str | None = ANONYMOUS) -> tuple[Task, int]:
        """The task and the id of the last event it reflects, taken together (for resubscribe)."""
        live = self.live.live(task_id) if self.live is not None else None
        if live is not None and (owner is None or live[0].owner == owner):
            return live
        found = await self.store.snapshot(task_id, owner=owner)
        if found is None:
            raise TaskNotFound(task_id)
        return found

    async def resumable_after(self, task_id: str, reflected: int) -> int:
        """The newest event id a client may resume after: a snapshot's ``reflected`` id, or newer when the log has
        moved on since that snapshot (a runner in another process writes snapshots only with status events)."""
        return max(reflected, await self.event_log.last_event_id(task_id))

    async def list(
        self,
        owner: str | None = ANONYMOUS,
        *,
        context_id: str | None = None,
        state: TaskState | None = None,
        updated_after: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> TaskPage:
        page = await self.store.list(
            owner=owner, context_id=context_id, state=state, updated_after=updated_after, page_size=page_size,
            page_token=page_token,
        )  # fmt: skip
        return replace(page, tasks=await push_shown(self.push.store, page.tasks, owner))  # one query a page

    async def shown(self, task: Task, owner: str | None = ANONYMOUS) -> Task:
        """The task as a client reads it: with its failing push configs in its metadata (push_status.py)."""
        return (await push_shown(self.push.store, [task], owner))[0]

    # ------------------------------------------------------------------ cancel

    async def cancel(self, task_id: str, owner: str | None = ANONYMOUS) -> Task:
        task, last = await self.snapshot(task_id, owner)
        if task.status.state.terminal:
            raise TaskNotCancelable(
                f"Task {task_id} is already {task.status.state.value} and cannot be canceled", {"taskId": task_id}
            )
        async with self.event_log.follow(task_id, last) as follower:
            for attempt in range(_CANCEL_ROUNDS):
                if await self.control.cancel(task_id):
                    await _settles(follower, self.cancel_grace + 5.0)
                    break
                if await self.queue.withdraw(task_id) or task.status.state.settled or attempt == _CANCEL_ROUNDS - 1:
                    # still queued, interrupted, or nobody runs it (a lost runner): end it here
                    await self._end_here(task_id, TaskState.CANCELED)
                    break
                await asyncio.sleep(0.01)  # claimed a moment ago: its runner is about to watch it
        return await self.get(task_id, owner)

    async def _end_here(self, task_id: str, state: TaskState) -> None:
        """End a task that no runner holds: take it over, so that a late runner's writes are refused."""
        epoch = await self.store.take_over(task_id)
        task = await self.store.get(task_id)
        if task is None or task.status.state.terminal:
            return
        task.epoch, task.status = epoch, TaskStatus(state=state)
        event = StatusEvent(task_id=task.id, context_id=task.context_id, status=task.status)
        await self.event_log.append_many(task.id, [event], snapshot=task, epoch=epoch)
        log.info("task %s [%s] %s (no runner held it)", task.id, task.skill, state.value)

    # ------------------------------------------------------------------ events

    def follow(self, task: Task, after: int) -> TaskFollow:
        """Follow a task the caller has read (``get``/``snapshot``: the owner check is done)."""
        return self.event_log.follow(task.id, after)

    async def events(self, task: Task, after: int = 0) -> AsyncGenerator[LoggedEvent, None]:
        """The task's events after ``after`` until it settles, one at a time (the plain stream and OpenAI use it);
        a reader that falls behind reads on from the log (``TaskFollow``)."""
        async with self.event_log.follow(task.id, after) as follower:
            async for batch in follower.batches():
                for logged in batch:
                    yield logged

    async def turns(self, task: Task, after: int) -> AsyncGenerator[builtins.list[LoggedEvent], None]:
        """The task's events after ``after``, through every interrupted turn, until a terminal event. A reader that
        falls behind is not ended: it reads on from the log (``TaskFollow``)."""
        while True:
            follower = self.event_log.follow(task.id, after, fresh=True)  # subscribed from here on
            if await self.event_log.last_event_id(task.id) > after:
                follower.close()  # something is logged after ``after`` already: read it back first
                follower = self.event_log.follow(task.id, after)
            last = None
            async with follower:
                async for batch in follower.batches():
                    after, last = batch[-1].id, batch[-1].event
                    yield batch
            if not (isinstance(last, StatusEvent) and last.status.state.interrupted):
                return

    def follow_all(self, where: EventFilter, after: int = 0) -> AsyncGenerator[builtins.list[GlobalEvent], None]:
        return self.event_log.follow_all(where, after)

    async def last_cursor(self) -> int:
        """The global cursor of the newest event: ``follow_all`` after it is "from now on"."""
        return await self.event_log.last_cursor()

    async def purge(self, older_than: str) -> int:
        """Delete finished tasks whose last change is older than the ISO timestamp ``older_than``."""
        return await self.store.purge_finished_before(older_than)

    def close(self) -> None:
        """Take no new tasks (the runners drain the running ones)."""
        self.closing = True
        if self.channels is not None:
            self.channels.close_sweeper()


def _validate(skill: Skill, req: SendRequest) -> None:
    try:
        skill.validate(req.message, req.metadata)
    except InvalidSkillParams as exc:
        raise InvalidParams(f"Invalid params: {exc}", param=exc.param, cause=exc.reason) from None


async def _created(created: Awaitable[None], task_id: str) -> None:
    try:
        await created
    except TaskExists:
        raise TaskBusy(f"Task {task_id} already exists and is still running; wait or cancel it") from None


def _continuable(task: Task) -> None:
    state = task.status.state
    if state.terminal:
        raise UnsupportedOperation(f"Task {task.id} is {state.value}; a terminal task cannot take new messages")
    if not state.interrupted:
        raise TaskBusy(
            f"Task {task.id} is still {state.value} and its skill {task.skill!r} takes no messages while it runs; "
            "wait until it needs input, or cancel it",
            {"taskId": task.id, "skill": task.skill},
        )


async def _settles(follower: TaskFollow, timeout: float, first: bool = False) -> bool:
    """Read ``follower`` until its task settles (``first``: until its first batch is committed), True, or until
    ``timeout`` seconds pass, False."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            async for batch in follower.batches():
                if first or batch[-1].event.settles:
                    return True
    return False
