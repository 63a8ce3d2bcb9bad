"""The runner driven through the real parts, built by hand like app.py's lifespan: MemoryStore + LocalQueue +
LocalControl + Runner + TaskService, with small skills written for each path of a run."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from a2a_server import (
    Artifact,
    ArtifactOut,
    BaseSkill,
    Message,
    Part,
    Reply,
    Role,
    SkillCard,
    SkillContext,
    SkillEvent,
    Status,
    TaskState,
    Token,
)
from a2a_server.backends import MemoryStore
from a2a_server.backends.local import LocalControl, LocalQueue
from a2a_server.dialects import SendRequest
from a2a_server.metrics import Metrics
from a2a_server.model import ArtifactEvent, LoggedEvent, MessageEvent, StatusEvent, Task, TaskEvent, TaskStatus
from a2a_server.ports import Job
from a2a_server.runner import REQUEUED, Runner
from a2a_server.service import TaskService
from a2a_server.skill import Skill, SkillRegistry

# every wait in this file is bounded by this: a lost wake-up fails the test instead of hanging it
DEADLINE = 30

Script = Callable[[SkillContext], AsyncIterator[SkillEvent]]


class ScriptSkill(BaseSkill):
    def __init__(self, name: str, script: Script, *, rerunnable: bool = False) -> None:
        self.name = name
        self._script = script
        self.rerunnable = rerunnable

    def card(self) -> SkillCard:
        return SkillCard(id=self.name, name=self.name, description="test")

    def run(self, ctx: SkillContext) -> AsyncIterator[SkillEvent]:
        return self._script(ctx)


async def tokens(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield Status(TaskState.WORKING)
    for word in ("a ", "b ", "c"):
        yield Token(word)


async def boom(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield Status(TaskState.WORKING)
    raise RuntimeError("model exploded")


async def slow_with_usage(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield Status(TaskState.WORKING)
    n = 0
    while not ctx.cancelled.is_set():
        n += 1
        yield Token("x")
        await ctx.sleep(0.01)
    yield Status(TaskState.COMPLETED, metadata={"usage": {"completion_tokens": n}})


async def stubborn(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield Status(TaskState.WORKING)
    await asyncio.sleep(3600)  # ignores the cancel flag: the runner must hard-cancel it


async def replies(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield Reply([Part.of_text("direct")])


async def chatty(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield Status(TaskState.WORKING)
    for _ in range(1000):
        yield Token("x")


async def remembers(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield Token(" | ".join(m.text for m in ctx.history), last=True)


async def document_then_tokens(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield ArtifactOut(Artifact(artifact_id="doc", name="doc", parts=[Part.of_text("a document")]))
    yield Token("streamed ")
    yield Token("text", last=True)


async def ticks(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    """Fifty tokens 20 ms apart: a run that outlives a lease of 0.2 s five times over."""
    yield Status(TaskState.WORKING)
    for i in range(50):
        if await ctx.sleep(0.02):
            return
        yield Token(f"{i} ")


SKILLS = [tokens, boom, slow_with_usage, stubborn, replies, chatty, remembers, document_then_tokens, ticks]


@dataclass
class Stack:
    store: MemoryStore
    queue: LocalQueue
    control: LocalControl
    metrics: Metrics
    runner: Runner
    service: TaskService

    async def close(self) -> None:
        self.service.close()
        await self.runner.close(0.1)
        await self.queue.close()
        await self.control.close()
        await self.store.close()


def build(
    skills: list[Skill] | None = None,
    *,
    store: MemoryStore | None = None,
    queue: LocalQueue | None = None,
    control: LocalControl | None = None,
    cancel_grace: float = 0.2,
    max_events: int = 100_000,
    lease_seconds: float = 30.0,
) -> Stack:
    """The parts app.py's lifespan builds, over the memory backend (shared parts may be passed in)."""
    store = store or MemoryStore()
    queue = queue or LocalQueue(lease_seconds)
    control = control or LocalControl()
    registry = SkillRegistry(skills if skills is not None else [ScriptSkill(f.__name__, f) for f in SKILLS])
    metrics = Metrics()
    runner = Runner(store, store, queue, control, registry, metrics=metrics, cancel_grace=cancel_grace,
                    max_events=max_events, lease_seconds=lease_seconds)  # fmt: skip
    service = TaskService(store, store, queue, control, registry, metrics=metrics, live=runner,
                          cancel_grace=cancel_grace)  # fmt: skip
    return Stack(store, queue, control, metrics, runner, service)


