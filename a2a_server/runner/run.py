"""One run of a task: drives its skill, numbers nothing itself, writes every event through the EventLog.

    claim ──► Run(task, lease epoch) ──► first skill event ──► Reply? ─yes─► MessageEvent, task completed
                                         └─no──► status submitted (working when continuing), then each event
              skill returns            ──► completed
              skill yields settled Status ──► that state (input-required ends the run, not the task)
              skill raises             ──► failed, with the error text
              cancel requested         ──► canceled, keeping the metadata of the skill's last Status
              a write is fenced (LeaseLost) ──► the run stops and writes nothing more: another runner has it

Events are queued in an outbox and written one batch per loop tick (one transaction, with the task snapshot
when a state changed): a skill never waits on the store per event. Execution is decoupled from HTTP: nothing
here knows whether anyone is listening.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from a2a_server.metrics import Metrics, RunClock
from a2a_server.model import (
    Artifact,
    ArtifactEvent,
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
from a2a_server.ports import EventLog, Lease, LeaseLost
from a2a_server.runner.meter import Meter
from a2a_server.skill import ArtifactOut, Reply, SkillContext, SkillEvent, Status, Token

# the text part of every chunk, copied with its text (Run._token)
_TEXT_PART = Part.model_construct(kind="text", text="")
log = logging.getLogger("a2a_server.tasks")

# a skill that outruns the store waits once this many of its events are queued
_OUTBOX_LIMIT = 512


@dataclass
class Run:
    task: Task
    ctx: SkillContext
    lease: Lease | None
    events: EventLog
    metrics: Metrics
    max_events: int
    # called once, synchronously, right after the settling event is committed (before anyone is told)
    on_end: Callable[[Run], None]
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    job: asyncio.Task[None] | None = None
    stopper: asyncio.Task[None] | None = None  # a requested cancel, held so that it is not collected
    on_cancel: Callable[[], None] | None = None  # what this run registered with Control
    # the streamed text artifact of this run (Token events)
    stream_artifact: Artifact | None = None
    stream_chunks: list[str] = field(default_factory=list)
    stream_index: int = 0
    stream_closed: bool = False
    # a re-run: the artifact the lost run streamed in part, which this run's stream restarts (rerun.py)
    restart: Artifact | None = None
    clock: RunClock = field(default_factory=RunClock)
    # set when the runner ends the run for its own reason (event cap, shutdown): the final status to use
    abort: Status | None = None
    # another runner took the task over: nothing more is written
    fenced: bool = False
    # the task is not stored yet: the first batch writes it (Job.create), in the same transaction
    creating: bool = False
    # id of the last event written; events queued for the next batch wait in ``outbox``
    last_id: int = 0
    queued_id: int = 0
    outbox: list[TaskEvent] = field(default_factory=list)
    save_pending: bool = False
    flusher: asyncio.Task[None] | None = None
    # the task runs on a billing channel: each chunk is charged with its event (see meter.py)
    meter: Meter | None = None
    # one chunk of the stream artifact, copied per token with its text (see _token)
    chunk_template: ArtifactEvent | None = None

    def __post_init__(self) -> None:
        self.queued_id = self.last_id

    # -------------------------------------------------------------------- driving the skill

    async def drive(self, events: AsyncIterator[SkillEvent], continuing: bool, opening: str | None = None) -> None:
        """Iterate the skill to its end and write the final status. ``opening``: text of the first status
        (a re-run says why it runs again)."""
        final, started = Status(TaskState.COMPLETED), False
        try:
            async for ev in events:
                if self.abort is not None:
                    break
                if not started:
                    started = True
                    if isinstance(ev, Reply) and not continuing and opening is None:
                        await self._reply(ev)
                        return
                    await self._open(continuing, opening)
                if isinstance(ev, Status):
                    if ev.state.settled or self.ctx.cancelled.is_set():
                        final = ev
                        break
                    await self.status(_status(ev.state, self._said(ev.text)), ev.metadata)
                elif isinstance(ev, Token):
                    await self._token(ev)
                elif isinstance(ev, ArtifactOut):
                    await self._artifact(ev.artifact, ev.append, ev.last_chunk)
                else:
                    final = Status(TaskState.COMPLETED)
                    self.task.history.append(self._agent(ev.parts))
                    break
        except asyncio.CancelledError:
            final = Status(TaskState.CANCELED, metadata=final.metadata)
        except Exception as exc:  # a skill's bug fails its task, never the server
            log.exception("task %s: skill %s raised", self.task.id, self.task.skill)
            final = Status(TaskState.FAILED, text=f"{type(exc).__name__}: {exc}")
        finally:
            await _aclose(events)
        if not started:
            await self._open(continuing, opening)
        if self.abort is not None:
            final = Status(self.abort.state, self.abort.text, final.metadata)
        elif self.ctx.cancelled.is_set():
            final = Status(TaskState.CANCELED, final.text, final.metadata)
        if self.meter is not None:
            reason = {TaskState.COMPLETED: "stop", TaskState.CANCELED: "cancelled"}.get(final.state, final.state.value)
            final = Status(final.state, final.text, self.meter.usage(final.metadata, reason))
        await self.finish(final)

    async def _open(self, continuing: bool, opening: str | None) -> None:
        """The run's first event, written when the skill's first one arrives (unless that is a direct reply)."""
        if continuing and opening is None and self.task.status.state == TaskState.WORKING:
            return  # the service logged this turn's working status when it took the message
        state = TaskState.WORKING if continuing or opening else TaskState.SUBMITTED
        await self.status(_status(state, self._said(opening)))

    async def finish(self, final: Status) -> None:
        if self.stream_artifact is not None and not self.stream_closed:
            await self._token(Token("", last=True))
        message = self._said(final.text)
        if message is not None:
            self.task.history.append(message)
        if final.metadata:
            self.task.metadata = {**(self.task.metadata or {}), **final.metadata}
            self.metrics.count_cost(final.metadata)
        await self.status(_status(final.state, message), final.metadata)

    async def _reply(self, ev: Reply) -> None:
        message = self._agent(ev.parts)
        task = self.task
        task.reply = message
        task.history.append(message)
        task.status = _status(TaskState.COMPLETED, message)
        await self._publish(MessageEvent(task_id=task.id, context_id=task.context_id, message=message))

    def _agent(self, parts: list[Part]) -> Message:
        return Message(role=Role.AGENT, parts=parts, task_id=self.task.id, context_id=self.task.context_id)

    def _said(self, text: str | None) -> Message | None:
        """The agent message of a status that has text."""
        return None if text is None else self._agent([Part.of_text(text)])

    async def status(self, status: TaskStatus, metadata: dict[str, Any] | None = None) -> None:
        task = self.task
        if status.state != task.status.state:
            if status.state.settled:  # one INFO line per turn: its outcome (the steps before it are DEBUG)
                log.info("task %s [%s] %s in %.1f ms (%s)", task.id, task.skill, status.state.value,
                         1000 * (time.perf_counter() - self.clock.started), task.dialect)  # fmt: skip
            else:
                log.debug("task %s [%s] %s -> %s", task.id, task.skill, task.status.state.value, status.state.value)
        task.status = status
        event = StatusEvent(task_id=task.id, context_id=task.context_id, status=status, metadata=metadata)
        # the snapshot is written with the state changes that matter after a crash, in the event's transaction
        await self._publish(event, save=status.state.settled or status.state == TaskState.WORKING)

    async def _token(self, ev: Token) -> None:
        meter = self.meter
        if meter is not None and ev.count and not meter.take(len(self.outbox), ev.count):
            # the channel cannot pay for this chunk: it is not sent, and the run ends with what was delivered:
            # completed when the budget ran out, canceled when the channel was closed or expired meanwhile (as its
            # close would have canceled it a moment later)
            if self.abort is None:
                exhausted = meter.stopped == "budget_exhausted"
                self.abort = Status(TaskState.COMPLETED if exhausted else TaskState.CANCELED)
            self.ctx.cancelled.set()
            return
        art = self.stream_artifact
        append = art is not None
        if art is None:
            art = self.stream_artifact = Artifact(artifact_id=new_id(), name="output", parts=[Part.of_text("")])
            self.stream_index = len(self.task.artifacts)
            if self.restart is not None:  # same id, append false: the lost run's partial answer is replaced
                art.artifact_id, art.name = self.restart.artifact_id, self.restart.name
                ids = [a.artifact_id for a in self.task.artifacts]
                if art.artifact_id in ids:
                    self.stream_index = ids.index(art.artifact_id)
                    del self.task.artifacts[self.stream_index]
            self.task.artifacts.insert(self.stream_index, art)
        if not isinstance(ev.text, str):  # the chunk below is built unchecked
            raise TypeError(f"Token.text must be a str, not {type(ev.text).__name__}")
        # joined only when someone looks (sync): appending to the part's text each time is O(n²)
        self.stream_chunks.append(ev.text)
        self.stream_closed = ev.last
        if ev.text:
            ttft = self.clock.token()
            self.metrics.token_counter(self.task.skill).inc()
            if ttft is not None:
                self.metrics.ttft_histogram(self.task.skill).observe(ttft)
        # once per chunk, from values already checked (the run's own artifact, a Token's str): built without
        # pydantic's validation (a third of the runner's own time per chunk), and copied from a template made once
        # per stream rather than constructed: model_copy is ~1.4 µs a model, model_construct ~2.5 (it resolves
        # every field's default each time): ~20 % of a streamed event's CPU in bench.core's stream c64 (py-spy)
        template = self.chunk_template
        if template is None:  # the artifact's id is final by now (a re-run keeps the lost run's)
            task = self.task
            template = self.chunk_template = ArtifactEvent.model_construct(
                task_id=task.id, context_id=task.context_id, append=False, last_chunk=False, index=0,
                artifact=Artifact.model_construct(artifact_id=art.artifact_id, name=art.name, parts=[]),
            )  # fmt: skip
        part = _TEXT_PART.model_copy(update={"text": ev.text})
        chunk = template.artifact.model_copy(update={"parts": [part]})
        update = {"artifact": chunk, "append": append, "last_chunk": ev.last, "index": self.stream_index}
        await self._publish(template.model_copy(update=update))

    async def _artifact(self, artifact: Artifact, append: bool, last_chunk: bool) -> None:
        artifacts = self.task.artifacts
        index = next((i for i, a in enumerate(artifacts) if a.artifact_id == artifact.artifact_id), None)
        if index is None:
            index = len(artifacts)
            artifacts.append(artifact.model_copy(deep=True))
        elif append:
            artifacts[index].parts.extend(artifact.parts)
        else:
            artifacts[index].parts = list(artifact.parts)
        await self._publish(self._artifact_event(artifact, append, last_chunk, index))

    def _artifact_event(self, artifact: Artifact, append: bool, last_chunk: bool, index: int) -> ArtifactEvent:
        task = self.task
        return ArtifactEvent(
            task_id=task.id, context_id=task.context_id, artifact=artifact, append=append, last_chunk=last_chunk,
            index=index,
        )  # fmt: skip

    # -------------------------------------------------------------------- writing

    async def _publish(self, event: TaskEvent, save: bool = False) -> None:
        """Queue ``event`` for the task's log. Events queued in one loop tick are written in one batch
        (one transaction), then fanned out in order by the log: a skill never waits for the store per event.

        Waits only when the outbox is full (a skill outrunning the store) or when the event settles
        the task (the run ends once all of it is written).
        """
        self.outbox.append(event)
        self.save_pending = self.save_pending or save or event.settles
        self.queued_id += 1
        # keep room for the closing chunk and the final status
        if self.queued_id >= self.max_events - 2 and self.abort is None and not event.settles:
            self.abort = Status(TaskState.FAILED, f"the task reached the event log limit of {self.max_events} events")
            self.ctx.cancelled.set()
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush())
        if event.settles or len(self.outbox) >= _OUTBOX_LIMIT:
            while not self.flusher.done():
                await asyncio.shield(self.flusher)

    async def _flush(self) -> None:
        task_id = self.task.id
        while self.outbox:
            batch, self.outbox = self.outbox, []
            save, self.save_pending = self.save_pending, False
            debits = self.meter.drain() if self.meter is not None else []
            logged = []
            if self.fenced and debits and self.meter is not None:
                self.meter.release(debits)  # never written, never charged
            if not self.fenced:
                try:
                    creating, self.creating = self.creating, False
                    snapshot = self.sync() if save or creating else None
                    if debits and self.meter is not None:
                        logged = await self.meter.append(
                            self.events, task_id, batch, debits, snapshot=snapshot, epoch=self.task.epoch,
                            create=creating,
                        )  # fmt: skip
                    else:
                        logged = await self.events.append_many(
                            task_id, batch, snapshot=snapshot, epoch=self.task.epoch, create=creating
                        )
                except LeaseLost as exc:
                    log.warning("task %s: stopped writing, another runner holds it now (%s)", task_id, exc)
                    self._stop_writing(None)
                except Exception as exc:  # a full disk must not wedge the task: end it, keep the server
                    log.exception("task %s: the store failed to write %d events", task_id, len(batch))
                    self._stop_writing(Status(TaskState.FAILED, f"the task store failed: {exc}"))
            self.metrics.events.inc(len(logged))
            if logged:
                self.last_id = logged[-1].id
            if any(e.settles for e in batch):
                self.on_end(self)

    def _stop_writing(self, abort: Status | None) -> None:
        if abort is None:
            self.fenced = True
        elif self.abort is None:
            self.abort = abort
        self.ctx.cancelled.set()

    def sync(self) -> Task:
        """The run's task with its streamed text artifact brought up to date."""
        if self.stream_artifact is not None:
            self.stream_artifact.parts[0].text = "".join(self.stream_chunks)
        return self.task

    async def stop(self, grace: float, abort: Status | None = None) -> None:
        """Ask the skill to stop; past ``grace`` seconds cancel it (CancelledError in the skill)."""
        if abort is not None and self.abort is None:
            self.abort = abort
        self.ctx.cancelled.set()
        if self.job is None:
            return
        _, pending = await asyncio.wait({self.job}, timeout=grace)
        if pending:
            self.job.cancel()
            await asyncio.wait({self.job})


def _status(state: TaskState, message: Message | None = None) -> TaskStatus:
    return TaskStatus(state=state, message=message)


async def _aclose(events: AsyncIterator[SkillEvent]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # a skill's cleanup bug must not hide the task's outcome
            log.exception("skill generator raised while closing")
