"""TaskService, the only thing a transport calls, over the real parts built by hand like app.py's lifespan
(MemoryStore + LocalQueue + LocalControl + Runner): submit, continue, cancel, owners, errors, following."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from a2a_server import BaseSkill, Message, Part, Role, SkillCard, SkillContext, SkillEvent, Status, TaskState, Token
from a2a_server.backends import MemoryStore
from a2a_server.backends.local import LocalControl, LocalQueue
from a2a_server.dialects import SendRequest
from a2a_server.errors import (
    A2AError,
    InvalidParams,
    ShuttingDown,
    TaskBusy,
    TaskNotCancelable,
    TaskNotFound,
    UnsupportedOperation,
)
from a2a_server.metrics import Metrics
from a2a_server.model import ArtifactEvent, LoggedEvent, StatusEvent, Task, TaskEvent
from a2a_server.ports import EventFilter, TaskFollow
from a2a_server.runner import Runner
from a2a_server.service import TaskService
from a2a_server.skill import SkillRegistry

# every wait in this file is bounded by this: a lost wake-up fails the test instead of hanging it
DEADLINE = 30

Script = Callable[[SkillContext], AsyncIterator[SkillEvent]]


class ScriptSkill(BaseSkill):
    def __init__(self, name: str, script: Script) -> None:
        self.name = name
        self._script = script

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


async def asks(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    if len(ctx.history) == 0:
        yield Status(TaskState.INPUT_REQUIRED, "which one?")
    else:
        yield Token("you said " + ctx.text, last=True)


async def slow(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    """Streams "x" every 10 ms until canceled."""
    yield Status(TaskState.WORKING)
    while not ctx.cancelled.is_set():
        yield Token("x")
        await ctx.sleep(0.01)


async def burst(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield Status(TaskState.WORKING)
    for i in range(200):
        yield Token(f"{i} ")


SKILLS = [tokens, boom, asks, slow, burst]


@dataclass
class Stack:
    store: MemoryStore
    queue: LocalQueue
    control: LocalControl
    runner: Runner
    service: TaskService

    async def close(self) -> None:
        self.service.close()
        await self.runner.close(0.1)
        await self.queue.close()
        await self.control.close()
        await self.store.close()


def build(*, buffer_limit: int = 8192) -> Stack:
    """The parts app.py's lifespan builds, over the memory backend; the runner is not started yet."""
    store, queue, control, metrics = MemoryStore(buffer_limit), LocalQueue(), LocalControl(), Metrics()
    registry = SkillRegistry(ScriptSkill(f.__name__, f) for f in SKILLS)
    runner = Runner(store, store, queue, control, registry, metrics=metrics, cancel_grace=0.2)
    service = TaskService(store, store, queue, control, registry, metrics=metrics, live=runner, cancel_grace=0.2)
    return Stack(store, queue, control, runner, service)


@pytest.fixture
async def idle() -> AsyncIterator[Stack]:
    """A stack whose runner is not started: what is submitted stays queued."""
    s = build()
    yield s
    await s.close()


@pytest.fixture
async def stack(idle: Stack) -> Stack:
    await idle.runner.start()
    return idle


def request(
    skill: str | None, text: str = "hi", task_id: str | None = None, *, client_task_id: bool = False
) -> SendRequest:
    message = Message(role=Role.USER, parts=[Part.of_text(text)])
    return SendRequest(message=message, task_id=task_id, skill=skill, client_task_id=client_task_id)


async def submit(stack: Stack, req: SendRequest, owner: str = "anonymous") -> str:
    return (await stack.service.submit(req, "1.0", owner=owner)).task.id


async def events_of(stack: Stack, task_id: str, after: int = 0) -> list[LoggedEvent]:
    task = await stack.service.get(task_id, None)
    async with asyncio.timeout(DEADLINE):
        return [le async for le in stack.service.events(task, after)]


async def settled(stack: Stack, task_id: str) -> Task:
    await events_of(stack, task_id)
    return await stack.service.get(task_id, None)


async def streaming(stack: Stack, task_id: str) -> None:
    """Return once the task's skill has streamed its first token."""
    async with stack.service.follow(await stack.service.get(task_id, None), 0) as follower:
        async with asyncio.timeout(DEADLINE):
            async for batch in follower.batches():
                if any(isinstance(le.event, ArtifactEvent) for le in batch):
                    return
    raise AssertionError(f"task {task_id} settled without streaming")


async def drain(follower: TaskFollow) -> list[LoggedEvent]:
    async with asyncio.timeout(DEADLINE):
        return [le async for batch in follower.batches() for le in batch]


