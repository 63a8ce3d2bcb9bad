"""The worker side: claim queued jobs, run their skills, heartbeat the leases, obey Control.

    TaskQueue.claim ─► lease ─► (redelivered? take the task over: new epoch, "requeued after worker loss")
                  ─► Run.drive(skill.run(ctx)) ─► EventLog.append_many … final status ─► TaskQueue.ack
    Control.cancel ─► on_cancel ─► Run.stop(cancel_grace) ─► final status canceled

Recovery after a crash is lease expiry: a job whose runner stopped heartbeating is claimed again. The
embedded backends hold their store under an OS lock, so at start-up every lease of a previous process has
expired by definition; ``recover`` puts its unsettled tasks back on the queue (rerunnable skills) or ends them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from a2a_server.errors import TaskNotFound
from a2a_server.ledger import Ledger
from a2a_server.metrics import Metrics
from a2a_server.model import Message, Part, Role, StatusEvent, Task, TaskState, TaskStatus, new_id
from a2a_server.ports import Control, EventLog, Job, Lease, LeaseLost, TaskQueue, TaskStore
from a2a_server.runner.meter import Meter
from a2a_server.runner.rerun import REQUEUED, abandoned_output, opening
from a2a_server.runner.run import Run
from a2a_server.skill import SkillContext, SkillEvent, SkillRegistry, Status

log = logging.getLogger("a2a_server.tasks")

INTERRUPTED = "interrupted by server restart"


class Runner:
    def __init__(
        self,
        store: TaskStore,
        events: EventLog,
        queue: TaskQueue,
        control: Control,
        skills: SkillRegistry,
        *,
        metrics: Metrics | None = None,
        cancel_grace: float = 2.0,
        max_events: int = 100_000,
        lease_seconds: float = 30.0,
        history_turns: int = 1000,
        ledger: Ledger | None = None,
        max_deliveries: int = 5,
    ) -> None:
        self.store, self.events, self.queue, self.control, self.skills = store, events, queue, control, skills
        self.metrics = metrics or Metrics()
        self.cancel_grace = cancel_grace
        self.max_events = max(max_events, 4)
        self.lease_seconds = lease_seconds
        self.history_turns = history_turns
        self.ledger = ledger
        # a job handed out more often than this (its runners died or stalled each time) fails with the reason
        self.max_deliveries = max_deliveries
        self.worker = new_id()[:12]
        self._runs: dict[str, Run] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._closing = False
        for skill in skills:
            depth = getattr(skill, "queue_depth", None)
            self.metrics.probe_queue(skill.name, _depth(queue, skill.name, depth if callable(depth) else None))

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loops = [asyncio.create_task(self._claim_forever()), asyncio.create_task(self._heartbeat_forever())]

    async def _claim_forever(self) -> None:
        names = self.skills.names()
        while not self._closing:
            lease = await self.queue.claim(names, self.worker)
            try:
                await self._start(lease)
            except Exception:  # one bad job must not stop the runner
                log.exception("task %s: could not start its run", lease.job.task_id)

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            for run in list(self._runs.values()):
                if run.lease is None:
                    continue
                try:
                    await self.queue.heartbeat(run.lease)
                except LeaseLost:
                    log.warning("task %s: its lease went to another runner; stopping it here", run.task.id)
                    run.fenced = True
                    run.ctx.cancelled.set()
                except Exception as exc:  # a shared store away for a moment: the next beat tries again
                    log.warning("task %s: could not extend its lease (%s)", run.task.id, exc)

    async def close(self, grace: float) -> None:
        """Claim nothing more, give running tasks ``grace`` seconds, then end the rest as failed."""
        self._closing = True
        for loop in self._loops:
            loop.cancel()
        runs = list(self._runs.values())
        jobs = {r.job for r in runs if r.job is not None}
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=grace)
            interrupted = Status(TaskState.FAILED, "interrupted by server shutdown")
            await asyncio.gather(*(r.stop(0.5, interrupted) for r in runs if r.job in pending))

    # ------------------------------------------------------------------ one job

    async def _start(self, lease: Lease) -> None:
        job = lease.job
        redelivered = lease.deliveries > 1 or job.rerun
        task, epoch, creating = job.task, job.epoch, job.create
        if redelivered or task is None:
            try:  # fence the earlier holder off before reading what it left
                epoch = await self.store.take_over(job.task_id) if redelivered else job.epoch
                task, creating = await self.store.get(job.task_id), False
            except TaskNotFound:  # a job whose task was never written (its first runner wrote nothing)
                pass
        if task is None or task.status.state.terminal:
            await self.queue.ack(lease)  # canceled (or purged) before any runner got to it
            return
        task.epoch = epoch
        last_id = 0 if creating else await self.events.last_event_id(task.id)
        skill = self.skills.find(task.skill)
        prior = await self._context_history(task) if job.with_context else []
        # a re-run queued by recovery carries no request metadata: the message's own is what survived the crash
        metadata = job.metadata or dict(task.history[-1].metadata or {})
        ctx = SkillContext(task.id, task.context_id, task.history[-1], prior + task.history[:-1], metadata)
        run = self._new_run(task, ctx, lease, last_id)
        run.creating = creating
        if skill is None:
            await run.finish(Status(TaskState.FAILED, f"the skill {task.skill!r} is not enabled on this worker"))
            await self._ack(run)
            return
        if lease.deliveries > self.max_deliveries:  # a task that takes down every worker it runs on stops here
            why = f"gave up after {lease.deliveries - 1} runs: each runner was lost before the task ended"
            log.warning("task %s [%s] failed: %s", task.id, task.skill, why)
            await run.finish(Status(TaskState.FAILED, why))
            await self._ack(run)
            return
        said = None
        if redelivered:
            log.info("task %s [%s] %s (delivery %d)", task.id, task.skill, REQUEUED, lease.deliveries)
            await self._void_abandoned(task)
            # a partly streamed answer is restarted, not kept beside the new one (rerun.py)
            run.restart = await abandoned_output(self.events, task.id) if last_id > 0 else None
            said = opening(run.restart)
        self._meter(run)
        run.job = asyncio.create_task(self._run(run, skill.run(ctx), last_id > 0, said))

    async def _run(self, run: Run, events: AsyncIterator[SkillEvent], continuing: bool, opening: str | None) -> None:
        await run.drive(events, continuing, opening)
        await self._ack(run)

    async def _ack(self, run: Run) -> None:
        # acked only once the final event is committed; a fenced run's entry belongs to another runner now
        if run.lease is not None and not run.fenced:
            try:
                await self.queue.ack(run.lease)
            except Exception:  # the job is handed out again and its re-run sees the task final: no harm
                log.exception("task %s: the queue refused the ack", run.task.id)

    def _new_run(self, task: Task, ctx: SkillContext, lease: Lease | None, last_id: int) -> Run:
        run = Run(task, ctx, lease, self.events, self.metrics, self.max_events, self._end, last_id=last_id)
        self._runs[task.id] = run
        run.on_cancel = self._on_cancel(run)
        self.control.watch(task.id, run.on_cancel)
        self.metrics.active.set(len(self._runs))
        return run

    def _meter(self, run: Run) -> None:
        """A task bound to a billing channel is charged per chunk; its skill is told how many tokens it may send."""
        channel_id = self.ledger.channel_of(run.task.id) if self.ledger is not None else None
        channel = self.ledger.peek(channel_id) if self.ledger is not None and channel_id is not None else None
        if self.ledger is None or channel is None:
            return
        run.meter = Meter(self.ledger, channel.id, channel.token_rate)
        run.ctx.token_budget = max(0, channel.deposit - channel.charged - channel.reserved) // channel.token_rate

    async def _void_abandoned(self, task: Task) -> None:
        """The charges of a run a dead worker abandoned are refunded: the provider failed, not the caller. They are
        the task's charges after its last interrupted status (earlier turns were delivered and stay charged)."""
        if self.ledger is None or self.ledger.channel_of(task.id) is None:
            return
        after = 0
        for logged in await self.events.read_after(task.id, 0):
            ev = logged.event
            if isinstance(ev, StatusEvent) and ev.status.state.interrupted:
                after = logged.id
        voided = await self.ledger.void(task.id, after)
        if voided:
            log.info("task %s: %d tokens of its abandoned run refunded to its channel", task.id, voided)

    def _on_cancel(self, run: Run) -> Callable[[], None]:
        def cancel() -> None:
            run.ctx.cancelled.set()
            # past the grace the skill is cancelled; the task keeps a reference so it is not collected
            run.stopper = asyncio.create_task(run.stop(self.cancel_grace))

        return cancel

    def _end(self, run: Run) -> None:
        if self._runs.get(run.task.id) is run:  # not a newer run of the same task (a follow-up message)
            del self._runs[run.task.id]
        if run.on_cancel is not None:  # only our own: a runner that took the task over has its own
            self.control.unwatch(run.task.id, run.on_cancel)
            # the callback refers to the run: without it the ended run (its task, text, chunks) is freed by its
            # reference count at once, not by a full collection of the cyclic GC later (ARCHITECTURE "Garbage")
            run.on_cancel = None
        run.settled.set()
        if run.meter is not None:
            run.meter.ledger.settle(run.task.id)  # after its final event: nothing of this run is voided later
        self.metrics.active.set(len(self._runs))
        state = run.task.status.state
        if state.terminal:
            self.metrics.task_counter(run.task.skill, state.value).inc()
        rate = run.clock.rate()
        if rate is not None:
            self.metrics.tps.labels(run.task.skill).observe(rate)

    async def _context_history(self, task: Task) -> list[Message]:
        """The messages of the context's earlier tasks of the same owner, oldest first (a conversation)."""
        tasks: list[Task] = []
        token: str | None = None
        while len(tasks) < self.history_turns:
            page = await self.store.list(owner=task.owner, context_id=task.context_id, page_size=100, page_token=token)
            tasks.extend(t for t in page.tasks if t.id != task.id)
            token = page.next_page_token
            if not token:
                break
        return [m for t in reversed(tasks) for m in [*t.history, *_answer(t)]]

    # ------------------------------------------------------------------ what the service may ask

    def live(self, task_id: str) -> tuple[Task, int] | None:
        """``LiveView``: a task running here as it is now, with the id of the last event it reflects."""
        run = self._runs.get(task_id)
        # queued events get exactly the next ids and are already reflected in the live task
        return None if run is None else (run.sync(), run.queued_id)

    def deliver(self, task_id: str, message: Message) -> bool:
        """``Inbox``: a follow-up message for a task running here goes into its history and its skill's inbox."""
        run = self._runs.get(task_id)
        if run is None or run.settled.is_set() or run.task.status.state.settled:
            return False
        run.task.history.append(message)  # stored with the run's next snapshot
        run.ctx.inbox.put_nowait(message)
        return True

    def running(self) -> int:
        return len(self._runs)

    async def recover(self) -> None:
        """After a restart: every task a dead process left unsettled goes back on the queue if its skill can
        run it again, else it ends failed. (Its lease died with that process: see the module docstring.)"""
        for task in await self.store.unsettled():
            skill = self.skills.find(task.skill)
            if skill is not None and getattr(skill, "rerunnable", False):
                await self.queue.put(Job(task.id, task.skill, task.epoch, rerun=True))
                continue
            task.epoch = await self.store.take_over(task.id)
            await self._void_abandoned(task)
            said = _agent(task, INTERRUPTED)
            task.status = TaskStatus(state=TaskState.FAILED, message=said)
            task.history.append(said)
            event = StatusEvent(task_id=task.id, context_id=task.context_id, status=task.status)
            await self.events.append_many(task.id, [event], snapshot=task, epoch=task.epoch)
            log.info("task %s [%s] failed: %s", task.id, task.skill, INTERRUPTED)


def _agent(task: Task, text: str) -> Message:
    return Message(role=Role.AGENT, parts=[Part.of_text(text)], task_id=task.id, context_id=task.context_id)


def _answer(task: Task) -> list[Message]:
    """A finished task's text output as the agent's turn of the conversation (history holds only messages)."""
    text = "".join(p.text or "" for a in task.artifacts for p in a.parts if p.kind == "text")
    if not text.strip() or not task.status.state.terminal:
        return []
    return [_agent(task, text)]


def _depth(queue: TaskQueue, skill: str, inner: Callable[[], int] | None) -> Callable[[], int]:
    """Jobs waiting for a runner plus, when the skill queues internally (model instances), its own waiters."""
    return lambda: queue.depth(skill) + (inner() if inner is not None else 0)
