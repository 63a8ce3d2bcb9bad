"""``InferenceSkill.run`` driven directly with a real ``SkillContext``: the tiny random-weight llama GGUF for the
ctransformers plumbing, a scripted fake model where a test needs exact tokens or exact timing."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

from a2a_server.model import TaskState
from a2a_server.skill import SkillContext, SkillEvent, Status, Token
from skills.inference import InferenceSkill
from skills.inference.backend import LLM
from skills.inference.models import ModelSpec, Registry
from skills.inference.runtime import ctransformers_factory

Ctx = Callable[..., SkillContext]
RunAll = Callable[[InferenceSkill, SkillContext], Any]


def texts(events: list[SkillEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, Token)]


def final(events: list[SkillEvent]) -> Status:
    last = events[-1]
    assert isinstance(last, Status) and last.state.terminal, last
    return last


def usage(events: list[SkillEvent]) -> dict[str, Any]:
    metadata = final(events).metadata
    assert metadata is not None
    result: dict[str, Any] = metadata["usage"]
    return result


async def wait_free(skill: InferenceSkill, model: str, n: int) -> None:
    """Until ``n`` instances are back in the pool (a worker returns its instance when its thread ends)."""
    pool = skill._models[model].pool
    for _ in range(500):
        if pool.free == n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{pool.free} free instances, expected {n}")


async def test_streaming_order_and_usage_with_the_tiny_model(
    make_skill: Callable[..., InferenceSkill], ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = make_skill()
    await skill.start()
    assert skill.ready() is not None  # loading in the background
    await skill.wait_ready()
    assert skill.ready() is None
    events = await run_all(skill, ctx_factory("hello world", {"max_tokens": 40, "seed": 1}))

    first = events[0]
    assert isinstance(first, Status) and first.state is TaskState.WORKING and first.metadata == {"model": "tiny"}
    tokens = [e for e in events[1:-1]]
    assert all(isinstance(t, Token) for t in tokens)
    assert [t.last for t in tokens if isinstance(t, Token)][-1] is True
    # streamed, not one event per answer; tokens that are ready together may share an event when the loop is slow
    # (a loaded CI machine once gave 8 events for 40 tokens), so the count of model tokens is what adds up
    assert len(tokens) > 1
    done = final(events)
    assert done.state is TaskState.COMPLETED
    assert done.metadata is not None
    u, timings = done.metadata["usage"], done.metadata["timings"]
    assert u["finish_reason"] in {"length", "stop"}
    assert u["completion_tokens"] == 40 or u["finish_reason"] == "stop"
    # every model token is in exactly one streamed event (Token.tokens: how many a chunk stands for)
    assert sum(t.count for t in tokens if isinstance(t, Token)) == u["completion_tokens"]
    assert u["prompt_tokens"] > 5 and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert u["cost"] == "0"  # the registry's models are unpriced unless configured
    assert timings["ttft_ms"] > 0 and timings["tokens_per_second"] > 0
    await skill.close()


async def test_each_token_is_sent_the_moment_it_is_generated(
    scripted_skill: Callable[..., InferenceSkill], ctx_factory: Ctx
) -> None:
    skill = scripted_skill([b"a", b"b", b"c", b"d", b"e"], delay=0.05)
    arrivals = []
    started = time.perf_counter()
    async for event in skill.run(ctx_factory()):
        if isinstance(event, Token) and event.text:
            arrivals.append(time.perf_counter() - started)
    assert len(arrivals) == 5
    # one every ~50 ms, not all at the end
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) > 0.03, gaps
    await skill.close()


async def test_cancel_stops_the_worker_within_one_token(
    scripted_skill: Callable[..., InferenceSkill], ctx_factory: Ctx
) -> None:
    skill = scripted_skill([b"x"] * 1000, delay=0.01)
    ctx = ctx_factory()
    events: list[SkillEvent] = []
    generation = None
    async for event in skill.run(ctx):
        events.append(event)
        if isinstance(event, Token):
            generation = generation or next(iter(skill._generations))
            if len(texts(events)) == 3:
                ctx.cancelled.set()
    assert generation is not None
    assert texts(events) == ["x", "x", "x"]  # nothing after the cancel
    done = final(events)
    assert done.state is TaskState.CANCELED
    assert usage(events) == {
        "prompt_tokens": usage(events)["prompt_tokens"],
        "completion_tokens": 3,
        "total_tokens": usage(events)["prompt_tokens"] + 3,
        "finish_reason": "cancelled",
        "cost": "0",
    }
    await wait_free(skill, "scripted", 1)  # the worker ended and returned its instance
    assert generation.sampled_at_cancel is not None
    assert generation.sampled - generation.sampled_at_cancel <= 1
    await skill.close()


async def test_cancel_with_the_tiny_model_ends_canceled_and_frees_the_instance(
    make_skill: Callable[..., InferenceSkill], ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = make_skill()
    ctx = ctx_factory("hello", {"max_tokens": 500})
    events = []
    async for event in skill.run(ctx):
        events.append(event)
        if isinstance(event, Token):
            ctx.cancelled.set()
    assert final(events).state is TaskState.CANCELED and usage(events)["finish_reason"] == "cancelled"
    assert len(texts(events)) == 1
    await wait_free(skill, "tiny", 1)
    again = await run_all(skill, ctx_factory("hello", {"max_tokens": 5}))  # the instance is usable again
    assert final(again).state is TaskState.COMPLETED
    await skill.close()


async def drain(events: AsyncIterator[SkillEvent]) -> list[SkillEvent]:
    return [e async for e in events]


async def test_queued_tasks_see_their_position_advance(
    scripted_skill: Callable[..., InferenceSkill], ctx_factory: Ctx
) -> None:
    gate = threading.Event()
    skill = scripted_skill([b"ok"] * 20, gate=gate, delay=0.005)
    await skill.wait_ready()
    runs = [skill.run(ctx_factory(f"task {i}")) for i in range(4)]
    head = await anext(runs[0])
    assert isinstance(head, Status) and head.metadata == {"model": "scripted"}  # generating (blocked on the gate)
    firsts = [await anext(r) for r in runs[1:]]
    assert [e.text for e in firsts if isinstance(e, Status)] == [f"queued: position {n}" for n in (1, 2, 3)]

    gate.set()
    rest = await asyncio.gather(*(drain(r) for r in runs))
    last = [firsts[2], *rest[3]]
    statuses = [e.text or e.metadata for e in last if isinstance(e, Status) and e.state is TaskState.WORKING]
    assert statuses == ["queued: position 3", "queued: position 2", "queued: position 1", {"model": "scripted"}]
    assert all(final(r).state is TaskState.COMPLETED for r in rest)
    await skill.close()


async def test_a_full_queue_rejects_at_once(scripted_skill: Callable[..., InferenceSkill], ctx_factory: Ctx) -> None:
    gate = threading.Event()
    skill = scripted_skill([b"ok"], gate=gate, queue_size=1)
    await skill.wait_ready()
    running, waiting = skill.run(ctx_factory()), skill.run(ctx_factory())
    await anext(running)
    await anext(waiting)
    started = time.perf_counter()
    rejected = await drain(skill.run(ctx_factory()))
    assert time.perf_counter() - started < 0.1
    assert len(rejected) == 1 and isinstance(rejected[0], Status)
    assert rejected[0].state is TaskState.REJECTED
    assert rejected[0].text is not None and rejected[0].text.startswith("queue full: 1 tasks waiting")
    gate.set()
    await asyncio.gather(drain(running), drain(waiting))
    await skill.close()


async def test_a_task_canceled_while_queued_leaves_the_queue(
    scripted_skill: Callable[..., InferenceSkill], ctx_factory: Ctx
) -> None:
    gate = threading.Event()
    skill = scripted_skill([b"ok"], gate=gate)
    await skill.wait_ready()
    running = skill.run(ctx_factory())
    await anext(running)
    second_ctx = ctx_factory()
    second, third = skill.run(second_ctx), skill.run(ctx_factory())
    await anext(second)
    assert (await anext(third)) == Status(TaskState.WORKING, text="queued: position 2")
    second_ctx.cancelled.set()
    second_events = await drain(second)
    assert final(second_events).state is TaskState.CANCELED
    assert usage(second_events)["completion_tokens"] == 0
    assert (await anext(third)) == Status(TaskState.WORKING, text="queued: position 1")
    gate.set()
    assert final(await drain(third)).state is TaskState.COMPLETED
    await drain(running)
    await skill.close()


async def test_a_pool_of_two_generates_two_tasks_at_once(
    make_skill: Callable[..., InferenceSkill], ctx_factory: Ctx
) -> None:
    skill = make_skill(pool_size=2)
    await skill.wait_ready()
    runs = [skill.run(ctx_factory(f"task {i}", {"max_tokens": 300})) for i in range(3)]
    firsts = [await anext(r) for r in runs]
    assert firsts[0] == firsts[1] == Status(TaskState.WORKING, metadata={"model": "tiny"})
    assert firsts[2] == Status(TaskState.WORKING, text="queued: position 1")
    assert skill._models["tiny"].pool.free == 0
    results = await asyncio.gather(*(drain(r) for r in runs))
    assert all(final(r).state is TaskState.COMPLETED for r in results)
    await skill.close()


async def test_concurrent_tasks_do_not_mix_their_outputs(
    make_skill: Callable[..., InferenceSkill], ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = make_skill(pool_size=2)
    greedy = {"max_tokens": 30, "temperature": 0}
    results = await asyncio.gather(*(run_all(skill, ctx_factory("the capital", greedy)) for _ in range(6)))
    outputs = {"".join(texts(r)) for r in results}
    assert len(outputs) == 1  # the same greedy answer on both instances, whatever ran beside it
    assert all(usage(r)["completion_tokens"] == 30 or usage(r)["finish_reason"] == "stop" for r in results)
    await skill.close()


async def test_utf8_characters_split_across_tokens_are_never_sent_broken(
    scripted_skill: Callable[..., InferenceSkill], ctx_factory: Ctx, run_all: RunAll
) -> None:
    answer = "héllo wörld, 日本 🙂"
    skill = scripted_skill([bytes([b]) for b in answer.encode()])  # one byte per token
    events = await run_all(skill, ctx_factory())
    chunks = texts(events)
    assert "".join(chunks) == answer
    assert not any("\ufffd" in c for c in chunks)
    assert usage(events) | {"prompt_tokens": 0} == {
        "prompt_tokens": 0,
        "completion_tokens": len(answer.encode()),
        "total_tokens": usage(events)["total_tokens"],
        "finish_reason": "stop",
        "cost": "0",
    }
    await skill.close()


async def test_stop_sequence_split_across_tokens_ends_the_answer(
    scripted_skill: Callable[..., InferenceSkill], ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = scripted_skill([b"Paris", b".", b"\nUs", b"er:", b" and more"])
    events = await run_all(skill, ctx_factory("q", {"stop": ["\nUser:"]}))
    assert "".join(texts(events)) == "Paris."
    assert usage(events)["finish_reason"] == "stop" and usage(events)["completion_tokens"] == 4
    await skill.close()


async def test_end_of_turn_and_context_limit(
    scripted_skill: Callable[..., InferenceSkill], ctx_factory: Ctx, run_all: RunAll
) -> None:
    skill = scripted_skill([b"a", b"b"])
    events = await run_all(skill, ctx_factory("q"))
    assert "".join(texts(events)) == "ab" and usage(events)["finish_reason"] == "stop"
    await skill.close()

    # the scripted tokenizer gives one id per byte: "q" makes a 20-token ChatML prompt, leaving room for 3 tokens
    skill = scripted_skill([b"a"] * 10, context_length=23)
    events = await run_all(skill, ctx_factory("q"))
    assert usage(events) == {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23, "finish_reason": "length",
                             "cost": "0"}  # fmt: skip
    await skill.close()


async def test_no_model_call_ever_runs_on_the_event_loop_thread(
    tiny_model_path: Path, ctx_factory: Ctx, run_all: RunAll
) -> None:
    loop_thread = threading.get_ident()
    calls: list[tuple[str, int]] = []

    class Recording:
        """Wraps the real tiny model and notes which thread makes each call."""

        def __init__(self, llm: LLM) -> None:
            self._llm = llm

        def __getattr__(self, name: str) -> Any:
            attr = getattr(self._llm, name)
            if not callable(attr):
                return attr

            def call(*args: Any, **kwargs: Any) -> Any:
                calls.append((name, threading.get_ident()))
                return attr(*args, **kwargs)

            return call

    def factory(path: Path, model_type: str, context_length: int, threads: int) -> LLM:
        return cast(LLM, Recording(ctransformers_factory(path, model_type, context_length, threads)))

    spec = ModelSpec(id="tiny", path=tiny_model_path, context_length=512)
    skill = InferenceSkill(Registry([spec], "tiny"), threads=1, llm_factory=factory)
    events = await run_all(skill, ctx_factory("hello", {"max_tokens": 50, "stop": ["zz"]}))
    assert final(events).state is TaskState.COMPLETED
    assert {name for name, _ in calls} >= {"tokenize", "eval", "sample", "detokenize"}
    assert all(thread != loop_thread for _, thread in calls)
    await skill.close()


async def test_close_stops_running_generations(scripted_skill: Callable[..., InferenceSkill], ctx_factory: Ctx) -> None:
    skill = scripted_skill([b"x"] * 1000, delay=0.01)
    await skill.wait_ready()
    run = skill.run(ctx_factory())
    await anext(run)
    (generation,) = skill._generations
    await skill.close()
    assert generation.sampled < 100
    await cast(AsyncGenerator[SkillEvent, None], run).aclose()


async def test_a_request_can_pick_another_registry_model_which_loads_on_first_use(
    tiny_model_path: Path, ctx_factory: Ctx, run_all: RunAll
) -> None:
    specs = [ModelSpec(id=name, path=tiny_model_path, context_length=512) for name in ("tiny", "other")]
    skill = InferenceSkill(Registry(specs, "tiny"), threads=1)
    await skill.wait_ready()
    assert [m.state for m in skill.models()] == ["loaded", "available"]
    events = await run_all(skill, ctx_factory("hello", {"model": "other", "max_tokens": 5}))
    assert events[0] == Status(TaskState.WORKING, text="loading model other")
    assert Status(TaskState.WORKING, metadata={"model": "other"}) in events
    assert (final(events).metadata or {})["model"] == "other"
    assert [m.state for m in skill.models()] == ["loaded", "loaded"]
    await skill.close()


async def test_cancel_during_a_long_prompt_waits_for_one_slice_only(
    scripted_skill: Callable[..., InferenceSkill], ctx_factory: Ctx
) -> None:
    skill = scripted_skill([b"x"], eval_delay=0.05)  # 50 ms per prompt slice of 32 tokens
    await skill.wait_ready()
    ctx = ctx_factory("q" * 300)  # ~320 prompt tokens: 10 slices, 0.5 s
    run = skill.run(ctx)
    assert await anext(run) == Status(TaskState.WORKING, metadata={"model": "scripted"})
    (generation,) = skill._generations
    await asyncio.sleep(0.08)
    ctx.cancelled.set()
    asked = time.perf_counter()
    events = await drain(run)
    assert time.perf_counter() - asked < 0.2
    assert final(events).state is TaskState.CANCELED
    assert usage(events)["completion_tokens"] == 0
    evaluated: int = cast(Any, generation._llm).evaluated  # prompt tokens the ScriptedLLM was asked to evaluate
    assert 0 < evaluated < 320
    await skill.close()
