"""The worker hands tokens to the event loop in batches (issue 14: every handoff costs the loop, the store, the
SSE write and the client a wake-up): the first token at once, later ones at most every ``flush_ms``, and one
wake-up carries everything posted since the loop last looked. Usage always counts tokens, not events."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from a2a_server.model import TaskState
from a2a_server.skill import SkillContext, SkillEvent, Status, Token
from skills.inference import InferenceSkill

Ctx = Callable[..., SkillContext]
Scripted = Callable[..., InferenceSkill]
RunAll = Callable[[InferenceSkill, SkillContext], Any]


def texts(events: list[SkillEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, Token)]


def final_usage(events: list[SkillEvent]) -> dict[str, Any]:
    last = events[-1]
    assert isinstance(last, Status) and last.state.terminal and last.metadata is not None
    result: dict[str, Any] = last.metadata["usage"]
    return result


async def test_the_first_token_goes_at_once_and_later_ones_within_the_interval_together(
    scripted_skill: Scripted, ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = scripted_skill([b"a", b"b", b"c", b"d", b"e"], flush_ms=60_000)
    events = await run_all(skill, ctx_factory())
    # the last batch travels in the closing chunk: one event (one wake-up of the store/SSE chain) less per answer
    assert texts(events) == ["a", "bcde"]
    assert [e.last for e in events if isinstance(e, Token)] == [False, True]
    assert final_usage(events)["completion_tokens"] == 5
    await skill.close()


async def test_with_no_interval_every_token_is_its_own_event(
    scripted_skill: Scripted, ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = scripted_skill([b"a", b"b", b"c"], delay=0.02, flush_ms=0)
    events = await run_all(skill, ctx_factory())
    assert texts(events) == ["a", "b", "c", ""]
    await skill.close()


async def test_tokens_ready_while_the_loop_was_busy_arrive_in_one_event(
    scripted_skill: Scripted, ctx_factory: Ctx
) -> None:
    skill = scripted_skill([b"a", b"b", b"c", b"d", b"e"], flush_ms=0)
    events: list[SkillEvent] = []
    run: AsyncIterator[SkillEvent] = skill.run(ctx_factory())
    async for event in run:
        events.append(event)
        if isinstance(event, Status) and event.metadata == {"model": "scripted"}:
            time.sleep(0.3)  # the loop is busy elsewhere (deliberately blocked) while the worker generates
    chunks = [t for t in texts(events) if t]
    assert "".join(chunks) == "abcde" and len(chunks) < 5
    assert final_usage(events)["completion_tokens"] == 5
    await skill.close()


async def test_text_held_back_at_a_cancel_is_dropped_and_not_counted(
    scripted_skill: Scripted, ctx_factory: Ctx
) -> None:
    skill = scripted_skill([b"x"] * 1000, delay=0.01, flush_ms=60_000)
    ctx = ctx_factory()
    events: list[SkillEvent] = []
    async for event in skill.run(ctx):
        events.append(event)
        if isinstance(event, Token):
            ctx.cancelled.set()
    last = events[-1]
    assert isinstance(last, Status) and last.state is TaskState.CANCELED
    assert texts(events) == ["x"]
    assert final_usage(events)["completion_tokens"] == 1  # what the client got, not what the worker generated
    await skill.close()


async def test_the_tiny_model_at_the_default_interval_counts_tokens_not_events(
    make_skill: Callable[..., InferenceSkill], ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = make_skill(flush_ms=None)  # the default (A2A_INFERENCE_FLUSH_MS, 100 ms)
    events = await run_all(skill, ctx_factory("hello world", {"max_tokens": 60, "seed": 1}))
    u = final_usage(events)
    assert len([t for t in texts(events) if t]) <= u["completion_tokens"]
    assert u["completion_tokens"] == 60 or u["finish_reason"] == "stop"
    await skill.close()
