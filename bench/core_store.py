"""Micro-benchmark of the stores alone: MemoryStore vs SQLiteStore, in one run on one machine.

Cases (the same event payloads for every store: a streamed-token ArtifactEvent, like the core
benchmark's chunk events):
- append c1: one task, one writer, each append awaited before the next (the latency-bound case);
- append c100: 100 tasks x 100 appends, all writers concurrent (what group commit is for);
- read_after: the whole 100-event log of a task, then the second half, per call (the memory
  store returns a slice of its list, SQLite parses every event: only SQLite's number says much).

Each case runs ``--runs`` times on a fresh store (a fresh file for SQLite); the table quotes the
medians and the ratio to the memory store. ``python -m bench.core_store --help`` for the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from a2a_server.backends import MemoryStore, SQLiteStore
from a2a_server.model import Artifact, ArtifactEvent, Part, Task, TaskEvent, TaskState, TaskStatus

TaskStore = MemoryStore | SQLiteStore  # each is the TaskStore and the EventLog of its backend
StoreFactory = Callable[[Path], Awaitable[TaskStore]]


async def _memory(_: Path) -> TaskStore:
    return MemoryStore()


async def _sqlite_normal(path: Path) -> TaskStore:
    return await SQLiteStore.open(path, synchronous="NORMAL")


async def _sqlite_full(path: Path) -> TaskStore:
    return await SQLiteStore.open(path, synchronous="FULL")


async def _create(store: TaskStore, task_id: str) -> None:
    await store.create(_task(task_id))


async def _append(store: TaskStore, task_id: str, event: TaskEvent) -> None:
    await store.append_many(task_id, [event], epoch=1)


STORES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite NORMAL": _sqlite_normal,
    "sqlite FULL": _sqlite_full,
}


@dataclass
class Sample:
    """One timed section: ``count`` appends (or events read) in ``wall`` s, using ``cpu`` s of this process."""

    count: int = 0
    wall: float = 0.0
    cpu: float = 0.0  # all threads (the loop and SQLite's): less sensitive to other load on the machine
    transactions: int = 0
    bytes_per_event: float = 0.0  # SQLite: the events table and its index on disk, per stored token event

    @contextmanager
    def timing(self, store: TaskStore) -> Iterator[None]:
        txns, wall, cpu = _txns(store), time.perf_counter(), time.process_time()
        yield
        self.wall, self.cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.transactions = _txns(store) - txns


def _txns(store: TaskStore) -> int:
    return store.transactions if isinstance(store, SQLiteStore) else 0


def _task(task_id: str) -> Task:
    return Task(id=task_id, context_id="bench", status=TaskStatus(state=TaskState.WORKING), skill="echo", epoch=1)


def _chunk(task_id: str, n: int) -> TaskEvent:
    # a real artifact id (32 hex digits), as the runner writes it: the row size below is the real one
    art = Artifact(artifact_id="0" * 32, name="output", parts=[Part.of_text(f"word{n} ")])
    return ArtifactEvent(task_id=task_id, context_id="bench", artifact=art, append=n > 1, index=0)


async def append_c1(store: TaskStore, n: int) -> Sample:
    await _create(store, "t")
    events = [_chunk("t", i) for i in range(1, n + 1)]
    sample = Sample(count=n)
    with sample.timing(store):
        for ev in events:
            await _append(store, "t", ev)
    if isinstance(store, SQLiteStore):
        sample.bytes_per_event = await store.bytes_per_event()
    return sample


async def append_c100(store: TaskStore, n: int) -> Sample:
    tasks, per_task = 100, max(n // 100, 1)
    for k in range(tasks):
        await _create(store, f"t{k}")
    events = {k: [_chunk(f"t{k}", i) for i in range(1, per_task + 1)] for k in range(tasks)}

    async def writer(k: int) -> None:
        for ev in events[k]:
            await _append(store, f"t{k}", ev)

    sample = Sample(count=tasks * per_task)
    with sample.timing(store):
        await asyncio.gather(*(writer(k) for k in range(tasks)))
    return sample


async def read_after(store: TaskStore, n: int) -> Sample:
    """Events read per second, reading a 100-event log whole and from its middle, ``n // 100`` times."""
    await _create(store, "t")
    for i in range(1, 101):
        await _append(store, "t", _chunk("t", i))
    sample = Sample()
    with sample.timing(store):
        for _ in range(max(n // 100, 1)):
            sample.count += len(await store.read_after("t", 0)) + len(await store.read_after("t", 50))
    return sample


CASES: dict[str, Callable[[TaskStore, int], Awaitable[Sample]]] = {
    "append c1": append_c1,
    "append c100": append_c100,
    "read_after": read_after,
}
UNITS = {"append c1": "appends/s", "append c100": "appends/s", "read_after": "events/s"}


async def measure(store_name: str, case: str, n: int, workdir: Path, run: int) -> Sample:
    """One run on a fresh store."""
    store = await STORES[store_name](workdir / f"{store_name.replace(' ', '-')}-{case.replace(' ', '-')}-{run}.db")
    try:
        return await CASES[case](store, n)
    finally:
        await store.close()


def table(samples: dict[tuple[str, str], list[Sample]], stores: list[str]) -> str:
    """Per case and store: median rate, its ratio to memory; the same per CPU-second; appends per transaction."""
    rows = [
        "| case | store | median | vs memory | per CPU-second | vs memory | per transaction |",
        "|---|---|" + "---:|" * 5,
    ]
    for case in CASES:
        wall = {n: statistics.median(s.count / s.wall for s in samples[(case, n)]) for n in stores}
        cpu = {n: statistics.median(s.count / s.cpu for s in samples[(case, n)] if s.cpu) for n in stores}
        for name in stores:
            ratio = f"{wall[name] / wall['memory']:.3f}" if "memory" in wall and name != "memory" else ""
            cpu_ratio = f"{cpu[name] / cpu['memory']:.3f}" if "memory" in cpu and name != "memory" else ""
            txns = [s.count / s.transactions for s in samples[(case, name)] if s.transactions]
            group = f"{statistics.median(txns):.0f}" if txns and case.startswith("append") else ""
            rate = f"{wall[name]:,.0f} {UNITS[case]}"
            rows.append(f"| {case} | {name} | {rate} | {ratio} | {cpu[name]:,.0f} | {cpu_ratio} | {group} |")
    return "\n".join(rows)


async def main_async(args: argparse.Namespace) -> None:
    stores = list(STORES) if not args.stores else args.stores.split(",")
    samples: dict[tuple[str, str], list[Sample]] = {}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="a2a-bench-store-", dir=args.dir) as tmp:
        for run in range(args.runs):
            for case in CASES:
                order = stores if run % 2 == 0 else stores[::-1]  # alternate who goes first
                for name in order:
                    sample = await measure(name, case, args.events, Path(tmp), run)
                    samples.setdefault((case, name), []).append(sample)
                    print(
                        f"run {run + 1} {case:<12} {name:<14} {sample.count / sample.wall:>14,.0f} {UNITS[case]}, "
                        f"{sample.count / max(sample.cpu, 1e-9):>14,.0f} per CPU-second",
                        flush=True,
                    )
    print(
        f"\nPython {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} cores; "
        f"load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after; medians of {args.runs} runs "
        f"of {args.events} events on a fresh store each; per transaction = appends per SQLite commit\n"
    )
    print(table(samples, stores))
    sizes = [s.bytes_per_event for s in samples.get(("append c1", "sqlite NORMAL"), []) if s.bytes_per_event]
    if sizes:
        print(f"\nSQLite bytes per stored token event (table + index pages / rows): {statistics.median(sizes):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=10_000, help="appends (or events read) per run")
    parser.add_argument("--stores", help=f"comma-separated subset of: {', '.join(STORES)}")
    parser.add_argument("--dir", help="where the SQLite files go (default: the system temp dir)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