def states(events: list[TaskEvent]) -> list[TaskState]:
    return [e.status.state for e in events if isinstance(e, StatusEvent)]


def code(exc: pytest.ExceptionInfo[A2AError]) -> int:
    return exc.value.code


# ---------------------------------------------------------------- submit and send


async def test_a_submitted_task_is_stored_when_submit_returns(idle: Stack) -> None:
    """Even when no runner takes it (the run's first write would have stored it)."""
    task_id = await submit(idle, request("tokens"))
    stored = await idle.store.get(task_id)
    assert stored is not None and stored.status.state == TaskState.SUBMITTED
    assert [m.text for m in stored.history] == ["hi"]
    assert idle.queue.depth("tokens") == 1


async def test_send_blocking_answers_with_the_settled_task(stack: Stack) -> None:
    done = await stack.service.send(request("tokens"), "1.0", blocking=True, timeout=DEADLINE)
    assert done.status.state == TaskState.COMPLETED
    assert done.artifacts[0].parts[0].text == "a b c"
    assert await stack.store.get(done.id) == done


async def test_send_non_blocking_answers_with_a_stored_task(stack: Stack) -> None:
    task = await stack.service.send(request("tokens"), "1.0", blocking=False, timeout=DEADLINE)
    assert await stack.service.get(task.id) is not None
    assert (await settled(stack, task.id)).status.state == TaskState.COMPLETED


async def test_input_required_then_a_follow_up_continues_the_task(stack: Stack) -> None:
    task_id = await submit(stack, request("asks", "first"))
    asked = await settled(stack, task_id)
    assert asked.status.state == TaskState.INPUT_REQUIRED
    assert asked.status.message is not None and asked.status.message.text == "which one?"
    submitted = await stack.service.submit(request("asks", "the blue one", task_id=task_id), "0.3", follow=True)
    assert submitted.task.id == task_id and submitted.after == 2
    assert submitted.follow is not None
    async with submitted.follow as follower:
        await drain(follower)
    done = await stack.service.get(task_id)
    assert done.status.state == TaskState.COMPLETED
    assert done.artifacts[0].parts[0].text == "you said the blue one"
    assert [m.role for m in done.history] == [Role.USER, Role.AGENT, Role.USER]
    # one log across both runs: the continued run opens working
    log = await stack.store.read_after(task_id, 0)
    assert [le.id for le in log] == list(range(1, len(log) + 1))
    assert states([le.event for le in log]) == [TaskState.SUBMITTED, TaskState.INPUT_REQUIRED, TaskState.WORKING,
                                                TaskState.COMPLETED]  # fmt: skip


async def test_a_second_message_before_the_follow_up_runs_is_task_busy(stack: Stack) -> None:
    """Bug: a follow-up stores the task still input-required (``_save_turn``) and the run writes working only
    when it starts, so a second message in between is accepted as a continuation too: two jobs for one task,
    the first message folded into the second's history and never answered (and its run, fenced by the second
    take-over, never acks its lease). The old Engine refused it (``_refuse_running``).
    Fix: a task that took a message is busy until its run settles again; the second message gets TaskBusy."""
    task_id = await submit(stack, request("asks", "first"))
    await settled(stack, task_id)
    submitted = await stack.service.submit(request("asks", "the blue one", task_id=task_id), "0.3", follow=True)
    assert submitted.follow is not None
    async with submitted.follow as follower:
        with pytest.raises(TaskBusy):
            await stack.service.submit(request("asks", "the red one", task_id=task_id), "0.3")
        await drain(follower)
    done = await stack.service.get(task_id)
    assert done.artifacts[0].parts[0].text == "you said the blue one"


async def test_a_follow_of_a_continued_task_waits_for_its_run(stack: Stack) -> None:
    """Bug: until the run of a follow-up message writes its first event, the log ends with the input-required
    status, so a follow of the task after its last event (``events``, tasks/resubscribe) ends at once: the
    reader sees the task still asking for input and misses the whole run (for as long as the job waits in
    the queue). Fix: the message is stored with an event that unsettles the task (as the run's opening does),
    so that a follower waits for the run."""
    task_id = await submit(stack, request("asks", "first"))
    await settled(stack, task_id)
    submitted = await stack.service.submit(request("asks", "the blue one", task_id=task_id), "0.3")
    # a second client resubscribes right after the message was taken, before the run wrote anything
    events = [le.event for le in await events_of(stack, task_id, after=submitted.after)]
    assert states(events)[-1:] == [TaskState.COMPLETED]
    assert [e.artifact.parts[0].text for e in events if isinstance(e, ArtifactEvent)] == ["you said the blue one"]


