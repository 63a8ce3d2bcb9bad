"""Bounded CI versions of bench/slow_readers.py and bench/soak.py (issue 11: slow readers, soak).

Each starts its own real server process (bench/load.py: echo skill, per-caller limits off, its own SQLite
file). The machine is shared and small, so the bounds are generous; bench/README.md has the full-size figures.
"""

from __future__ import annotations

import argparse

from bench.load import start
from bench.slow_readers import run
from bench.soak import soak_server

MB = 1024 * 1024


def test_stalled_readers_neither_hold_memory_nor_slow_their_tasks() -> None:
    """20 clients that ask for a stream and never read: their tasks finish about as fast as unwatched ones, the
    server holds a bounded amount for them, and the streams that do read keep their pace."""
    args = argparse.Namespace(
        stalled=20, words=3000, observers=2, observer_words=5000, store="sqlite", timeout=120, byte_limit=64 * 1024
    )
    alone = run("none", args)
    stalled = run("stalled", args)
    assert stalled["tasks_s"] < 2 * alone["tasks_s"] + 5, (alone, stalled)
    # 20 stalled readers hold about one 64 KiB bound each in the bus, plus what the asyncio transports buffer
    assert stalled["peak_growth_mb"] < alone["peak_growth_mb"] + 40, (alone, stalled)
    assert stalled["observer_rate"] > alone["observer_rate"] / 2, (alone, stalled)


def test_soak_50_streams_with_cancels_and_disconnects() -> None:
    """50 streams for 10 s, a fifth of them cancelled and a fifth cut off by the client: no error, every
    descriptor given back, and RSS flat over the second half."""
    server = start()
    try:
        soak = soak_server(server, streams=50, seconds=10, seed=11)
    finally:
        server.stop()
    assert soak.outcomes["error"] == 0, soak.errors
    assert soak.outcomes["completed"] > 50 and soak.outcomes["canceled"] > 5 and soak.outcomes["disconnected"] > 5, (
        soak.outcomes
    )
    assert soak.fds_after <= soak.fds_before + 2, (soak.fds_before, soak.fds_after)
    low, high = soak.plateau
    assert high - low < 0.25 * high, [r // MB for _, r in soak.rss]
