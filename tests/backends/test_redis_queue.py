"""The Redis TaskQueue and Control (a2a_server/backends/redis_queue.py, redis_control.py) against a real
redis-server: the contract of tests/backends/test_local.py, and what only a shared queue has: two runners in
different processes (here: two clients with their own connections) share one queue and fence each other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from a2a_server.backends.redis_control import RedisControl
from a2a_server.backends.redis_queue import RedisQueue
from a2a_server.backends.redis_store import RedisStore
from a2a_server.model import Message, Part, Role, Task, TaskState, TaskStatus, new_id
from a2a_server.ports import Job, Lease, LeaseLost
from tests.redis_server import RedisServer

DEADLINE = 30


@pytest.fixture
async def make(shared_redis: RedisServer) -> AsyncIterator[Callable[..., RedisStore]]:
    """Open "processes" of one deployment (one key prefix): each RedisStore has its own connections."""
    url = f"{shared_redis.url}?prefix=q-{new_id()}"
    opened: list[tuple[RedisStore, list[RedisQueue | RedisControl]]] = []

    def open_() -> RedisStore:
        store = RedisStore(url)
        opened.append((store, []))
        return store

    yield open_
    for store, _ in opened:
        await store.close()


def queue_of(store: RedisStore, lease_seconds: float = 30.0) -> RedisQueue:
    return RedisQueue(store.url, store.name, store.redis, store.p, store.address, lease_seconds)


def control_of(store: RedisStore) -> RedisControl:
    return RedisControl(store.url, store.name, store.redis, store.p, store.address)


def job(task_id: str, skill: str = "s") -> Job:
    return Job(task_id, skill, epoch=1)


async def claim(queue: RedisQueue, *skills: str, worker: str = "w1") -> Lease:
    async with asyncio.timeout(DEADLINE):
        return await queue.claim(list(skills or ["s"]), worker)


async def depth_becomes(queue: RedisQueue, skill: str, expected: int) -> None:
    deadline = time.monotonic() + 5
    while queue.depth(skill) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert queue.depth(skill) == expected


# ---------------------------------------------------------------- RedisQueue


async def test_jobs_are_claimed_in_order_per_skill(make: Callable[..., RedisStore]) -> None:
    queue = queue_of(make())
    for name in ("a1", "a2", "a3"):
        await queue.put(job(name, "a"))
    await queue.put(job("b1", "b"))
    assert [(await claim(queue, "a")).job.task_id for _ in range(2)] == ["a1", "a2"]
    assert (await claim(queue, "b", "a")).job.task_id == "b1"
    lease = await claim(queue, "b", "a")
    assert lease.job == job("a3", "a") and lease.deliveries == 1
    await queue.close()


async def test_a_job_round_trips_with_its_metadata_and_a_new_task(make: Callable[..., RedisStore]) -> None:
    queue = queue_of(make())
    said = Message(role=Role.USER, parts=[Part.of_text("hi")], task_id="t", context_id="c")
    new = Task(id="t", context_id="c", status=TaskStatus(state=TaskState.SUBMITTED), history=[said], epoch=1)
    sent = Job("t", "s", 1, {"k": [1, "x"]}, with_context=True, task=new, create=True)
    await queue.put(sent)
    assert (await claim(queue)).job == sent  # a task not stored yet travels with its job
    await queue.put(Job("u", "s", 3, task=new, rerun=True))
    assert (await claim(queue)).job == Job("u", "s", 3, rerun=True)  # a stored one is read by the runner
    await queue.close()


async def test_a_claim_in_another_process_waits_for_a_put(make: Callable[..., RedisStore]) -> None:
    api, worker = queue_of(make()), queue_of(make())
    waiting = asyncio.create_task(claim(worker, "a"))
    await asyncio.sleep(0.1)
    await api.put(job("b1", "b"))  # not its skill
    await api.put(job("a1", "a"))
    assert (await waiting).job.task_id == "a1"
    await depth_becomes(api, "b", 1)
    await api.close()
    await worker.close()


async def test_withdraw_takes_back_only_a_job_nobody_claimed(make: Callable[..., RedisStore]) -> None:
    queue = queue_of(make())
    for name in ("t1", "t2", "t3"):
        await queue.put(job(name))
    assert (await claim(queue)).job.task_id == "t1"
    assert await queue.withdraw("t1") is False  # a runner holds it: Control must reach that runner
    assert await queue.withdraw("t2") is True
    assert await queue.withdraw("t2") is False
    assert await queue.withdraw("nobody") is False
    assert (await claim(queue)).job.task_id == "t3"
    await queue.close()


async def test_depth_counts_the_jobs_waiting_not_the_claimed_ones(make: Callable[..., RedisStore]) -> None:
    queue = queue_of(make())
    for name in ("t1", "t2", "t3"):
        await queue.put(job(name))
    await queue.put(job("o1", "other"))
    await depth_becomes(queue, "s", 3)
    await depth_becomes(queue, "other", 1)
    lease = await claim(queue)
    await depth_becomes(queue, "s", 2)
    await queue.withdraw("t3")
    await depth_becomes(queue, "s", 1)
    await queue.ack(lease)
    await depth_becomes(queue, "s", 1)
    await queue.close()


async def test_an_acked_job_is_never_handed_out_again(make: Callable[..., RedisStore]) -> None:
    queue = queue_of(make(), lease_seconds=0.2)
    await queue.put(job("t1"))
    await queue.ack(await claim(queue))
    await queue.put(job("t2"))
    await asyncio.sleep(0.3)
    assert (await claim(queue)).job.task_id == "t2"
    await queue.close()


async def test_a_heartbeat_extends_the_lease_against_another_process(make: Callable[..., RedisStore]) -> None:
    mine, theirs = queue_of(make(), lease_seconds=0.5), queue_of(make(), lease_seconds=0.5)
    await mine.put(job("t1"))
    lease = await claim(mine)
    other = asyncio.create_task(claim(theirs, worker="w2"))
    for _ in range(20):  # twice the lease in all, a tenth of it apart
        await asyncio.sleep(0.05)
        await mine.heartbeat(lease)
    assert not other.done()
    await mine.ack(lease)
    await mine.put(job("t2"))
    got = await other
    assert got.job.task_id == "t2" and got.deliveries == 1
    await mine.close()
    await theirs.close()


async def test_an_expired_lease_goes_to_another_process_and_the_old_holder_is_fenced(
    make: Callable[..., RedisStore],
) -> None:
    first_q, second_q = queue_of(make(), lease_seconds=0.3), queue_of(make(), lease_seconds=0.3)
    await first_q.put(job("t1"))
    first = await claim(first_q, worker="w1")
    again = await claim(second_q, worker="w2")  # nobody heartbeats t1: XAUTOCLAIM after the lease
    assert again.job == first.job and again.deliveries == 2 and again.token != first.token
    with pytest.raises(LeaseLost):
        await first_q.heartbeat(first)
    await first_q.ack(first)  # the old holder's late ack does not remove the new holder's entry
    await second_q.heartbeat(again)
    await second_q.ack(again)
    await depth_becomes(second_q, "s", 0)
    assert await store_len(first_q, "s") == 0
    await first_q.close()
    await second_q.close()


async def store_len(queue: RedisQueue, skill: str) -> int:
    return int(await queue.redis.xlen(queue.qkey(skill)))


async def test_a_job_lost_twice_counts_every_delivery(make: Callable[..., RedisStore]) -> None:
    queue = queue_of(make(), lease_seconds=0.2)
    await queue.put(job("t1"))
    assert [(await claim(queue, worker=f"w{i}")).deliveries for i in range(3)] == [1, 2, 3]
    await queue.close()


async def test_claims_survive_a_redis_restart(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    queue = queue_of(store)
    await queue.put(job("t1"))
    redis_server.restart(down_seconds=0.5)  # AOF on: the queued job is still there
    assert (await claim(queue)).job.task_id == "t1"
    await queue.close()
    await store.close()


# ---------------------------------------------------------------- RedisControl


async def test_cancel_from_another_process_reaches_the_runner_within_100_ms(make: Callable[..., RedisStore]) -> None:
    worker, api = control_of(make()), control_of(make())
    reached = asyncio.Event()
    worker.watch("t1", reached.set)
    worker.watch("t2", lambda: None)
    await asyncio.sleep(0.3)  # the subscription is made by the worker's listener
    latencies = []
    for _ in range(20):
        reached.clear()
        start = time.perf_counter()
        assert await api.cancel("t1") is True
        async with asyncio.timeout(DEADLINE):
            await reached.wait()
        latencies.append(time.perf_counter() - start)
    assert max(latencies) < 0.1, latencies
    assert await api.cancel("nobody") is False  # no runner holds it: the caller ends it itself
    await worker.close()
    await api.close()


async def test_unwatch_stops_delivery_and_a_later_watch_replaces_the_callback(make: Callable[..., RedisStore]) -> None:
    worker, api = control_of(make()), control_of(make())
    calls: list[str] = []

    def first() -> None:
        calls.append("first run")

    def second() -> None:
        calls.append("second run")

    worker.watch("t", first)
    worker.watch("t", second)
    worker.unwatch("t", first)  # the earlier run ends: it must not take the later one's watch away
    await asyncio.sleep(0.3)
    assert await api.cancel("t") is True
    await asyncio.sleep(0.2)  # delivered to the worker's listener, which calls the callback
    worker.unwatch("t", second)
    await asyncio.sleep(0.3)
    assert await api.cancel("t") is False
    worker.unwatch("t", second)
    await asyncio.sleep(0.1)
    assert calls == ["second run"]
    await worker.close()
    await api.close()


async def test_cancel_reaches_the_runner_after_a_redis_restart(redis_server: RedisServer) -> None:
    worker_store, api_store = RedisStore(redis_server.url), RedisStore(redis_server.url)
    worker, api = control_of(worker_store), control_of(api_store)
    reached = asyncio.Event()
    worker.watch("t1", reached.set)
    await asyncio.sleep(0.3)
    redis_server.restart(down_seconds=0.3)
    async with asyncio.timeout(DEADLINE):
        while not await _cancel_quietly(api, "t1"):  # the listener resubscribes after its backoff
            await asyncio.sleep(0.1)
        await reached.wait()
    await worker.close()
    await api.close()
    await worker_store.close()
    await api_store.close()


async def _cancel_quietly(control: RedisControl, task_id: str) -> bool:
    from a2a_server.errors import StoreUnavailable

    try:
        return await control.cancel(task_id)
    except StoreUnavailable:
        return False
