"""Cross-process event latency on Redis: an event appended by one process (a worker) until it reaches a follower
in another process (an API replica), through the real RedisStore and its multiplexed XREAD tail.

    python -m bench.redis_latency --redis redis://127.0.0.1:6379/0 [--events 2000] [--gap-ms 2]

Both processes read CLOCK_MONOTONIC (time.monotonic), which is one clock for the whole machine. Prints p50, p99,
max in ms. Keys go under a fresh prefix that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import time
from multiprocessing.connection import Connection

from a2a_server.backends.redis_store import RedisStore
from a2a_server.model import Artifact, ArtifactEvent, Part, StatusEvent, Task, TaskState, TaskStatus, new_id


def _task(task_id: str) -> Task:
    return Task(id=task_id, context_id="c", status=TaskStatus(state=TaskState.WORKING), owner="", skill="s", epoch=1)


async def _follow(url: str, task_id: str, pipe: Connection) -> None:
    store = await RedisStore.open(url)
    arrivals: list[tuple[int, float]] = []
    async with store.follow(task_id, 0, fresh=True) as follower:
        pipe.send("ready")
        async for batch in follower.batches():
            now = time.monotonic()
            arrivals += [(le.id, now) for le in batch]
    pipe.send(arrivals)
    await store.close()


def _follower(url: str, task_id: str, pipe: Connection) -> None:
    asyncio.run(_follow(url, task_id, pipe))


async def _write(url: str, task_id: str, events: int, gap: float) -> dict[int, float]:
    store = await RedisStore.open(url)
    sent: dict[int, float] = {}
    for n in range(1, events + 1):
        chunk = Artifact(artifact_id="a", parts=[Part.of_text(f"w{n} ")])
        event = ArtifactEvent(task_id=task_id, context_id="c", artifact=chunk, append=n > 1)
        start = time.monotonic()
        await store.append_many(task_id, [event], epoch=1)
        sent[n] = start
        await asyncio.sleep(gap)
    done = StatusEvent(task_id=task_id, context_id="c", status=TaskStatus(state=TaskState.COMPLETED))
    await store.append_many(task_id, [done], epoch=1)
    await store.close()
    return sent


async def _setup(url: str, task_id: str) -> None:
    store = await RedisStore.open(url)
    await store.create(_task(task_id))
    await store.close()


async def _cleanup(url: str) -> None:
    store = await RedisStore.open(url)
    keys = [k async for k in store.redis.scan_iter(match=f"{store.p}:*")]
    if keys:
        await store.redis.delete(*keys)
    await store.close()


def measure(redis_url: str, events: int, gap_ms: float) -> dict[str, float]:
    url = f"{redis_url}?prefix=bench-{new_id()[:8]}"
    task_id = "latency"
    asyncio.run(_setup(url, task_id))
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_follower, args=(url, task_id, child))
    proc.start()
    try:
        assert parent.poll(30) and parent.recv() == "ready"
        time.sleep(0.2)
        sent = asyncio.run(_write(url, task_id, events, gap_ms / 1000))
        assert parent.poll(60)
        arrivals: list[tuple[int, float]] = parent.recv()
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
        asyncio.run(_cleanup(url))
    latencies = sorted((at - sent[n]) * 1000 for n, at in arrivals if n in sent)
    return {
        "events": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "max_ms": latencies[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", required=True, help="redis://host:port/db")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--gap-ms", type=float, default=2.0, help="pause between appends")
    args = parser.parse_args()
    result = measure(args.redis, args.events, args.gap_ms)
    print(f"append on one process → follower on another: {result['events']:.0f} events, "
          f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