@pytest.fixture
async def stacks() -> AsyncIterator[list[Stack]]:
    """Stacks a test built with ``build``; closed after it."""
    opened: list[Stack] = []
    yield opened
    for s in opened:
        await s.close()


@pytest.fixture
async def stack(stacks: list[Stack]) -> Stack:
    """The skills above on a started runner."""
    s = build()
    stacks.append(s)
    await s.runner.start()
    return s


def request(skill: str, text: str = "hi", task_id: str | None = None, context_id: str | None = None) -> SendRequest:
    message = Message(role=Role.USER, parts=[Part.of_text(text)])
    return SendRequest(message=message, task_id=task_id, context_id=context_id, skill=skill)


async def submit(stack: Stack, req: SendRequest, owner: str = "anonymous") -> str:
    return (await stack.service.submit(req, "1.0", owner=owner)).task.id


async def events_of(stack: Stack, task_id: str, after: int = 0) -> list[TaskEvent]:
    """The task's events after ``after``, until it settles."""
    task = await stack.service.get(task_id, None)
    async with asyncio.timeout(DEADLINE):
        return [le.event async for le in stack.service.events(task, after)]


async def settled(stack: Stack, task_id: str) -> Task:
    await events_of(stack, task_id)
    return await stack.service.get(task_id, None)


def states(events: list[TaskEvent]) -> list[TaskState]:
    return [e.status.state for e in events if isinstance(e, StatusEvent)]


def texts(events: list[TaskEvent]) -> list[str | None]:
    return [e.artifact.parts[0].text for e in events if isinstance(e, ArtifactEvent)]


async def wait_until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(DEADLINE):
        while not check():
            await asyncio.sleep(0.01)


# ---------------------------------------------------------------- how a run goes


async def test_tokens_become_one_artifact_streamed_in_chunks(stack: Stack) -> None:
    task_id = await submit(stack, request("tokens"))
    evs = await events_of(stack, task_id)
    assert states(evs) == [TaskState.SUBMITTED, TaskState.WORKING, TaskState.COMPLETED]
    chunks = [e for e in evs if isinstance(e, ArtifactEvent)]
    assert texts(evs) == ["a ", "b ", "c", ""]
    assert [c.append for c in chunks] == [False, True, True, True]
    assert [c.last_chunk for c in chunks] == [False, False, False, True]
    assert len({c.artifact.artifact_id for c in chunks}) == 1
    done = await stack.service.get(task_id)
    assert done.artifacts[0].parts[0].text == "a b c"
    assert [le.id for le in await stack.store.read_after(task_id, 0)] == list(range(1, 8))


async def test_a_skill_that_raises_fails_its_task_with_the_error(stack: Stack) -> None:
    done = await settled(stack, await submit(stack, request("boom")))
    assert done.status.state == TaskState.FAILED
    assert done.status.message is not None and done.status.message.text == "RuntimeError: model exploded"


async def test_a_direct_reply_is_the_only_event(stack: Stack) -> None:
    task_id = await submit(stack, request("replies"))
    evs = await events_of(stack, task_id)
    assert len(evs) == 1 and isinstance(evs[0], MessageEvent) and evs[0].message.text == "direct"
    done = await stack.service.get(task_id)
    assert done.reply is not None and done.reply.text == "direct"
    assert done.status.state == TaskState.COMPLETED


async def test_regression_stream_index_is_the_stream_artifacts_position(stack: Stack) -> None:
    """Bug: _Run.stream_index was never assigned: a token artifact after an ArtifactOut was rendered with index 0.
    Fix: the stream artifact's index is its position in the task's artifacts."""
    task_id = await submit(stack, request("document_then_tokens"))
    artifacts = [e for e in await events_of(stack, task_id) if isinstance(e, ArtifactEvent)]
    assert [(a.artifact.name, a.index) for a in artifacts] == [("doc", 0), ("output", 1), ("output", 1)]
    done = await stack.service.get(task_id)
    assert [a.parts[0].text for a in done.artifacts] == ["a document", "streamed text"]


async def test_cancel_keeps_the_metadata_of_the_skills_last_status(stack: Stack) -> None:
    task_id = await submit(stack, request("slow_with_usage"))
    async with stack.service.follow(await stack.service.get(task_id), 0) as follower:
        async with asyncio.timeout(DEADLINE):
            async for batch in follower.batches():  # until the skill has streamed a token
                if any(isinstance(le.event, ArtifactEvent) for le in batch):
                    break
    canceled = await stack.service.cancel(task_id)
    assert canceled.status.state == TaskState.CANCELED
    assert canceled.metadata is not None and canceled.metadata["usage"]["completion_tokens"] >= 1
    final = (await stack.store.read_after(task_id, 0))[-1].event
    assert isinstance(final, StatusEvent) and final.metadata == canceled.metadata


