"""The in-process TaskQueue and Control (a2a_server/backends/local.py): leases, redelivery, cancel delivery."""

from __future__ import annotations

import asyncio

import pytest

from a2a_server.backends.local import LocalControl, LocalQueue
from a2a_server.ports import Job, Lease, LeaseLost

DEADLINE = 30


def job(task_id: str, skill: str = "s") -> Job:
    return Job(task_id, skill, epoch=1)


async def claim(queue: LocalQueue, *skills: str) -> Lease:
    async with asyncio.timeout(DEADLINE):
        return await queue.claim(list(skills or ["s"]), "w1")


# ---------------------------------------------------------------- LocalQueue


async def test_jobs_are_claimed_in_order_per_skill() -> None:
    queue = LocalQueue()
    for name in ("a1", "a2", "a3"):
        await queue.put(job(name, "a"))
    await queue.put(job("b1", "b"))
    assert [(await claim(queue, "a")).job.task_id for _ in range(2)] == ["a1", "a2"]
    # a runner of several skills takes from them in the order it names them
    assert (await claim(queue, "b", "a")).job.task_id == "b1"
    lease = await claim(queue, "b", "a")
    assert lease.job == job("a3", "a") and lease.deliveries == 1


async def test_a_claim_waits_for_a_put_of_one_of_its_skills() -> None:
    queue = LocalQueue()
    waiting = asyncio.create_task(claim(queue, "a"))
    await asyncio.sleep(0)
    await queue.put(job("b1", "b"))  # not its skill
    await queue.put(job("a1", "a"))
    assert (await waiting).job.task_id == "a1"
    assert queue.depth("b") == 1


async def test_withdraw_takes_back_only_a_job_nobody_claimed() -> None:
    queue = LocalQueue()
    for name in ("t1", "t2", "t3"):
        await queue.put(job(name))
    claimed = await claim(queue)
    assert claimed.job.task_id == "t1"
    assert await queue.withdraw("t1") is False  # a runner holds it: Control must reach that runner
    assert await queue.withdraw("t2") is True
    assert await queue.withdraw("t2") is False
    assert await queue.withdraw("nobody") is False
    assert (await claim(queue)).job.task_id == "t3"


async def test_depth_counts_the_jobs_waiting_not_the_claimed_ones() -> None:
    queue = LocalQueue()
    assert queue.depth("s") == 0
    for name in ("t1", "t2", "t3"):
        await queue.put(job(name))
    await queue.put(job("o1", "other"))
    assert (queue.depth("s"), queue.depth("other")) == (3, 1)
    lease = await claim(queue)
    assert queue.depth("s") == 2
    await queue.withdraw("t3")
    assert queue.depth("s") == 1
    await queue.ack(lease)
    assert queue.depth("s") == 1


async def test_an_acked_job_is_never_handed_out_again() -> None:
    queue = LocalQueue(lease_seconds=0.2)
    await queue.put(job("t1"))
    await queue.ack(await claim(queue))
    await queue.put(job("t2"))
    # t2 is the next job although t1's lease would have expired by now
    await asyncio.sleep(0.3)
    assert (await claim(queue)).job.task_id == "t2"


async def test_a_heartbeat_extends_the_lease() -> None:
    queue = LocalQueue(lease_seconds=0.5)
    await queue.put(job("t1"))
    lease = await claim(queue)
    other = asyncio.create_task(claim(queue))  # a second runner, waiting for any job of the skill
    # twenty heartbeats a tenth of the lease apart: twice as long as the lease in all
    for _ in range(20):
        await asyncio.sleep(0.05)
        await queue.heartbeat(lease)
    assert not other.done()  # the job stayed with its holder
    await queue.ack(lease)
    await queue.put(job("t2"))
    got = await other
    assert got.job.task_id == "t2" and got.deliveries == 1


async def test_an_expired_lease_is_claimed_again_and_the_old_holder_is_fenced() -> None:
    queue = LocalQueue(lease_seconds=0.2)
    await queue.put(job("t1"))
    first = await claim(queue)
    # nobody heartbeats t1: a claim that waits gets it again once its lease expires
    again = await claim(queue)
    assert again.job == first.job and again.deliveries == 2 and again.token != first.token
    with pytest.raises(LeaseLost):
        await queue.heartbeat(first)
    await queue.ack(first)  # the old holder's late ack does not remove the new holder's entry
    await queue.heartbeat(again)
    await queue.ack(again)
    assert queue.depth("s") == 0


async def test_an_expired_job_goes_out_again_before_newer_ones() -> None:
    queue = LocalQueue(lease_seconds=0.2)
    await queue.put(job("t1"))
    await claim(queue)
    await asyncio.sleep(0.4)  # past the lease; nobody heartbeated it
    await queue.put(job("t2"))
    assert [(lease.job.task_id, lease.deliveries) for lease in [await claim(queue), await claim(queue)]] == [
        ("t1", 2), ("t2", 1)
    ]  # fmt: skip


async def test_a_job_lost_twice_counts_every_delivery() -> None:
    queue = LocalQueue(lease_seconds=0.2)
    await queue.put(job("t1"))
    deliveries = [(await claim(queue)).deliveries for _ in range(3)]
    assert deliveries == [1, 2, 3]


async def test_close_forgets_every_job() -> None:
    queue = LocalQueue()
    await queue.put(job("t1"))
    lease = await claim(queue)
    await queue.put(job("t2"))
    await queue.close()
    assert queue.depth("s") == 0
    with pytest.raises(LeaseLost):
        await queue.heartbeat(lease)


# ---------------------------------------------------------------- LocalControl


async def test_cancel_reaches_the_watcher_of_the_task() -> None:
    control = LocalControl()
    calls: list[str] = []
    control.watch("t1", lambda: calls.append("t1"))
    control.watch("t2", lambda: calls.append("t2"))
    assert await control.cancel("t1") is True
    assert calls == ["t1"]
    assert await control.cancel("nobody") is False  # no runner holds it: the caller ends it itself
    assert calls == ["t1"]


async def test_unwatch_stops_delivery_and_a_later_watch_replaces_the_callback() -> None:
    control = LocalControl()
    calls: list[str] = []

    def first() -> None:
        calls.append("first run")

    def second() -> None:
        calls.append("second run")

    control.watch("t", first)
    control.watch("t", second)  # a follow-up message's run, or a runner that took the task over
    control.unwatch("t", first)  # the earlier run ends: it must not take the later one's watch away
    assert await control.cancel("t") is True
    control.unwatch("t", second)
    assert await control.cancel("t") is False
    control.unwatch("t", second)  # unwatching twice is harmless
    assert calls == ["second run"]


async def test_close_forgets_the_watchers() -> None:
    control = LocalControl()
    calls: list[str] = []
    control.watch("t", lambda: calls.append("t"))
    await control.close()
    assert await control.cancel("t") is False and calls == []
