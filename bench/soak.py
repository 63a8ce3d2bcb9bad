"""Soak: N concurrent streams for T seconds with random cancels and disconnects against a real server.

    .venv/bin/python bench/soak.py [--streams 500] [--seconds 60] [--seed 1]

Each of the N clients loops until the time is up: it streams a task of the echo skill (10-60 words,
2-10 ms a word) and then, at random, reads it to the end (60 %), disconnects after a few events (20 %)
or cancels the task from a second request and reads the stream to its end (20 %). An error is any HTTP
status but 200, a JSON-RPC error, a transport error, a stream read to its end without a final state
(completed, or canceled after a cancel), or a cancel refused for any reason but "the task already
finished". The server's RSS is sampled every second and its open descriptors (/proc/<pid>/fd) are
counted before the load and after it, once the server has let go of the closed connections (waited
for, up to 20 s). tests/e2e/test_load.py runs a bounded version in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.load import HEADERS, RssSampler, Server, message, rpc, start, words

MB = 1024 * 1024
FINAL = {"TASK_STATE_COMPLETED", "TASK_STATE_CANCELED"}


@dataclass
class Soak:
    streams: int
    seconds: float
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    fds_before: int = 0
    fds_after: int = 0
    rss: list[tuple[float, int]] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.outcomes["error"] += 1
        if len(self.errors) < 20:
            self.errors.append(what)

    def rss_at(self, fraction: float) -> int:
        """The RSS sampled nearest to ``fraction`` of the run."""
        t = fraction * self.seconds
        return min(self.rss, key=lambda s: abs(s[0] - t))[1]

    @property
    def plateau(self) -> tuple[int, int]:
        """Lowest and highest RSS over the second half of the run."""
        half = [r for t, r in self.rss if t >= self.seconds / 2] or [r for _, r in self.rss]
        return min(half), max(half)


def _state(result: dict[str, Any]) -> str | None:
    for key in ("task", "statusUpdate"):
        if key in result:
            state: str = result[key]["status"]["state"]
            return state
    return None


async def one_stream(c: httpx.AsyncClient, url: str, rng: random.Random, soak: Soak) -> None:
    action = rng.choices(["read", "disconnect", "cancel"], [6, 2, 2])[0]
    params = message(words(rng.randint(10, 60)), f"soak-{rng.randrange(1 << 30)}")
    params["message"]["metadata"] = {"delay_ms": rng.randint(2, 10)}
    body = rpc("SendStreamingMessage", params)
    state = None
    task_id = None
    events = 0
    async with c.stream("POST", url + "/a2a", json=body, headers=HEADERS) as r:
        if r.status_code != 200:
            soak.error(f"HTTP {r.status_code}")
            return
        async for line in r.aiter_lines():
            if not line.startswith("data:"):
                continue
            frame = json.loads(line[5:])
            if "error" in frame:
                soak.error(f"stream error {frame['error']}")
                return
            events += 1
            result = frame["result"]
            state = _state(result) or state
            if task_id is None and "task" in result:
                task_id = result["task"]["id"]
                if action == "cancel":
                    answer = (
                        await c.post(url + "/a2a", json=rpc("CancelTask", {"id": task_id}), headers=HEADERS)
                    ).json()
                    if "error" in answer and answer["error"].get("code") != -32002:  # not cancelable: it finished
                        soak.error(f"cancel {answer['error']}")
            if action == "disconnect" and events >= 3:
                soak.outcomes["disconnected"] += 1
                return  # leaving the block closes the connection mid-stream
    if state not in FINAL:
        soak.error(f"stream ended in {state} after {events} events ({action})")
    else:
        soak.outcomes["canceled" if state == "TASK_STATE_CANCELED" else "completed"] += 1


async def client(url: str, deadline: float, rng: random.Random, soak: Soak) -> None:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=4)) as c:
        while time.monotonic() < deadline:
            try:
                await one_stream(c, url, rng, soak)
            except (httpx.HTTPError, json.JSONDecodeError, KeyError) as e:
                soak.error(f"{type(e).__name__}: {e}")


async def _run(server: Server, soak: Soak, seed: int) -> None:
    deadline = time.monotonic() + soak.seconds
    await asyncio.gather(*(client(server.url, deadline, random.Random(seed * 100_003 + i), soak)
                           for i in range(soak.streams)))  # fmt: skip


def soak_server(server: Server, streams: int, seconds: float, seed: int = 1) -> Soak:
    """Run the soak against ``server``; descriptors counted before and after (settled), RSS sampled."""
    soak = Soak(streams, seconds)
    httpx.post(server.url + "/a2a", json=rpc("SendMessage", message("warm up", "warm")), headers=HEADERS, timeout=30)
    time.sleep(0.5)
    soak.fds_before = server.fds()
    with RssSampler(server, period=1.0) as rss:
        asyncio.run(_run(server, soak, seed))
    soak.rss = rss.samples
    deadline = time.monotonic() + 20  # the server closes the last connections and ends their streams
    while time.monotonic() < deadline and server.fds() > soak.fds_before:
        time.sleep(0.25)
    soak.fds_after = server.fds()
    return soak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=500)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--store", default="sqlite", choices=["sqlite", "memory"])
    args = p.parse_args()
    server = start(store=args.store)
    try:
        s = soak_server(server, args.streams, args.seconds, args.seed)
    finally:
        server.stop()
    low, high = s.plateau
    print(f"{args.streams} streams x {args.seconds:.0f} s, store {args.store}, seed {args.seed}")
    print(f"outcomes: {dict(s.outcomes)}")
    print(f"errors: {s.outcomes['error']}" + "".join(f"\n  {e}" for e in s.errors))
    print(f"fds: {s.fds_before} before, {s.fds_after} after")
    print("RSS at 25/50/75/100 %: " + ", ".join(f"{s.rss_at(f) / MB:.0f} MB" for f in (0.25, 0.5, 0.75, 1.0)))
    print(f"RSS over the second half: {low / MB:.0f}-{high / MB:.0f} MB ({(high - low) / high:.1%} spread)")


if __name__ == "__main__":
    main()