async def test_a_skill_that_ignores_cancel_is_cancelled_after_the_grace(stack: Stack) -> None:
    task_id = await submit(stack, request("stubborn"))
    await wait_until(lambda: stack.runner.live(task_id) is not None)
    async with asyncio.timeout(DEADLINE):
        canceled = await stack.service.cancel(task_id)
    assert canceled.status.state == TaskState.CANCELED
    assert states(await events_of(stack, task_id)) == [TaskState.SUBMITTED, TaskState.WORKING, TaskState.CANCELED]
    assert stack.runner.running() == 0


async def test_a_skill_past_the_event_cap_fails_its_task_and_the_log_stays_bounded(stacks: list[Stack]) -> None:
    s = build([ScriptSkill("chatty", chatty)], max_events=50)
    stacks.append(s)
    await s.runner.start()
    done = await settled(s, await submit(s, request("chatty")))
    assert done.status.state == TaskState.FAILED
    assert done.status.message is not None and "event log limit of 50" in done.status.message.text
    assert await s.store.last_event_id(done.id) <= 50


async def test_a_skill_gets_the_history_of_its_context_and_only_its_owners(stack: Stack) -> None:
    first = await settled(stack, await submit(stack, request("remembers", "my name is Ada"), owner="alice"))
    # bob's task in the same context is not part of alice's conversation
    theirs = await submit(stack, request("remembers", "bob's secret", context_id=first.context_id), owner="bob")
    await settled(stack, theirs)
    second = await settled(stack, await submit(stack, request("remembers", "what is my name?",
                                                              context_id=first.context_id), owner="alice"))  # fmt: skip
    assert second.context_id == first.context_id
    # the history is what came before the current message: the first task's user turn (its answer was empty)
    assert second.artifacts[0].parts[0].text == "my name is Ada"
    # and a finished task's text output counts as the agent's turn
    third = await settled(stack, await submit(stack, request("remembers", "again?", context_id=first.context_id),
                                              owner="alice"))  # fmt: skip
    assert third.artifacts[0].parts[0].text == "my name is Ada | what is my name? | my name is Ada"


async def test_regression_queue_depth_is_probed(stacks: list[Stack]) -> None:
    """Bug: Metrics.probe_queue was never called: /metrics had no a2a_queue_depth sample.
    Fix: a Runner built over a registry probes the queue depth of each of its skills (plus what a skill queues
    itself)."""

    class Pooled(ScriptSkill):
        def queue_depth(self) -> int:
            return 2  # requests waiting inside the skill for a model instance

    s = build([ScriptSkill("tokens", tokens), Pooled("pooled", tokens)])
    stacks.append(s)  # never started: nothing claims
    text = s.metrics.render().decode()
    assert 'a2a_queue_depth{skill="tokens"} 0.0' in text
    assert 'a2a_queue_depth{skill="pooled"} 2.0' in text
    await s.queue.put(Job("t1", "tokens", 1))
    await s.queue.put(Job("t2", "pooled", 1))
    text = s.metrics.render().decode()
    assert 'a2a_queue_depth{skill="tokens"} 1.0' in text
    assert 'a2a_queue_depth{skill="pooled"} 3.0' in text


# ---------------------------------------------------------------- shutdown and recovery


async def test_close_ends_running_tasks_failed_with_the_reason(stack: Stack) -> None:
    task_id = await submit(stack, request("stubborn"))
    await wait_until(lambda: stack.runner.live(task_id) is not None)
    stack.service.close()
    await stack.runner.close(grace=0.05)
    done = await stack.service.get(task_id)
    assert done.status.state == TaskState.FAILED
    assert done.status.message is not None and done.status.message.text == "interrupted by server shutdown"
    assert states(await events_of(stack, task_id))[-1] == TaskState.FAILED


def _left_running(task_id: str, skill: str) -> Task:
    """A task as a process that died mid-run left it: stored working, with its first events logged."""
    user = Message(role=Role.USER, parts=[Part.of_text("hi")], task_id=task_id, context_id="c1")
    return Task(id=task_id, context_id="c1", status=TaskStatus(state=TaskState.WORKING), skill=skill,
                history=[user], epoch=1)  # fmt: skip


