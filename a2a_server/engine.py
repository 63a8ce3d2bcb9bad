"""The task engine: drives one skill run per task, numbers events, writes the store, feeds the bus.

Lifecycle of a run (the only writer of its task):

    submit ──► store.save(submitted) ──► job starts
    job: first skill event ──► Reply? ─yes─► log MessageEvent, task completed
                              └─no──► log status submitted (working when continuing), then each event
         skill returns            ──► completed
         skill yields settled Status ──► that state (input-required ends the run, not the task)
         skill raises             ──► failed, with the error text
         cancel requested         ──► canceled, keeping the metadata of the skill's last Status
    final status ──► store.append ──► run removed ──► bus.publish (no await in between)

Execution is decoupled from HTTP: nothing here knows whether anyone is listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from a2a_server.bus import EventBus, Subscription
from a2a_server.dialects.base import SendRequest
from a2a_server.errors import (
    InvalidParams,
    TaskNotCancelable,
    TaskNotFound,
    UnsupportedOperation,
)
from a2a_server.metrics import Metrics, RunClock
from a2a_server.model import (
    Artifact,
    ArtifactEvent,
    LoggedEvent,
    Message,
    MessageEvent,
    Part,
    Role,
    StatusEvent,
    Task,
    TaskEvent,
    TaskState,
    TaskStatus,
    new_id,
)
from a2a_server.skill import (
    ArtifactOut,
    InvalidSkillParams,
    Reply,
    Skill,
    SkillContext,
    SkillEvent,
    SkillRegistry,
    Status,
    Token,
    UnknownSkill,
)
from a2a_server.stores.base import TaskStore

log = logging.getLogger("a2a_server.tasks")

# a skill that outruns the store waits once this many of its events are queued
_OUTBOX_LIMIT = 512


@dataclass
class _Run:
    task: Task
    ctx: SkillContext
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    job: asyncio.Task[None] | None = None
    # the streamed text artifact of this run (Token events)
    stream_artifact: Artifact | None = None
    stream_chunks: list[str] = field(default_factory=list)
    stream_index: int = 0
    stream_closed: bool = False
    clock: RunClock = field(default_factory=RunClock)
    # set when the engine ends the run for its own reason (event cap, shutdown): the final status to use
    abort: Status | None = None
    # id of the last event written; events queued for the next batch wait in ``outbox``
    last_id: int = 0
    queued_id: int = 0
    outbox: list[TaskEvent] = field(default_factory=list)
    save_pending: bool = False
    flusher: asyncio.Task[None] | None = None
    persisted: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.queued_id = self.last_id


class ShuttingDown(UnsupportedOperation):
    pass


class Engine:
    def __init__(
        self,
        store: TaskStore,
        bus: EventBus,
        skills: SkillRegistry,
        *,
        cancel_grace: float = 2.0,
        metrics: Metrics | None = None,
        max_events: int = 100_000,
    ) -> None:
        self.store = store
        self.bus = bus
        self.skills = skills
        self.cancel_grace = cancel_grace
        self.metrics = metrics or Metrics()
        self.max_events = max(max_events, 4)
        self._runs: dict[str, _Run] = {}
        self._closing = False

    # ----------------------------------------------------------------- submit

    async def submit(self, req: SendRequest, dialect: str) -> Task:
        """Create a task (or continue an interrupted one) and start its skill; returns at once."""
        if self._closing:
            raise ShuttingDown("The server is shutting down and takes no new tasks")
        self._refuse_running(req.task_id)
        existing = await self.store.get(req.task_id) if req.task_id else None
        if existing is not None:
            task = self._continue(existing, req)
            skill = self._skill(task.skill)
        elif req.task_id and not req.client_task_id:
            raise TaskNotFound(req.task_id)
        else:
            skill = self._skill(req.skill)
            task = self._new_task(req, dialect, skill.name)
        try:
            skill.validate(req.message, req.metadata)
        except InvalidSkillParams as exc:
            raise InvalidParams(f"Invalid params: {exc}") from None
        req.message.task_id, req.message.context_id = task.id, task.context_id
        prior = await self._context_history(task) if existing is None and req.context_id else []
        last_id = await self.store.last_event_id(task.id) if existing is not None else 0
        task.history.append(req.message)
        self._refuse_running(task.id)  # a concurrent submit of the same id may have won during the awaits
        log.info("task %s [%s] %s (%s)", task.id, task.skill, "continued" if existing else "created", dialect)
        ctx = SkillContext(
            task_id=task.id,
            context_id=task.context_id,
            message=req.message,
            history=prior + task.history[:-1],
            metadata=req.metadata,
        )
        # the task is written with the run's first batch of events (one commit, not two): nobody has seen
        # it yet; a non-blocking send answers only after that write (wait_persisted)
        run = _Run(task=task, ctx=ctx, last_id=last_id, save_pending=True)
        self._runs[task.id] = run
        self.metrics.active.set(len(self._runs))
        run.job = asyncio.create_task(self._drive(run, skill.run(ctx), continuing=existing is not None))
        return task

    def _refuse_running(self, task_id: str | None) -> None:
        if task_id is not None and task_id in self._runs:
            state = self._runs[task_id].task.status.state.value
            raise UnsupportedOperation(f"Task {task_id} is still {state}; wait until it needs input, or cancel it")

    async def wait_persisted(self, task_id: str, timeout: float = 1.0) -> None:
        """Return once the task is in the store: its first batch is written, or after ``timeout`` by a save."""
        run = self._runs.get(task_id)
        if run is None or run.persisted.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await run.persisted.wait()
                return
        # a skill slow to produce its first event: write the task as it is
        await self.store.save(self._sync(run))

    async def _context_history(self, task: Task, limit: int = 1000) -> list[Message]:
        """The messages of the context's earlier tasks, oldest first (a conversation)."""
        tasks: list[Task] = []
        token: str | None = None
        while len(tasks) < limit:
            page = await self.store.list(context_id=task.context_id, page_size=100, page_token=token)
            tasks.extend(t for t in page.tasks if t.id != task.id)
            token = page.next_page_token
            if not token:
                break
        return [m for t in reversed(tasks) for m in [*t.history, *self._answer(t)]]

    @staticmethod
    def _answer(task: Task) -> list[Message]:
        """A finished task's text output as the agent's turn of the conversation (history holds only messages)."""
        text = "".join(p.text or "" for a in task.artifacts for p in a.parts if p.kind == "text")
        if not text.strip() or not task.status.state.terminal:
            return []
        return [Message(role=Role.AGENT, parts=[Part.of_text(text)], task_id=task.id, context_id=task.context_id)]

    def _skill(self, name: object) -> Skill:
        if name is not None and not isinstance(name, str):
            known = ", ".join(self.skills.names())
            raise InvalidParams(f"Invalid params: metadata.skill must be a string naming a skill ({known})")
        try:
            return self.skills.get(name)
        except UnknownSkill as exc:
            raise InvalidParams(f"Invalid params: {exc.args[0]}", {"skills": ",".join(self.skills.names())}) from None

    def _new_task(self, req: SendRequest, dialect: str, skill: str) -> Task:
        return Task(
            id=req.task_id or new_id(),
            context_id=req.context_id or new_id(),
            status=_status(TaskState.SUBMITTED),
            dialect=dialect,
            skill=skill,
        )

    def _continue(self, task: Task, req: SendRequest) -> Task:
        state = task.status.state
        if state.interrupted:
            return task
        if state.terminal:
            raise UnsupportedOperation(f"Task {task.id} is {state.value}; a terminal task cannot take new messages")
        raise UnsupportedOperation(f"Task {task.id} is still {state.value}; wait until it needs input, or cancel it")

    # -------------------------------------------------------------------- run

    async def _drive(self, run: _Run, events: AsyncIterator[SkillEvent], continuing: bool) -> None:
        task, final = run.task, Status(TaskState.COMPLETED)
        started = False
        try:
            async for ev in events:
                if run.abort is not None:
                    break
                if not started:
                    started = True
                    if isinstance(ev, Reply) and not continuing:
                        await self._reply(run, ev)
                        return
                    await self._open(run, continuing)
                if isinstance(ev, Status):
                    if ev.state.settled or run.ctx.cancelled.is_set():
                        final = ev
                        break
                    await self._status(run, _status(ev.state, self._said(run, ev.text)), ev.metadata)
                elif isinstance(ev, Token):
                    await self._token(run, ev)
                elif isinstance(ev, ArtifactOut):
                    await self._artifact(run, ev.artifact, ev.append, ev.last_chunk)
                else:
                    final = Status(TaskState.COMPLETED)
                    run.task.history.append(self._agent(run, ev.parts))
                    break
        except asyncio.CancelledError:
            final = Status(TaskState.CANCELED, metadata=final.metadata)
        except Exception as exc:  # a skill's bug fails its task, never the server
            log.exception("task %s: skill %s raised", task.id, task.skill)
            final = Status(TaskState.FAILED, text=f"{type(exc).__name__}: {exc}")
        finally:
            await _aclose(events)
        if not started:
            await self._open(run, continuing)
        if run.abort is not None:
            final = Status(run.abort.state, run.abort.text, final.metadata)
        elif run.ctx.cancelled.is_set():
            final = Status(TaskState.CANCELED, final.text, final.metadata)
        await self._finish(run, final)

    async def _open(self, run: _Run, continuing: bool) -> None:
        """The run's first event, published when the skill's first one arrives (unless that is a direct reply)."""
        await self._status(run, _status(TaskState.WORKING if continuing else TaskState.SUBMITTED))

    async def _finish(self, run: _Run, final: Status) -> None:
        if run.stream_artifact is not None and not run.stream_closed:
            await self._token(run, Token("", last=True))
        message = self._said(run, final.text)
        if message is not None:
            run.task.history.append(message)
        if final.metadata:
            run.task.metadata = {**(run.task.metadata or {}), **final.metadata}
        await self._status(run, _status(final.state, message), final.metadata)

    async def _reply(self, run: _Run, ev: Reply) -> None:
        message = self._agent(run, ev.parts)
        task = run.task
        task.reply = message
        task.history.append(message)
        task.status = _status(TaskState.COMPLETED, message)
        await self._publish(run, MessageEvent(task_id=task.id, context_id=task.context_id, message=message))

    def _agent(self, run: _Run, parts: list[Part]) -> Message:
        return Message(role=Role.AGENT, parts=parts, task_id=run.task.id, context_id=run.task.context_id)

    def _said(self, run: _Run, text: str | None) -> Message | None:
        """The agent message of a status that has text."""
        return None if text is None else self._agent(run, [Part.of_text(text)])

    async def _status(self, run: _Run, status: TaskStatus, metadata: dict[str, Any] | None = None) -> None:
        task = run.task
        if status.state != task.status.state:
            log.info("task %s [%s] %s -> %s", task.id, task.skill, task.status.state.value, status.state.value)
        task.status = status
        event = StatusEvent(task_id=task.id, context_id=task.context_id, status=status, metadata=metadata)
        # the snapshot is written with the state changes that matter after a crash, in the event's transaction
        await self._publish(run, event, save=status.state.settled or status.state == TaskState.WORKING)

    async def _token(self, run: _Run, ev: Token) -> None:
        art = run.stream_artifact
        append = art is not None
        if art is None:
            art = run.stream_artifact = Artifact(artifact_id=new_id(), name="output", parts=[Part.of_text("")])
            run.task.artifacts.append(art)
        # joined only when someone looks (_sync): appending to the part's text each time is O(n²)
        run.stream_chunks.append(ev.text)
        run.stream_closed = ev.last
        if ev.text:
            ttft = run.clock.token()
            self.metrics.token_counter(run.task.skill).inc()
            if ttft is not None:
                self.metrics.ttft_histogram(run.task.skill).observe(ttft)
        chunk = Artifact(artifact_id=art.artifact_id, name=art.name, parts=[Part.of_text(ev.text)])
        await self._publish(run, self._artifact_event(run, chunk, append, ev.last))

    async def _artifact(self, run: _Run, artifact: Artifact, append: bool, last_chunk: bool) -> None:
        existing = next((a for a in run.task.artifacts if a.artifact_id == artifact.artifact_id), None)
        if existing is not None and append:
            existing.parts.extend(artifact.parts)
        elif existing is not None:
            existing.parts = list(artifact.parts)
        else:
            run.task.artifacts.append(artifact.model_copy(deep=True))
        await self._publish(run, self._artifact_event(run, artifact, append, last_chunk))

    def _artifact_event(self, run: _Run, artifact: Artifact, append: bool, last_chunk: bool) -> ArtifactEvent:
        stream = run.stream_artifact
        if stream is not None and artifact.artifact_id == stream.artifact_id:
            index = run.stream_index
        else:
            index = next(i for i, a in enumerate(run.task.artifacts) if a.artifact_id == artifact.artifact_id)
        return ArtifactEvent(
            task_id=run.task.id,
            context_id=run.task.context_id,
            artifact=artifact,
            append=append,
            last_chunk=last_chunk,
            index=index,
        )

    async def _publish(self, run: _Run, event: TaskEvent, save: bool = False) -> None:
        """Queue ``event`` for the task's log. Events queued in one loop tick are written in one batch
        (one transaction), then fanned out in order: a skill never waits for the store per event.

        Waits only when the outbox is full (a skill outrunning the store) or when the event settles
        the task (the run ends once all of it is written and published).
        """
        run.outbox.append(event)
        run.save_pending = run.save_pending or save or event.settles
        run.queued_id += 1
        # keep room for the closing chunk and the final status
        if run.queued_id >= self.max_events - 2 and run.abort is None and not event.settles:
            run.abort = Status(TaskState.FAILED, f"the task reached the event log limit of {self.max_events} events")
            run.ctx.cancelled.set()
        if run.flusher is None or run.flusher.done():
            run.flusher = asyncio.create_task(self._flush(run))
        if event.settles or len(run.outbox) >= _OUTBOX_LIMIT:
            while not run.flusher.done():
                await asyncio.shield(run.flusher)

    async def _flush(self, run: _Run) -> None:
        task_id = run.task.id
        while run.outbox:
            batch, run.outbox = run.outbox, []
            save, run.save_pending = run.save_pending, False
            try:
                logged = await self.store.append_many(task_id, batch, snapshot=self._sync(run) if save else None)
            except Exception as exc:  # a full disk must not wedge the task: end it, keep the server
                log.exception("task %s: the store failed to write %d events", task_id, len(batch))
                logged = []
                if run.abort is None:
                    run.abort = Status(TaskState.FAILED, f"the task store failed: {exc}")
                    run.ctx.cancelled.set()
                if any(e.settles for e in batch):
                    self._end(run)
            if logged:
                run.persisted.set()
            self.metrics.events.inc(len(logged))
            for le in logged:
                run.last_id = le.id
                if le.event.settles:
                    # no await from here to publish: a reader that saw this event in the log sees the run gone
                    self._end(run)
                self.bus.publish(task_id, le)

    @staticmethod
    def _sync(run: _Run) -> Task:
        """The run's task with its streamed text artifact brought up to date."""
        if run.stream_artifact is not None:
            run.stream_artifact.parts[0].text = "".join(run.stream_chunks)
        return run.task

    def _end(self, run: _Run) -> None:
        self._runs.pop(run.task.id, None)
        run.settled.set()
        self._observe_end(run)

    def _observe_end(self, run: _Run) -> None:
        self.metrics.active.set(len(self._runs))
        state = run.task.status.state
        if state.terminal:
            self.metrics.task_counter(run.task.skill, state.value).inc()
        rate = run.clock.rate()
        if rate is not None:
            self.metrics.tps.labels(run.task.skill).observe(rate)

    # ------------------------------------------------------------ queries

    async def get(self, task_id: str) -> Task:
        """The task as it is now: a running task's live state (tokens included), else the stored one."""
        run = self._runs.get(task_id)
        if run is not None:
            return self._sync(run)
        task = await self.store.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def snapshot(self, task_id: str) -> tuple[Task, int]:
        """The task and the id of the last event it reflects, taken together (for resubscribe)."""
        run = self._runs.get(task_id)
        if run is not None:
            # queued events get exactly the next ids and are already reflected in the live task
            return self._sync(run), run.queued_id
        task = await self.get(task_id)
        return task, await self.store.last_event_id(task_id)

    def running(self, task_id: str) -> bool:
        return task_id in self._runs

    async def wait(self, task_id: str, timeout: float) -> Task:
        """Wait until the task is terminal or interrupted, at most ``timeout`` seconds; return it as it is."""
        run = self._runs.get(task_id)
        if run is None:
            return await self.get(task_id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await run.settled.wait()
        # the run's task is what was saved when it settled (or the live one, still running)
        return self._sync(run)

    async def cancel(self, task_id: str) -> Task:
        task = await self.get(task_id)
        if task.status.state.terminal:
            raise TaskNotCancelable(
                f"Task {task_id} is already {task.status.state.value} and cannot be canceled", {"taskId": task_id}
            )
        run = self._runs.get(task_id)
        if run is None:  # interrupted: no skill is running, end it here
            ctx = SkillContext(task.id, task.context_id, task.history[-1], [], {})
            run = _Run(task=task, ctx=ctx, last_id=await self.store.last_event_id(task_id))
            run.ctx.cancelled.set()
            self._runs[task_id] = run
            self.metrics.active.set(len(self._runs))
            await self._finish(run, Status(TaskState.CANCELED))
        else:
            await self._stop(run, self.cancel_grace)
        return await self.get(task_id)

    async def _stop(self, run: _Run, grace: float, abort: Status | None = None) -> None:
        if abort is not None and run.abort is None:
            run.abort = abort
        run.ctx.cancelled.set()
        if run.job is None:
            return
        _, pending = await asyncio.wait({run.job}, timeout=grace)
        if pending:
            run.job.cancel()
            await asyncio.wait({run.job})

    async def events(self, task_id: str, after: int = 0) -> AsyncIterator[LoggedEvent]:
        """``event_batches`` one event at a time."""
        async for batch in self.event_batches(task_id, after):
            for logged in batch:
                yield logged

    async def event_batches(
        self, task_id: str, after: int = 0, subscription: Subscription | None = None
    ) -> AsyncIterator[list[LoggedEvent]]:
        """The task's events with id > ``after``: the log first, then live ones, in batches of whatever is
        ready (so a stream can send several in one write); ends after a settling event.

        A settling event inside the replayed log ends the stream only when it is the newest one (a
        continued input-required task has more). Stops early (returns) if this subscriber is dropped.
        ``subscription``: one opened before the run's first event (its log after ``after`` is then empty
        and is not read); it is closed here.
        """
        async with subscription or self.bus.subscribe(task_id) as sub:
            backlog = [] if subscription is not None else await self.store.read_after(task_id, after)
            last = after
            if backlog:
                yield backlog
                last = backlog[-1].id
            if backlog and backlog[-1].event.settles:
                return
            if subscription is None and task_id not in self._runs:
                return  # nothing live will come (an early subscription holds the run's events, though)
            while (batch := await sub.next_batch()) is not None:
                fresh = [le for le in batch if le.id > last]
                for i, logged in enumerate(fresh):
                    if logged.event.settles:
                        yield fresh[: i + 1]
                        return
                if fresh:
                    yield fresh
                    last = fresh[-1].id

    async def close(self, grace: float) -> None:
        """Take no new tasks, give running ones ``grace`` seconds, then end the rest as failed."""
        self._closing = True
        runs = list(self._runs.values())
        jobs = {r.job for r in runs if r.job is not None}
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=grace)
            interrupted = Status(TaskState.FAILED, "interrupted by server shutdown")
            await asyncio.gather(*(self._stop(r, 0.5, interrupted) for r in runs if r.job in pending))
        self.bus.close_all()

    async def recover(self) -> None:
        """After a restart: end every task a dead process left unsettled, or re-run it if its skill allows."""
        for task in await self.store.unsettled():
            skill = self.skills.find(task.skill)
            ctx = SkillContext(task.id, task.context_id, task.history[-1], task.history[:-1], {})
            run = _Run(task=task, ctx=ctx, last_id=await self.store.last_event_id(task.id))
            self._runs[task.id] = run
            if skill is not None and getattr(skill, "rerunnable", False):
                log.info("task %s [%s] re-run after server restart", task.id, task.skill)
                await self._status(run, _status(TaskState.WORKING, self._said(run, "restarted")))
                run.job = asyncio.create_task(self._drive(run, skill.run(run.ctx), continuing=True))
            else:
                await self._finish(run, Status(TaskState.FAILED, "interrupted by server restart"))
        self.metrics.active.set(len(self._runs))

    async def purge(self, older_than: str) -> int:
        """Delete finished tasks whose last change is older than the ISO timestamp ``older_than``."""
        return await self.store.purge_finished_before(older_than)


def _status(state: TaskState, message: Message | None = None) -> TaskStatus:
    return TaskStatus(state=state, message=message)


async def _aclose(events: AsyncIterator[SkillEvent]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # a skill's cleanup bug must not hide the task's outcome
            log.exception("skill generator raised while closing")
