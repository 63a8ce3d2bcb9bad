"""The engine driven directly with small skills written for each lifecycle path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from a2a_server import (
    BaseSkill,
    Message,
    Part,
    Role,
    SkillCard,
    SkillContext,
    SkillEvent,
    Status,
    TaskState,
    Token,
)
from a2a_server.bus import EventBus
from a2a_server.dialects import SendRequest
from a2a_server.engine import Engine
from a2a_server.errors import InvalidParams, TaskNotCancelable, TaskNotFound, UnsupportedOperation
from a2a_server.model import ArtifactEvent, MessageEvent, StatusEvent, Task, TaskStatus
from a2a_server.skill import Reply, SkillRegistry
from a2a_server.stores import MemoryStore

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
    await asyncio.sleep(3600)  # ignores the cancel flag: the engine must hard-cancel it


async def replies(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield Reply([Part.of_text("direct")])


SKILLS = {f.__name__: f for f in (tokens, boom, asks, slow_with_usage, stubborn, replies)}


@pytest.fixture
def engine() -> Engine:
    registry = SkillRegistry(ScriptSkill(name, f) for name, f in SKILLS.items())
    return Engine(MemoryStore(), EventBus(), registry, cancel_grace=0.2)


def request(skill: str, text: str = "hi", task_id: str | None = None) -> SendRequest:
    return SendRequest(message=Message(role=Role.USER, parts=[Part.of_text(text)]), task_id=task_id, skill=skill)


async def events_of(engine: Engine, task_id: str, after: int = 0) -> list[StatusEvent | ArtifactEvent | MessageEvent]:
    async with asyncio.timeout(5):
        return [le.event async for le in engine.events(task_id, after)]


async def test_tokens_become_one_artifact_streamed_in_chunks(engine: Engine) -> None:
    task = await engine.submit(request("tokens"), "1.0")
    evs = await events_of(engine, task.id)
    states = [e.status.state for e in evs if isinstance(e, StatusEvent)]
    assert states == [TaskState.SUBMITTED, TaskState.WORKING, TaskState.COMPLETED]
    chunks = [e for e in evs if isinstance(e, ArtifactEvent)]
    assert [c.artifact.parts[0].text for c in chunks] == ["a ", "b ", "c", ""]
    assert [c.append for c in chunks] == [False, True, True, True]
    assert [c.last_chunk for c in chunks] == [False, False, False, True]
    assert len({c.artifact.artifact_id for c in chunks}) == 1
    done = await engine.get(task.id)
    assert done.artifacts[0].parts[0].text == "a b c"


async def test_a_skill_that_raises_fails_its_task_with_the_error(engine: Engine) -> None:
    task = await engine.submit(request("boom"), "0.3")
    done = await engine.wait(task.id, 5)
    assert done.status.state == TaskState.FAILED
    assert done.status.message is not None and "model exploded" in done.status.message.text


async def test_input_required_then_a_follow_up_continues_the_task(engine: Engine) -> None:
    task = await engine.submit(request("asks", "first"), "0.3")
    assert (await engine.wait(task.id, 5)).status.state == TaskState.INPUT_REQUIRED
    await engine.submit(request("asks", "the blue one", task_id=task.id), "0.3")
    done = await engine.wait(task.id, 5)
    assert done.status.state == TaskState.COMPLETED
    assert done.artifacts[0].parts[0].text == "you said the blue one"
    assert [m.role for m in done.history] == [Role.USER, Role.AGENT, Role.USER]


async def test_cancel_keeps_the_metadata_of_the_skills_last_status(engine: Engine) -> None:
    task = await engine.submit(request("slow_with_usage"), "1.0")
    await asyncio.sleep(0.05)
    canceled = await engine.cancel(task.id)
    assert canceled.status.state == TaskState.CANCELED
    assert canceled.metadata is not None and canceled.metadata["usage"]["completion_tokens"] >= 1
    with pytest.raises(TaskNotCancelable):
        await engine.cancel(task.id)


async def test_a_skill_that_ignores_cancel_is_cancelled_after_the_grace(engine: Engine) -> None:
    task = await engine.submit(request("stubborn"), "1.0")
    await asyncio.sleep(0.01)
    async with asyncio.timeout(2):
        canceled = await engine.cancel(task.id)
    assert canceled.status.state == TaskState.CANCELED


async def test_cancel_of_an_interrupted_task(engine: Engine) -> None:
    task = await engine.submit(request("asks"), "0.3")
    await engine.wait(task.id, 5)
    assert (await engine.cancel(task.id)).status.state == TaskState.CANCELED


async def test_a_direct_reply_is_the_only_event(engine: Engine) -> None:
    task = await engine.submit(request("replies"), "1.0")
    evs = await events_of(engine, task.id)
    assert len(evs) == 1 and isinstance(evs[0], MessageEvent)
    done = await engine.get(task.id)
    assert done.reply is not None and done.reply.text == "direct"


async def test_replay_then_live_has_no_gap_and_no_duplicate(engine: Engine) -> None:
    task = await engine.submit(request("slow_with_usage"), "1.0")
    await asyncio.sleep(0.05)
    first = []
    async with asyncio.timeout(5):
        async for le in engine.events(task.id):
            first.append(le)
            if len(first) == 4:
                break
    resume = asyncio.create_task(events_of(engine, task.id, after=first[-1].id))
    await asyncio.sleep(0.05)
    await engine.cancel(task.id)
    rest = await resume
    full = await engine.store.read_after(task.id, 0)
    assert [le.event for le in first] + rest == [le.event for le in full]


async def test_errors(engine: Engine) -> None:
    with pytest.raises(TaskNotFound):
        await engine.get("nope")
    with pytest.raises(TaskNotFound):
        await engine.submit(request("tokens", task_id="nope"), "0.3")
    with pytest.raises(InvalidParams, match="enabled skills: tokens, boom"):
        await engine.submit(request("nosuch"), "0.3")
    task = await engine.submit(request("tokens"), "0.3")
    await engine.wait(task.id, 5)
    with pytest.raises(UnsupportedOperation, match="terminal"):
        await engine.submit(request("tokens", task_id=task.id), "0.3")


async def test_close_refuses_new_tasks_and_ends_running_ones(engine: Engine) -> None:
    task = await engine.submit(request("stubborn"), "1.0")
    await asyncio.sleep(0.01)
    await engine.close(grace=0.05)
    assert (await engine.get(task.id)).status.state.terminal
    with pytest.raises(UnsupportedOperation, match="shutting down"):
        await engine.submit(request("tokens"), "1.0")


async def chatty(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield Status(TaskState.WORKING)
    for _ in range(1000):
        yield Token("x")


async def remembers(ctx: SkillContext) -> AsyncIterator[SkillEvent]:
    yield Token(" | ".join(m.text for m in ctx.history), last=True)


async def test_a_skill_past_the_event_cap_fails_its_task_and_the_log_stays_bounded() -> None:
    registry = SkillRegistry([ScriptSkill("chatty", chatty)])
    engine = Engine(MemoryStore(), EventBus(), registry, max_events=50)
    task = await engine.submit(request("chatty"), "1.0")
    done = await engine.wait(task.id, 5)
    assert done.status.state == TaskState.FAILED
    assert done.status.message is not None and "event log limit of 50" in done.status.message.text
    assert await engine.store.last_event_id(task.id) <= 50


async def test_a_skill_gets_the_history_of_its_context() -> None:
    registry = SkillRegistry([ScriptSkill("remembers", remembers)])
    engine = Engine(MemoryStore(), EventBus(), registry)
    first = await engine.submit(request("remembers", "my name is Ada"), "0.3")
    await engine.wait(first.id, 5)
    follow = request("remembers", "what is my name?")
    follow.context_id = first.context_id
    second = await engine.submit(follow, "0.3")
    done = await engine.wait(second.id, 5)
    assert done.context_id == first.context_id
    # the history is what came before the current message: the first task's user turn
    assert done.artifacts[0].parts[0].text == "my name is Ada"
    # and a finished task's text output counts as the agent's turn
    third = request("remembers", "again?")
    third.context_id = first.context_id
    done = await engine.wait((await engine.submit(third, "0.3")).id, 5)
    assert done.artifacts[0].parts[0].text == "my name is Ada | what is my name? | my name is Ada"


async def test_shutdown_marks_unfinished_tasks_failed_with_the_reason(engine: Engine) -> None:
    task = await engine.submit(request("stubborn"), "1.0")
    await asyncio.sleep(0.01)
    await engine.close(grace=0.05)
    done = await engine.get(task.id)
    assert done.status.state == TaskState.FAILED
    assert done.status.message is not None and done.status.message.text == "interrupted by server shutdown"


async def test_recover_fails_what_a_dead_process_left_running() -> None:
    store = MemoryStore()
    registry = SkillRegistry([ScriptSkill("tokens", tokens)])
    left = Task(
        id="t1",
        context_id="c1",
        status=TaskStatus(state=TaskState.WORKING),
        skill="tokens",
        history=[Message(role=Role.USER, parts=[Part.of_text("hi")])],
    )
    await store.save(left)
    engine = Engine(store, EventBus(), registry)
    await engine.recover()
    done = await engine.get("t1")
    assert done.status.state == TaskState.FAILED
    assert done.status.message is not None and done.status.message.text == "interrupted by server restart"
    events = await store.read_after("t1", 0)
    assert isinstance(events[-1].event, StatusEvent) and events[-1].event.status.state == TaskState.FAILED


async def test_recover_reruns_a_rerunnable_skill() -> None:
    store = MemoryStore()
    skill = ScriptSkill("tokens", tokens)
    skill.rerunnable = True
    left = Task(
        id="t2",
        context_id="c1",
        status=TaskStatus(state=TaskState.WORKING),
        skill="tokens",
        history=[Message(role=Role.USER, parts=[Part.of_text("hi")])],
    )
    await store.save(left)
    engine = Engine(store, EventBus(), SkillRegistry([skill]))
    await engine.recover()
    done = await engine.wait("t2", 5)
    assert done.status.state == TaskState.COMPLETED
    assert done.artifacts[0].parts[0].text == "a b c"