async def _die_mid_run(store: MemoryStore, task: Task) -> None:
    await store.create(task)
    opening = [StatusEvent(task_id=task.id, context_id="c1", status=TaskStatus(state=s))
               for s in (TaskState.SUBMITTED, TaskState.WORKING)]  # fmt: skip
    await store.append_many(task.id, opening, snapshot=task, epoch=1)


async def test_recover_fails_what_a_dead_process_left_running(stacks: list[Stack]) -> None:
    s = build([ScriptSkill("tokens", tokens)])
    stacks.append(s)
    await _die_mid_run(s.store, _left_running("t1", "tokens"))
    await s.runner.recover()
    await s.runner.start()
    done = await s.service.get("t1")
    assert done.status.state == TaskState.FAILED
    assert done.status.message is not None and done.status.message.text == "interrupted by server restart"
    events = await s.store.read_after("t1", 0)
    assert [le.id for le in events] == [1, 2, 3]
    assert states([le.event for le in events]) == [TaskState.SUBMITTED, TaskState.WORKING, TaskState.FAILED]
    assert await s.store.take_over("t1") == 3  # recover took the task over: a late writer of epoch 1 is fenced


async def test_recover_reruns_a_rerunnable_skill(stacks: list[Stack]) -> None:
    s = build([ScriptSkill("tokens", tokens, rerunnable=True)])
    stacks.append(s)
    await _die_mid_run(s.store, _left_running("t2", "tokens"))
    await s.runner.recover()
    await s.runner.start()
    done = await settled(s, "t2")
    assert done.status.state == TaskState.COMPLETED
    assert done.artifacts[0].parts[0].text == "a b c"
    log = await s.store.read_after("t2", 0)
    assert [le.id for le in log] == list(range(1, len(log) + 1))
    rerun = log[2].event  # the run after the two events the dead process left
    assert isinstance(rerun, StatusEvent) and rerun.status.state == TaskState.WORKING
    assert rerun.status.message is not None and rerun.status.message.text == REQUEUED


async def test_a_rerun_restarts_the_artifact_its_lost_run_streamed_in_part(stacks: list[Stack]) -> None:
    """Issue 10: "a re-run of a partly streamed generation says so and restarts its artifact" (same artifact id,
    its first chunk with append false: a client that assembles by id replaces the partial answer)."""
    s = build([ScriptSkill("tokens", tokens, rerunnable=True)])
    stacks.append(s)
    task = _left_running("t4", "tokens")
    await _die_mid_run(s.store, task)
    partial = Artifact(artifact_id="lost", name="output", parts=[Part.of_text("a ")])
    task.artifacts = [partial]  # the dead run's snapshot already held its partial answer
    chunk = ArtifactEvent(task_id="t4", context_id="c1", artifact=partial, index=0)
    await s.store.append_many("t4", [chunk], snapshot=task, epoch=1)
    await s.runner.recover()
    await s.runner.start()
    done = await settled(s, "t4")
    log = await s.store.read_after("t4", 0)
    assert [le.id for le in log] == list(range(1, len(log) + 1))
    opening = log[3].event
    assert isinstance(opening, StatusEvent) and opening.status.message is not None
    assert opening.status.message.text == REQUEUED + "; the output streamed so far is discarded and restarts from " \
        "the beginning"  # fmt: skip
    chunks = [le.event for le in log[4:] if isinstance(le.event, ArtifactEvent)]
    assert [c.artifact.artifact_id for c in chunks] == ["lost"] * len(chunks) and len(chunks) == 4
    assert [c.append for c in chunks] == [False, True, True, True] and {c.index for c in chunks} == {0}
    assert [(a.artifact_id, a.parts[0].text) for a in done.artifacts] == [("lost", "a b c")]


async def _lose_the_lease(stacks: list[Stack]) -> tuple[Stack, Stack, str]:
    """Two runners on one queue, store and control: the first claims a task and then stops heartbeating (and
    claiming) mid-run; its lease expires and the second takes the task over. Returns once the first run,
    fenced off, has stopped."""
    shared = build(lease_seconds=0.2)
    stacks.append(shared)
    other = build(store=shared.store, queue=shared.queue, control=shared.control, lease_seconds=0.2)
    stacks.append(other)
    first, second = shared.runner, other.runner
    await first.start()
    task_id = await submit(shared, request("ticks"))
    await wait_until(lambda: first.live(task_id) is not None)
    for loop in first._loops:  # wedged: no heartbeat, no claim; its run goes on writing
        loop.cancel()
    await second.start()
    await wait_until(lambda: second.live(task_id) is not None)
    await wait_until(lambda: first.running() == 0)  # the first run hit the fence and stopped
    return shared, other, task_id


