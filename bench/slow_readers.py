"""What clients that never read cost the server: RSS and task durations with N stalled readers against none.

    .venv/bin/python bench/slow_readers.py [--stalled 100] [--words 5000] [--observers 4] [--store sqlite]

Each mode runs against a fresh server process (echo skill, limits off, its own store):
- ``none``: the N tasks are sent with ``returnImmediately`` and nobody watches them (over raw sockets, all at
  once, as the streams of the other modes are: the same number of tasks runs at the same time);
- ``stalled``: each of the N tasks is asked for as a stream by a raw socket that sends the request and
  never reads a byte (the default byte bound of the subscriber buffer);
- ``stalled-unbounded``: the same with the byte bound lifted (A2A_SUBSCRIBER_BUFFER_BYTES huge): the bus
  as it was, bounded in events only.
Meanwhile ``--observers`` ordinary clients stream tasks of ``--observer-words`` words and read them: their
rate is "the other streams' rate". The N tasks' time is from the first send until the task list shows
all N completed (polled every 0.25 s). RSS is sampled every 0.1 s; growth is over the RSS after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.load import HEADERS, RssSampler, list_context, message, rpc, stalled_stream, start, words

MB = 1024 * 1024


def observe(url: str, n_words: int, rates: list[float]) -> None:
    """Stream one task and read it all; the artifact events per second between the first and the end."""
    body = rpc("SendStreamingMessage", message(words(n_words), "observer-" + os.urandom(4).hex()))
    first, chunks, other = 0.0, 0, ""
    with httpx.Client(timeout=120) as c, c.stream("POST", url + "/a2a", json=body, headers=HEADERS) as r:
        for line in r.iter_lines():
            if line.startswith("data:") and "artifactUpdate" in line:
                chunks += 1
                if not first:
                    first = time.monotonic()
            elif line.strip() and not other:
                other = line
    if chunks != n_words:  # a reader dropped for being slow: the figures would not mean what they say
        raise RuntimeError(
            f"an observer's stream carried {chunks} of {n_words} chunks: HTTP {r.status_code} {other[:300]}"
        )
    rates.append(chunks / max(time.monotonic() - first, 1e-3))


def run(mode: str, args: argparse.Namespace) -> dict[str, float]:
    env = {"A2A_SUBSCRIBER_BUFFER_BYTES": str(1 << 40 if mode == "stalled-unbounded" else args.byte_limit)}
    server = start(env=env, store=args.store)
    sockets = []
    try:
        with httpx.Client(timeout=60) as c:
            for _ in range(3):  # warm-up: imports, first tasks, the allocator's first arenas
                warm = rpc("SendMessage", message(words(args.words), "warm"))
                c.post(server.url + "/a2a", json=warm, headers=HEADERS)
            time.sleep(1)
            base = server.rss()
            context = f"slow-{mode}-{os.urandom(4).hex()}"
            text = words(args.words)
            rates: list[float] = []
            with RssSampler(server) as rss:
                t0 = time.monotonic()
                observers = [threading.Thread(target=observe, args=(server.url, args.observer_words, rates))
                             for _ in range(args.observers)]  # fmt: skip
                for t in observers:
                    t.start()
                for i in range(args.stalled):
                    # every mode sends its N requests the same way, all at once (raw sockets): "none" sent them
                    # one POST after another, so fewer of its tasks ran at the same time, which made it look
                    # cheaper than it is (peak RSS, time)
                    if mode == "none":
                        body = rpc("SendMessage", message(text, context, returnImmediately=True), i)
                    else:
                        body = rpc("SendStreamingMessage", message(text, context), i)
                    sockets.append(stalled_stream(server.port, body))
                done_at = None
                while time.monotonic() - t0 < args.timeout:
                    tasks = list_context(c, server.url, context)
                    if len(tasks) == args.stalled and all(
                        t["status"]["state"] == "TASK_STATE_COMPLETED" for t in tasks
                    ):
                        done_at = time.monotonic() - t0
                        break
                    time.sleep(0.25)
                for t in observers:
                    t.join(timeout=args.timeout)
                end = server.rss()
            return {
                "base_mb": base / MB,
                "peak_growth_mb": (rss.peak - base) / MB,
                "end_growth_mb": (end - base) / MB,
                "tasks_s": done_at if done_at is not None else float("nan"),
                "observer_rate": statistics.median(rates) if rates else float("nan"),
            }
    finally:
        for s in sockets:
            s.close()
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stalled", type=int, default=100, help="tasks (and stalled readers) per run")
    p.add_argument("--words", type=int, default=5000, help="words per task = artifact chunk events")
    p.add_argument("--observers", type=int, default=4, help="ordinary streams that read, for their rate")
    p.add_argument("--observer-words", type=int, default=20000)
    p.add_argument("--store", default="sqlite", choices=["sqlite", "memory"])
    p.add_argument("--modes", default="none,stalled,stalled-unbounded")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--byte-limit", type=int, default=64 * 1024, help="A2A_SUBSCRIBER_BUFFER_BYTES of the server")
    args = p.parse_args()
    results = {}
    for mode in args.modes.split(","):
        results[mode] = run(mode, args)
        print(mode, json.dumps({k: round(v, 1) for k, v in results[mode].items()}), flush=True)
    print(f"\n{args.stalled} tasks of {args.words} words, {args.observers} observers of {args.observer_words} words, "
          f"store {args.store}\n")  # fmt: skip
    print("| mode | RSS after warm-up | peak growth | growth at the end | N tasks done in | observer rate |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode, r in results.items():
        print(f"| {mode} | {r['base_mb']:.0f} MB | {r['peak_growth_mb']:.1f} MB | {r['end_growth_mb']:.1f} MB "
              f"| {r['tasks_s']:.1f} s | {r['observer_rate']:,.0f} events/s |")  # fmt: skip


if __name__ == "__main__":
    main()
