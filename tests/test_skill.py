"""SkillContext, the part of a skill's API with behaviour of its own (skill.py)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from a2a_server import Message, Part, Role, SkillContext


def context() -> SkillContext:
    return SkillContext("t", "c", Message(role=Role.USER, parts=[Part.of_text("hi")]), [], {})


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """Cyclic garbage made meanwhile, kept for the test to look at (the collector is off, then on again)."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_sleep_sleeps_and_says_it_was_not_cancelled() -> None:
    ctx = context()
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await ctx.sleep(0.05) is False
    assert loop.time() - began >= 0.045


async def test_a_cancel_wakes_a_sleep_at_once() -> None:
    ctx = context()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, ctx.cancelled.set)
    began = loop.time()
    assert await ctx.sleep(30) is True
    assert loop.time() - began < 5
    assert await ctx.sleep(30) is True  # cancelled already: no wait at all


async def test_sleeps_side_by_side_are_all_woken_by_one_cancel() -> None:
    ctx = context()
    sleeps = [asyncio.ensure_future(ctx.sleep(30)) for _ in range(3)]
    await asyncio.sleep(0.01)
    ctx.cancelled.set()
    async with asyncio.timeout(5):
        assert await asyncio.gather(*sleeps) == [True, True, True]


async def test_a_sleep_that_is_itself_cancelled_leaves_nothing_behind() -> None:
    ctx = context()
    sleeping = asyncio.ensure_future(ctx.sleep(30))
    await asyncio.sleep(0.01)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    ctx.cancelled.set()  # the cancelled sleep's waiter is gone: nothing to wake, nothing raised
    assert await ctx.sleep(1) is True


async def test_an_event_put_in_by_hand_still_works() -> None:
    ctx = context()
    ctx.cancelled = asyncio.Event()
    assert await ctx.sleep(0.01) is False
    ctx.cancelled.set()
    assert await ctx.sleep(30) is True


async def test_sleeps_make_no_cyclic_garbage(saved_garbage: list[object]) -> None:
    """A paced skill sleeps once per event; a served process collects garbage cycles rarely (collector.py), so a
    sleep must leave none."""
    ctx = context()
    for _ in range(50):
        assert await ctx.sleep(0.001) is False
    gc.collect()
    assert [type(o).__name__ for o in saved_garbage] == []
