"""Micro-benchmark of the stores alone: MemoryStore vs SQLiteStore, in one run on one machine.

Cases (the same event payloads for every store: a streamed-token ArtifactEvent, like the core
benchmark's chunk events):
- append c1: one task, one writer, each append awaited before the next (the latency-bound case);
- append c100: 100 tasks x 100 appends, all writers concurrent (what group commit is for);
- read_after: the whole 100-event log of a task, then the second half, per call.

Each case runs ``--runs`` times on a fresh store (a fresh file for SQLite); the table quotes the
medians and the ratio to the memory store. ``python -m bench.core_store --help`` for the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from a2a_server.model import Artifact, ArtifactEvent, Part, Task, TaskEvent, TaskState, TaskStatus
from a2a_server.stores import MemoryStore, TaskStore
from a2a_server.stores.sqlite import SQLiteStore

StoreFactory = Callable[[Path], Awaitable[TaskStore]]


async def _memory(_: Path) -> TaskStore:
    return MemoryStore()


async def _sqlite_normal(path: Path) -> TaskStore:
    return await SQLiteStore.open(path, synchronous="NORMAL")


async def _sqlite_full(path: Path) -> TaskStore:
    return await SQLiteStore.open(path, synchronous="FULL")


STORES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite NORMAL": _sqlite_normal,
    "sqlite FULL": _sqlite_full,
}


def _txns(store: TaskStore) -> int:
    return store.transactions if isinstance(store, SQLiteStore) else 0


def _per_txn(store: TaskStore, appends: int, before: int) -> float | None:
    txns = _txns(store) - before
    return appends / txns if txns else None


def _task(task_id: str) -> Task:
    return Task(id=task_id, context_id="bench", status=TaskStatus(state=TaskState.WORKING), skill="echo")


def _chunk(task_id: str, n: int) -> TaskEvent:
    art = Artifact(artifact_id="output", name="output", parts=[Part.of_text(f"word{n} ")])
    return ArtifactEvent(task_id=task_id, context_id="bench", artifact=art, append=n > 1, index=0)


async def append_c1(store: TaskStore, n: int) -> tuple[float, float | None]:
    await store.save(_task("t"))
    events = [_chunk("t", i) for i in range(1, n + 1)]
    before, start = _txns(store), time.perf_counter()
    for ev in events:
        await store.append("t", ev)
    return n / (time.perf_counter() - start), _per_txn(store, n, before)


async def append_c100(store: TaskStore, n: int) -> tuple[float, float | None]:
    tasks, per_task = 100, max(n // 100, 1)
    for k in range(tasks):
        await store.save(_task(f"t{k}"))
    events = {k: [_chunk(f"t{k}", i) for i in range(1, per_task + 1)] for k in range(tasks)}

    async def writer(k: int) -> None:
        for ev in events[k]:
            await store.append(f"t{k}", ev)

    before, start = _txns(store), time.perf_counter()
    await asyncio.gather(*(writer(k) for k in range(tasks)))
    return tasks * per_task / (time.perf_counter() - start), _per_txn(store, tasks * per_task, before)


async def read_after(store: TaskStore, n: int) -> tuple[float, float | None]:
    """Events read per second, reading a 100-event log whole and from its middle, ``n // 100`` times."""
    await store.save(_task("t"))
    for i in range(1, 101):
        await store.append("t", _chunk("t", i))
    calls, read = max(n // 100, 1), 0
    start = time.perf_counter()
    for _ in range(calls):
        read += len(await store.read_after("t", 0)) + len(await store.read_after("t", 50))
    return read / (time.perf_counter() - start), None


CASES: dict[str, Callable[[TaskStore, int], Awaitable[tuple[float, float | None]]]] = {
    "append c1": append_c1,
    "append c100": append_c100,
    "read_after": read_after,
}
UNITS = {"append c1": "appends/s", "append c100": "appends/s", "read_after": "events/s"}


async def measure(store_name: str, case: str, n: int, workdir: Path, run: int) -> tuple[float, float | None]:
    """One run on a fresh store: (rate, appends per SQLite transaction or None)."""
    store = await STORES[store_name](workdir / f"{store_name.replace(' ', '-')}-{case.replace(' ', '-')}-{run}.db")
    try:
        return await CASES[case](store, n)
    finally:
        await store.close()


def table(medians: dict[tuple[str, str], float], groups: dict[tuple[str, str], float], stores: list[str]) -> str:
    head = "| case | " + " | ".join(stores) + " |"
    rows = [head, "|---|" + "---:|" * len(stores)]
    for case in CASES:
        base = medians[(case, "memory")] if "memory" in stores else None
        cells = []
        for name in stores:
            value = medians[(case, name)]
            cell = f"{value:,.0f} {UNITS[case]}"
            if base and name != "memory":
                cell += f" ({value / base:.2f}x)"
            if (case, name) in groups and case.startswith("append"):
                cell += f", {groups[(case, name)]:.0f}/txn"
            cells.append(cell)
        rows.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


async def main_async(args: argparse.Namespace) -> None:
    stores = list(STORES) if not args.stores else args.stores.split(",")
    samples: dict[tuple[str, str], list[float]] = {}
    group_samples: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="a2a-bench-store-", dir=args.dir) as tmp:
        for run in range(args.runs):
            for case in CASES:
                order = stores if run % 2 == 0 else stores[::-1]  # alternate who goes first
                for name in order:
                    value, group = await measure(name, case, args.events, Path(tmp), run)
                    samples.setdefault((case, name), []).append(value)
                    if group is not None:
                        group_samples.setdefault((case, name), []).append(group)
                    print(f"run {run + 1} {case:<12} {name:<14} {value:>12,.0f} {UNITS[case]}", flush=True)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    groups = {k: statistics.median(v) for k, v in group_samples.items()}
    print(
        f"\nPython {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {platform.machine()}; "
        f"medians of {args.runs} runs, {args.events} events per run; ratio = store / memory; "
        f"n/txn = appends per SQLite transaction (group commit)\n"
    )
    print(table(medians, groups, stores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=10_000, help="appends (or events read) per run")
    parser.add_argument("--stores", help=f"comma-separated subset of: {', '.join(STORES)}")
    parser.add_argument("--dir", help="where the SQLite files go (default: the system temp dir)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
