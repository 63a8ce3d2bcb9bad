"""The thread count per evaluation follows measured speed (issue 14: two ggml threads are fastest on a quiet
machine and far slowest when anything else wants a core), and the warm-up at load calibrates it before "ready".

The chooser is driven with simulated step times: the tests assert which count it settles on, not how fast."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

import skills.inference.threads as threads_module
from skills.inference import InferenceSkill
from skills.inference.threads import OtherLoad, ThreadChooser

QUIET = {1: 0.010, 2: 0.006}  # seconds per step: two threads win when both have a core
BUSY = {1: 0.011, 2: 0.040}  # another job holds a core: the two threads spin-wait on each other


def drive(chooser: ThreadChooser, cost: Mapping[int, float], steps: int) -> list[int]:
    picks = []
    for _ in range(steps):
        threads = chooser.pick()
        picks.append(threads)
        chooser.record(threads, cost[threads])
    return picks


def test_it_settles_on_the_faster_count_and_follows_the_load_both_ways() -> None:
    chooser = ThreadChooser([1, 2])
    quiet = drive(chooser, QUIET, 200)
    assert quiet[-100:].count(2) >= 95
    busy = drive(chooser, BUSY, 200)
    assert busy[5:].count(1) >= 190  # left two threads within a few steps, probing them now and then
    again = drive(chooser, QUIET, 200)
    assert again[-100:].count(2) >= 90  # and came back once they were fast again


def test_a_collapsing_count_costs_few_steps() -> None:
    chooser = ThreadChooser([1, 2])
    chooser.seed(1, [0.010])
    chooser.seed(2, [0.006])
    busy = drive(chooser, BUSY, 2000)
    assert busy[:3].count(2) <= 3 and busy[3:].count(2) < 20  # left at once; each probe ends after one step


def test_no_more_threads_than_the_other_processes_leave_cores_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads_module, "LOAD_EVERY", 0.0)
    others = [1.0]  # another job keeps one of the two cores busy
    chooser = ThreadChooser([1, 2], others=lambda: others[0], cores=2)
    chooser.seed(2, [0.006])
    assert set(drive(chooser, QUIET, 300)) == {1}  # two threads would be faster alone, but never get the cores
    others[0] = 0.1  # the job ended
    assert drive(chooser, QUIET, 100)[-50:] == [2] * 50


def test_the_load_of_other_processes_is_read_from_proc_stat() -> None:
    load = OtherLoad()
    sum(i * i for i in range(200_000))  # some CPU of our own, which must not count
    value = load()
    assert value is None or 0.0 <= value <= threads_module.usable_cores()


def test_calibration_picks_the_fastest_count_before_the_first_request() -> None:
    chooser = ThreadChooser([1, 2])
    chooser.seed(1, [0.009, 0.010, 0.011])
    chooser.seed(2, [0.030, 0.025, 0.040])
    assert chooser.pick() == 1
    assert "1: 9.0 ms" in chooser.describe() and chooser.describe().endswith("-> 1 thread(s)")


def test_a_warm_up_beside_readiness_probes_still_picks_the_faster_count() -> None:
    """Issue 14's first request: /readyz polled every 20 ms during the warm-up stalled some two-thread steps (9 ms
    against 4.2 ms), the median made one thread look faster, and the first requests ran on one thread. The fastest
    sample is the calibration's estimate; the slow seeded samples do not switch the count on the first steps."""
    chooser = ThreadChooser([1, 2])
    chooser.seed(1, [0.0059, 0.0061, 0.0060, 0.0058])
    chooser.seed(2, [0.0093, 0.0042, 0.0095, 0.0044, 0.0120])
    assert chooser.pick() == 2
    assert drive(chooser, {1: 0.006, 2: 0.0043}, 50) == [2] * 50  # serving confirms it: no switch, no probe down


def test_a_single_count_is_never_probed() -> None:
    chooser = ThreadChooser([2])
    assert set(drive(chooser, {2: 0.01}, 500)) == {2}


async def test_ready_only_after_a_warm_up_that_times_each_thread_count(
    scripted_skill: Callable[..., InferenceSkill],
) -> None:
    skill = scripted_skill([b"ok"], eval_delay=0.02, threads=None, warm_up=True)  # 1..cores threads
    await skill.start()
    seen = set()
    for _ in range(10_000):
        status = skill.ready()
        if status is None:
            break
        seen.add(status.split(" instance")[0])
        await asyncio.sleep(0.001)
    assert skill.ready() is None
    assert "warming up model scripted" in seen
    (instance,) = skill._models["scripted"].pool._free
    assert all(instance.tuning.decode.median(n) is not None for n in instance.tuning.decode.candidates)
    assert all(instance.tuning.prompt.median(n) is not None for n in instance.tuning.prompt.candidates)
    await skill.close()