async def test_a_runner_whose_lease_expired_loses_the_task_and_cannot_write_to_it(
    stacks: list[Stack], caplog: pytest.LogCaptureFixture
) -> None:
    """The second runner runs the task again; every write of the first after the take-over is fenced off."""
    caplog.set_level(logging.WARNING, logger="a2a_server.tasks")
    shared, other, task_id = await _lose_the_lease(stacks)
    done = await settled(other, task_id)

    assert done.status.state == TaskState.COMPLETED
    log: list[LoggedEvent] = await shared.store.read_after(task_id, 0)
    assert [le.id for le in log] == list(range(1, len(log) + 1))
    finals = [le for le in log if le.event.settles]
    assert len(finals) == 1 and finals[0] is log[-1]
    requeued = [le.id for le in log if isinstance(le.event, StatusEvent) and le.event.status.message is not None
                and (le.event.status.message.text or "").startswith(REQUEUED)]  # fmt: skip
    assert len(requeued) == 1
    # after the take-over the log holds only the second run: its opening, its fifty tokens, its end
    rerun = [le.event for le in log if le.id >= requeued[0]]
    assert texts(rerun) == [f"{i} " for i in range(50)] + [""]
    assert done.artifacts[0].parts[0].text == "".join(f"{i} " for i in range(50))
    assert any("another runner holds it now" in r.getMessage() for r in caplog.records)
    assert await shared.store.last_event_id(task_id) == log[-1].id  # nothing written after the end


async def test_a_cancel_reaches_the_runner_that_took_a_task_over(stacks: list[Stack]) -> None:
    """Bug: the fenced run's end (``Runner._end``) calls ``control.unwatch(task)``, which drops the callback the
    runner that took the task over had registered for it: a cancel then reaches nobody (``cancel`` returns
    False), the service ends the task itself and fences off the runner that is running it.
    Fix: a runner unwatches only its own watch (e.g. ``unwatch(task, callback)``, or not at all once fenced)."""
    shared, other, task_id = await _lose_the_lease(stacks)
    assert other.runner.live(task_id) is not None  # the second run is still going
    assert await shared.control.cancel(task_id) is True
    done = await settled(other, task_id)
    assert done.status.state == TaskState.CANCELED


async def test_a_token_whose_text_is_not_a_str_fails_its_task_with_the_reason(stacks: list[Stack]) -> None:
    """A chunk is built without pydantic's checks (Run._token, the hot path): a bad Token must still be refused,
    not streamed as ``"text": null``."""

    async def bad_token(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
        yield Token("fine ")
        yield Token(None)  # type: ignore[arg-type]

    s = build([ScriptSkill("bad_token", bad_token)])
    stacks.append(s)
    await s.runner.start()
    task_id = await submit(s, request("bad_token"))
    evs = await events_of(s, task_id)
    assert texts(evs)[0] == "fine " and None not in texts(evs)
    done = await s.service.get(task_id)
    assert done.status.state == TaskState.FAILED
    assert done.status.message is not None
    assert done.status.message.text == "TypeError: Token.text must be a str, not NoneType"


async def test_regression_an_ended_run_is_freed_without_the_cycle_collector(stacks: list[Stack]) -> None:
    """An ended run kept itself alive through the cancel callback it registered (run -> callback -> run), so each
    run with its task, text and chunks waited for a full collection of the cyclic collector, which a served
    process makes rare (collector.py). Ended by completing and by a cancel, each run must go by reference count."""
    gate = asyncio.Event()

    async def waits(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
        yield Status(TaskState.WORKING)
        await gate.wait()
        yield Token("done")

    s = build([ScriptSkill("waits", waits), ScriptSkill("slow_with_usage", slow_with_usage)])
    stacks.append(s)
    await s.runner.start()
    gc.disable()
    try:
        completes = await submit(s, request("waits"))
        cancelled = await submit(s, request("slow_with_usage"))
        await wait_until(lambda: completes in s.runner._runs and cancelled in s.runner._runs)
        runs = [weakref.ref(s.runner._runs[completes]), weakref.ref(s.runner._runs[cancelled])]
        assert await s.control.cancel(cancelled) is True
        gate.set()
        assert (await settled(s, completes)).status.state == TaskState.COMPLETED
        assert (await settled(s, cancelled)).status.state == TaskState.CANCELED
        async with asyncio.timeout(5):  # the runner's own frames let go within a few loop turns
            while any(r() is not None for r in runs):
                await asyncio.sleep(0.01)
    finally:
        gc.enable()