async def test_a_message_to_a_running_task_is_task_busy(stack: Stack) -> None:
    task_id = await submit(stack, request("slow"))
    await streaming(stack, task_id)
    with pytest.raises(TaskBusy, match="still working") as err:
        await stack.service.submit(request("slow", task_id=task_id), "1.0")
    assert code(err) == -32004 and err.value.http_status == 409
    assert isinstance(err.value, UnsupportedOperation)
    await stack.service.cancel(task_id)


async def test_a_client_chosen_id_that_is_taken_is_task_busy(stack: Stack) -> None:
    await submit(stack, request("slow", task_id="mine", client_task_id=True), owner="alice")
    await streaming(stack, "mine")
    with pytest.raises(TaskBusy):
        await submit(stack, request("slow", task_id="mine", client_task_id=True), owner="alice")
    # another owner cannot see the task, and cannot take its id either
    with pytest.raises(TaskBusy, match="already exists"):
        await submit(stack, request("tokens", task_id="mine", client_task_id=True), owner="bob")
    running = await stack.service.get("mine", "alice")
    assert running.skill == "slow" and running.owner == "alice"
    await stack.service.cancel("mine", "alice")


async def test_errors(stack: Stack) -> None:
    with pytest.raises(TaskNotFound) as err:
        await stack.service.get("nope")
    assert code(err) == -32001
    with pytest.raises(TaskNotFound):
        await stack.service.cancel("nope")
    with pytest.raises(TaskNotFound):
        await submit(stack, request("tokens", task_id="nope"))
    with pytest.raises(InvalidParams, match="enabled skills: tokens, boom, asks, slow, burst") as bad:
        await submit(stack, request("nosuch"))
    assert code(bad) == -32602 and bad.value.param == "metadata.skill"
    task_id = await submit(stack, request("tokens"))
    await settled(stack, task_id)
    with pytest.raises(UnsupportedOperation, match="terminal") as terminal:
        await submit(stack, request("tokens", task_id=task_id))
    assert code(terminal) == -32004
    with pytest.raises(TaskNotCancelable) as finished:
        await stack.service.cancel(task_id)
    assert code(finished) == -32002


async def test_a_skill_that_raises_fails_only_its_task(stack: Stack) -> None:
    failed = await settled(stack, await submit(stack, request("boom")))
    assert failed.status.state == TaskState.FAILED
    assert (await settled(stack, await submit(stack, request("tokens")))).status.state == TaskState.COMPLETED


async def test_close_refuses_new_tasks_and_ends_running_ones(stack: Stack) -> None:
    task_id = await submit(stack, request("slow"))
    await streaming(stack, task_id)
    stack.service.close()
    with pytest.raises(ShuttingDown) as err:
        await submit(stack, request("tokens"))
    assert code(err) == -32004 and err.value.http_status == 503 and err.value.cause == "shutting_down"
    await stack.runner.close(grace=0.05)
    done = await stack.service.get(task_id)
    assert done.status.state.terminal


# ---------------------------------------------------------------- owners


async def test_another_owners_task_is_not_there(stack: Stack) -> None:
    task_id = await submit(stack, request("slow"), owner="alice")
    await streaming(stack, task_id)
    for call in (stack.service.get(task_id, "bob"), stack.service.snapshot(task_id, "bob"),
                 stack.service.cancel(task_id, "bob")):  # fmt: skip
        with pytest.raises(TaskNotFound):
            await call
    with pytest.raises(TaskNotFound):
        await submit(stack, request("slow", task_id=task_id), owner="bob")
    assert (await stack.service.list("bob")).tasks == []
    assert [t.id for t in (await stack.service.list("alice")).tasks] == [task_id]
    assert [t.id for t in (await stack.service.list(None)).tasks] == [task_id]  # an administrator
    assert (await stack.service.get(task_id, "alice")).status.state == TaskState.WORKING
    canceled = await stack.service.cancel(task_id, None)
    assert canceled.status.state == TaskState.CANCELED


async def test_follow_all_of_one_owner(stack: Stack) -> None:
    mine = await settled(stack, await submit(stack, request("tokens"), owner="alice"))
    await settled(stack, await submit(stack, request("tokens"), owner="bob"))
    async with contextlib.aclosing(stack.service.follow_all(EventFilter(owner="alice"))) as events:
        got = []
        async with asyncio.timeout(DEADLINE):
            async for batch in events:
                got.extend(batch)
                if len(got) >= 7:
                    break
    assert {(g.task_id, g.owner) for g in got} == {(mine.id, "alice")}
    assert [g.logged.id for g in got] == list(range(1, 8))


