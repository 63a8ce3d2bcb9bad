"""What one SSE event costs the server when it comes alone (a model's tokens) and in a burst, against the bare app.

    .venv/bin/python -m bench.lone_events [--rounds 5] [--requests 20] [--words 64] [--delay-ms 5]

Both apps (``bench/core_apps.py``: a2a-server with the echo skill and the memory store, and the bare Starlette +
sse-starlette app, same uvicorn loop and parser) get the same 1.0 ``SendStreamingMessage`` of ``--words`` words,
one event per word, paced ``--delay-ms`` apart (``metadata.delay_ms``: the loop is idle between two events, as
between a model's chunks) and unpaced (a burst). Server CPU is the sum over the server's threads of
``/proc/<pid>/task/*/schedstat`` (nanoseconds), around the ``--requests`` streams of one round; per event =
that over the events its clients read. Each app runs pinned to core 0, the client (this process) to the
other; rounds alternate the apps; the table quotes medians and the ratio a2a-server / bare.

Why: on this machine class an event that wakes an idle loop costs several times what the same event costs in a
burst (bench/README.md, issue 14), and that cost, not the rendering, is what a streamed token pays.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.core_apps import RESULTS, core_busy_seconds, running

CORES = sorted(os.sched_getaffinity(0))


def schedstat_ns(pid: int) -> int:
    """CPU time of every live thread of ``pid`` so far, in ns."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
    return total


def stream(client: httpx.Client, port: int, words: int, delay_ms: float) -> int:
    """One stream, read to its end; the number of events it carried."""
    text = " ".join(f"w{i}" for i in range(words))
    message = {"messageId": os.urandom(8).hex(), "role": "ROLE_USER", "parts": [{"text": text}]}
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage",
            "params": {"message": message, "metadata": {"delay_ms": delay_ms}}}  # fmt: skip
    events = 0
    with client.stream("POST", f"http://127.0.0.1:{port}/a2a", json=body, headers={"A2A-Version": "1.0"}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            events += line.startswith("data:")
    return events


def measure(app: str, args: argparse.Namespace, delay_ms: float, log: Path) -> float:
    """µs of server CPU per event over one round of ``--requests`` streams."""
    with running(app, CORES[0], log, store="memory") as (port, pid), httpx.Client(timeout=60) as client:
        for _ in range(3):  # warm-up: imports, first connections
            stream(client, port, args.words, 0)
        before, events = schedstat_ns(pid), 0
        for _ in range(args.requests):
            events += stream(client, port, args.words, delay_ms)
        return (schedstat_ns(pid) - before) / 1000 / max(events, 1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lone_events", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20, help="streams per app per round")
    parser.add_argument("--words", type=int, default=64, help="events per stream (one per word)")
    parser.add_argument("--delay-ms", type=float, default=5.0, help="pause before each event of a paced stream")
    args = parser.parse_args()
    if len(CORES) > 1:
        os.sched_setaffinity(0, CORES[1:])  # the client off the server's core
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / f"lone-events-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.log"
    started, busy0, t0 = datetime.now(UTC), sum(core_busy_seconds(c) for c in CORES), time.monotonic()
    cases = {"paced": args.delay_ms, "burst": 0.0}
    results: dict[tuple[str, str], list[float]] = {}
    for i in range(args.rounds):
        for case, delay in cases.items():
            for app in ("a2a-server", "bare") if i % 2 == 0 else ("bare", "a2a-server"):
                value = measure(app, args, delay, log)
                results.setdefault((case, app), []).append(value)
                print(json.dumps({"round": i, "case": case, "app": app, "us_per_event": round(value, 1)}), flush=True)
    busy = (sum(core_busy_seconds(c) for c in CORES) - busy0) / (time.monotonic() - t0)
    print(f"\n{args.requests} streams of {args.words} events per app and round, {args.rounds} rounds; paced = "
          f"{args.delay_ms} ms before each event; medians of the rounds (µs of server CPU per event):\n")  # fmt: skip
    print("| case | a2a-server | bare app | a2a-server / bare |")
    print("|---|---:|---:|---:|")
    for case in cases:
        ours, bare = (statistics.median(results[(case, app)]) for app in ("a2a-server", "bare"))
        print(f"| {case} | {ours:.0f} | {bare:.0f} | {ours / bare:.2f} |")
    print(f"\nRun {started:%Y-%m-%d %H:%M} UTC; the machine's cores were busy {busy:.2f} cores on average, this "
          "bench's own client and servers included (paced streams are mostly idle).")  # fmt: skip


if __name__ == "__main__":
    main()
