"""Issue 14, long and oversized prompts: refused before the task queues, progress while a long prompt evaluates,
a per-request time limit, and queue updates that keep coming meanwhile.

The scripted model tokenizes one token per byte (``"q"`` makes a 20-token ChatML prompt) and sleeps
``eval_delay`` per evaluated slice of 32 prompt tokens."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import skills.inference.skill as skill_module
from a2a_server.model import Message, Part, Role, TaskState
from a2a_server.skill import InvalidSkillParams, SkillContext, SkillEvent, Status, Token
from skills.inference import InferenceSkill

Ctx = Callable[..., SkillContext]
Scripted = Callable[..., InferenceSkill]
RunAll = Callable[[InferenceSkill, SkillContext], Any]
LONG = "a much longer question"  # 41 tokens as a prompt


async def drain(events: AsyncIterator[SkillEvent]) -> list[SkillEvent]:
    return [e async for e in events]


def final(events: list[SkillEvent]) -> Status:
    last = events[-1]
    assert isinstance(last, Status) and last.state.terminal, last
    return last


def usage(events: list[SkillEvent]) -> dict[str, Any]:
    metadata = final(events).metadata
    assert metadata is not None
    result: dict[str, Any] = metadata["usage"]
    return result


def texts(events: list[SkillEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, Token)]


def said(events: list[SkillEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, Status) and e.state is TaskState.WORKING and e.text]


def user(text: str) -> Message:
    return Message(role=Role.USER, parts=[Part.of_text(text)])


def skill_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("skills.inference")]


# --- a prompt longer than the context ------------------------------------------------------------------------


async def test_a_prompt_longer_than_the_context_is_refused_by_validate(
    scripted_skill: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    skill = scripted_skill([b"a"], context_length=23)
    await skill.wait_ready()
    caplog.set_level(logging.INFO, logger="skills.inference")
    with pytest.raises(InvalidSkillParams, match="the prompt is 41 tokens; the model's context is 23 tokens") as info:
        skill.validate(user(LONG), {})
    assert (info.value.reason, info.value.param) == ("context_length_exceeded", "messages")
    # one INFO line for the log, no traceback: a user error, not a server fault
    assert [(r.levelno, r.exc_info) for r in skill_records(caplog)] == [(logging.INFO, None)]
    assert "41 tokens" in skill_records(caplog)[0].getMessage()
    skill.validate(user("q"), {})  # 20 tokens fit
    await skill.close()


async def test_a_prompt_that_surely_fits_is_not_tokenized_during_validation(
    scripted_skill: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    skill = scripted_skill([b"a"])
    await skill.wait_ready()
    llm = skill._models["scripted"].tokenizer
    calls: list[str] = []
    assert llm is not None

    def counting(text: str, add_bos_token: bool | None = None) -> list[int]:
        calls.append(text)
        return []

    monkeypatch.setattr(llm, "tokenize", counting)
    skill.validate(user("What is the capital of France?"), {})  # far fewer bytes than the 512-token context
    assert calls == []  # validation runs on the event loop: only a prompt that might not fit is tokenized
    await skill.close()


def test_the_refusal_still_works_with_a_core_whose_error_takes_no_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    class Plain(ValueError):
        """``InvalidSkillParams`` as it was before it took ``reason`` and ``param``."""

    monkeypatch.setattr(skill_module, "InvalidSkillParams", Plain)
    error = skill_module.invalid("too long", reason="context_length_exceeded", param="messages")
    assert isinstance(error, Plain) and str(error) == "too long"


async def test_a_prompt_validated_before_the_model_loaded_ends_failed_without_a_traceback(
    scripted_skill: Scripted, ctx_factory: Ctx, caplog: pytest.LogCaptureFixture
) -> None:
    skill = scripted_skill([b"a"], context_length=23)
    skill.validate(user(LONG), {})  # nothing loaded to count with yet: the run checks
    caplog.set_level(logging.INFO, logger="skills.inference")
    events = await drain(skill.run(ctx_factory(LONG)))
    done = final(events)
    assert done.state is TaskState.FAILED and done.text is not None
    assert done.text.startswith("the prompt is 41 tokens; the model's context is 23 tokens")
    refused = [r for r in skill_records(caplog) if "refused" in r.getMessage()]
    assert [(r.levelno, r.exc_info) for r in refused] == [(logging.INFO, None)]
    await skill.close()


async def test_earlier_turns_that_do_not_fit_are_dropped_oldest_first(scripted_skill: Scripted) -> None:
    # one token per byte: the question alone is 20 tokens, with the agent's 10-character answer 43, and with the
    # 20-character first question as well 71, more than the context of 60
    skill = scripted_skill([b"a"], context_length=60)
    history = [user("x" * 20), Message(role=Role.AGENT, parts=[Part.of_text("y" * 10)])]
    ctx = SkillContext(task_id="t", context_id="c", message=user("q"), history=history, metadata={})
    events = await drain(skill.run(ctx))
    assert final(events).state is TaskState.COMPLETED
    assert usage(events)["prompt_tokens"] == 43
    await skill.close()


# --- progress while a long prompt evaluates ------------------------------------------------------------------


async def test_a_long_prompt_reports_its_evaluation_progress_before_the_first_token(
    scripted_skill: Scripted, ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = scripted_skill([b"ok"], eval_delay=0.05, progress_s=0)
    events = await run_all(skill, ctx_factory("q" * 300))  # 319 tokens: 10 slices
    progress = [e for e in events if isinstance(e, Status) and (e.text or "").startswith("evaluating prompt: ")]
    percents = [int((e.text or "").split()[2]) for e in progress]
    assert len(percents) >= 2 and percents == sorted(set(percents)) and percents[0] > 0 and percents[-1] < 100
    started = events.index(Status(TaskState.WORKING, metadata={"model": "scripted"}))
    first_token = next(i for i, e in enumerate(events) if isinstance(e, Token))
    assert started < events.index(progress[0]) and events.index(progress[-1]) < first_token
    metadata = progress[-1].metadata or {}
    assert metadata["prompt_progress"]["total"] == usage(events)["prompt_tokens"] == 319
    assert final(events).state is TaskState.COMPLETED
    await skill.close()


async def test_a_short_prompt_reports_no_progress(scripted_skill: Scripted, ctx_factory: Ctx, run_all: RunAll) -> None:
    skill = scripted_skill([b"ok"])  # progress at most every second: a prompt evaluated faster says nothing
    events = await run_all(skill, ctx_factory("q"))
    assert not [t for t in said(events) if t.startswith("evaluating prompt")]
    await skill.close()


# --- the time limit ------------------------------------------------------------------------------------------


async def test_timeout_ends_the_task_completed_with_the_text_so_far(
    scripted_skill: Scripted, ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = scripted_skill([b"x"] * 1000, delay=0.01)  # 400 tokens would take 4 s
    events = await run_all(skill, ctx_factory("q", {"timeout_s": 0.5, "max_tokens": 400}))
    done = final(events)
    assert done.state is TaskState.COMPLETED
    u = usage(events)
    assert u["finish_reason"] == "timeout"
    assert 0 < u["completion_tokens"] < 400
    assert u["completion_tokens"] == len("".join(texts(events)))  # the usage is what was delivered
    last_token = [e for e in events if isinstance(e, Token)][-1]
    assert last_token.last
    await skill.close()


async def test_timeout_during_the_prompt_evaluation(
    scripted_skill: Scripted, ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = scripted_skill([b"x"], eval_delay=0.1)  # 10 slices: 1 s
    events = await run_all(skill, ctx_factory("q" * 300, {"timeout_s": 0.25}))
    assert usage(events) | {"prompt_tokens": 0} == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": usage(events)["prompt_tokens"],
        "finish_reason": "timeout",
        "cost": "0",
    }
    assert "".join(texts(events)) == ""
    await skill.close()


async def test_timeout_while_queued_leaves_the_queue(scripted_skill: Scripted, ctx_factory: Ctx) -> None:
    gate = threading.Event()
    skill = scripted_skill([b"ok"], gate=gate)
    await skill.wait_ready()
    running = skill.run(ctx_factory())
    await anext(running)  # holds the only instance, blocked on the gate
    events = await drain(skill.run(ctx_factory("q", {"timeout_s": 0.2})))
    assert said(events)[0] == "queued: position 1"
    assert usage(events)["finish_reason"] == "timeout" and usage(events)["completion_tokens"] == 0
    assert final(events).state is TaskState.COMPLETED
    assert skill._models["scripted"].pool.waiting == 0
    gate.set()
    assert final(await drain(running)).state is TaskState.COMPLETED
    await skill.close()


async def test_the_default_time_limit_comes_from_the_skill(
    scripted_skill: Scripted, ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = scripted_skill([b"x"] * 1000, delay=0.01, timeout_s=0.3)
    events = await run_all(skill, ctx_factory("q", {"max_tokens": 400}))
    assert usage(events)["finish_reason"] == "timeout"
    await skill.close()


# --- queue updates -------------------------------------------------------------------------------------------


async def test_queue_updates_keep_coming_while_a_long_prompt_evaluates(
    scripted_skill: Scripted, ctx_factory: Ctx
) -> None:
    skill = scripted_skill([b"ok"], eval_delay=0.05, queue_update_s=0.05)
    await skill.wait_ready()
    head = skill.run(ctx_factory("q" * 450))  # 469 tokens: 15 slices of 50 ms
    assert await anext(head) == Status(TaskState.WORKING, metadata={"model": "scripted"})
    ahead = asyncio.ensure_future(drain(head))
    events = await drain(skill.run(ctx_factory("next")))
    statuses = [e for e in events if isinstance(e, Status) and e.state is TaskState.WORKING]
    started = statuses.index(Status(TaskState.WORKING, metadata={"model": "scripted"}))
    waiting = [s.text for s in statuses[:started]]
    assert waiting[0] == "queued: position 1"
    assert len(waiting) >= 3 and all((t or "").startswith("queued: position 1 (waiting ") for t in waiting[1:])
    assert final(events).state is TaskState.COMPLETED
    assert final(await ahead).state is TaskState.COMPLETED
    await skill.close()