# ---------------------------------------------------------------- cancel


async def test_cancel_of_an_interrupted_task(stack: Stack) -> None:
    task_id = await submit(stack, request("asks"))
    await settled(stack, task_id)
    assert (await stack.service.cancel(task_id)).status.state == TaskState.CANCELED
    assert states([le.event for le in await stack.store.read_after(task_id, 0)]) == [
        TaskState.SUBMITTED, TaskState.INPUT_REQUIRED, TaskState.CANCELED
    ]  # fmt: skip


async def test_cancel_of_a_task_still_queued_ends_it_without_a_run(idle: Stack) -> None:
    task_id = await submit(idle, request("tokens"))
    canceled = await idle.service.cancel(task_id)
    assert canceled.status.state == TaskState.CANCELED
    assert idle.queue.depth("tokens") == 0
    # a runner that starts now finds nothing of it to run: the next task it runs is the next one queued
    await idle.runner.start()
    later = await settled(idle, await submit(idle, request("tokens")))
    assert later.status.state == TaskState.COMPLETED
    assert states([le.event for le in await idle.store.read_after(task_id, 0)]) == [TaskState.CANCELED]
    assert (await idle.service.get(task_id)).status.state == TaskState.CANCELED


async def test_cancel_of_a_running_task_reaches_its_runner(stack: Stack) -> None:
    task_id = await submit(stack, request("slow"))
    await streaming(stack, task_id)
    canceled = await stack.service.cancel(task_id)
    assert canceled.status.state == TaskState.CANCELED
    log = [le.event for le in await stack.store.read_after(task_id, 0)]
    assert states(log) == [TaskState.SUBMITTED, TaskState.WORKING, TaskState.CANCELED]
    closing = [e for e in log if isinstance(e, ArtifactEvent)][-1]
    assert closing.last_chunk  # the run closed its stream: the runner, not the service, ended it
    assert stack.runner.running() == 0


# ---------------------------------------------------------------- following


async def test_replay_then_live_has_no_gap_and_no_duplicate(stack: Stack) -> None:
    task_id = await submit(stack, request("slow"))
    task = await stack.service.get(task_id)
    first: list[LoggedEvent] = []
    async with contextlib.aclosing(stack.service.events(task)) as events, asyncio.timeout(DEADLINE):
        async for le in events:
            first.append(le)
            if len(first) == 4:
                break
    resume = asyncio.create_task(events_of(stack, task_id, after=first[-1].id))
    await asyncio.sleep(0.05)  # let the skill stream on while the resumed reader is live
    await stack.service.cancel(task_id)
    rest = await resume
    full = await stack.store.read_after(task_id, 0)
    assert [le.id for le in first + rest] == [le.id for le in full] == list(range(1, len(full) + 1))
    assert [le.event for le in first + rest] == [le.event for le in full]


async def test_a_resubscribe_from_the_snapshot_continues_where_it_ends(stack: Stack) -> None:
    """``snapshot`` of a running task is the runner's live view (tokens not yet stored); following after its
    id yields exactly the events the snapshot does not reflect."""
    task_id = await submit(stack, request("slow"))
    await streaming(stack, task_id)
    live, last = await stack.service.snapshot(task_id)
    assert live.status.state == TaskState.WORKING
    seen = live.artifacts[0].parts[0].text or ""
    after: list[LoggedEvent] = []
    async with stack.service.follow(live, last) as follower:
        await stack.service.cancel(task_id)
        async with asyncio.timeout(DEADLINE):
            async for batch in follower.batches():
                after.extend(batch)
    assert after[0].id == last + 1
    streamed = "".join(e.event.artifact.parts[0].text or "" for e in after if isinstance(e.event, ArtifactEvent))
    done = await stack.service.get(task_id)
    assert done.artifacts[0].parts[0].text == seen + streamed


async def test_a_reader_too_slow_for_its_buffer_catches_up_from_the_log() -> None:
    s = build(buffer_limit=4)
    try:
        await s.runner.start()
        task_id = await submit(s, request("burst"))
        task = await s.service.get(task_id)
        got: list[LoggedEvent] = []
        async with contextlib.aclosing(s.service.events(task)) as events, asyncio.timeout(DEADLINE):
            async for le in events:
                got.append(le)
                await asyncio.sleep(0)  # slower than the skill: its follower is dropped and resumes
        full = await s.store.read_after(task_id, 0)
        assert [le.id for le in got] == [le.id for le in full] == list(range(1, 205))
    finally:
        await s.close()
