"""The echo benchmark embedded (SQLite, one process) against Redis mode (API replicas + workers), in one run.

    python -m bench.redis_scale [--duration 5] [--cases 'send c16,stream c16'] [--modes embedded,1+1,2+2]

Modes: ``embedded`` = one ``a2a-server serve --store sqlite://…`` (API and runner in one process); ``1+1`` = one
``--role api`` and one ``--role worker`` on a fresh redis-server (AOF on, everysec); ``2+2`` = two of each, with one
wrk per API replica (half the connections each; their rates are added). Every mode starts fresh processes on free
loopback ports and stops them after. Also measured: ``redis-benchmark`` XADD (the ceiling of one Redis core on this
machine) and the cross-process event latency (bench/redis_latency.py). Results: bench/results/redis-latest.md.
Nothing is pinned: the 2 cores are shared by every process of a mode, as they would be on one small host.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench.core import CASES, Case, rate, wrk
from bench.core_apps import HOST, RESULTS, ROOT, _free_port, _healthy, _stop
from bench.redis_latency import measure as measure_latency

PY = str(ROOT / ".venv" / "bin" / "python")
MODES = ("embedded", "1+1", "2+2")


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[int]:
    port = _free_port()
    argv = ["redis-server", "--port", str(port), "--bind", HOST, "--dir", str(tmp), "--appendonly", "yes",
            "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction", "--logfile",
            str(tmp / "redis.log")]  # fmt: skip
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not answer PING within 20 s")
            time.sleep(0.05)
        yield port
    finally:
        _stop(proc)


@contextlib.contextmanager
def server(log: Path, *args: str) -> Iterator[int]:
    port = _free_port()
    argv = [PY, "-m", "a2a_server", "serve", "--host", HOST, "--port", str(port), "--skills", "echo", *args]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"a2a-server {' '.join(args)} did not start; see {log}")
            time.sleep(0.1)
        yield port
    finally:
        _stop(proc)


@contextlib.contextmanager
def deployment(mode: str, tmp: Path, log: Path) -> Iterator[list[int]]:
    """Start one mode; yield the ports of its API processes."""
    with contextlib.ExitStack() as stack:
        if mode == "embedded":
            yield [stack.enter_context(server(log, "--store", f"sqlite://{tmp}/tasks.db"))]
            return
        replicas = int(mode.split("+")[0])
        url = f"redis://{HOST}:{stack.enter_context(redis_server(tmp))}/0"
        apis = [stack.enter_context(server(log, "--store", url, "--role", "api")) for _ in range(replicas)]
        for _ in range(replicas):
            stack.enter_context(server(log, "--store", url, "--role", "worker"))
        yield apis


def run_case(case: Case, apis: list[int], seconds: int) -> float:
    share = Case(case.name, case.script, max(1, case.connections // len(apis)), case.target)
    cores = os.cpu_count() or 1
    with ThreadPoolExecutor(len(apis)) as pool:  # wrk pins itself (taskset): each its own core, modulo the machine's
        results = list(pool.map(lambda ip: wrk(share, ip[1], ip[0] % cores, seconds), enumerate(apis)))
    return sum(rate(share, stats) for stats in results)


def xadd_ceiling(tmp: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    with redis_server(tmp) as port:
        for label, pipeline in (("XADD, 16 clients", 1), ("XADD, 16 clients x pipeline 16", 16)):
            argv = ["redis-benchmark", "-p", str(port), "-q", "-n", "200000", "-c", "16", "-P", str(pipeline),
                    "XADD", "bench:s", "MAXLEN", "~", "100000", "*", "e", "x" * 200]  # fmt: skip
            text = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True).stdout
            found = re.findall(r"([\d.]+) requests per second", text)
            out[label] = float(found[-1]) if found else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--cases", default="send c16,stream c16")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("redis-server") is None:
        raise SystemExit("needs wrk and redis-server: bench/run installs wrk, scripts/install-redis Redis")
    known = {c.script: c for c in CASES}
    cases = []
    for name in args.cases.split(","):  # "send c16", "stream c64": any connection count
        script, _, conns = name.strip().partition(" c")
        if script not in known or not conns.isdigit():
            raise SystemExit(f"--cases: {name!r} is not 'send cN' or 'stream cN'")
        cases.append(Case(name.strip(), script, int(conns), known[script].target))
    modes = args.modes.split(",")
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / "redis-apps.log"
    started, load = datetime.now(UTC), os.getloadavg()[0]
    rates: dict[tuple[str, str], float] = {}
    for case in cases:
        for mode in modes:
            with tempfile.TemporaryDirectory(prefix="a2a-bench-") as tmp, deployment(mode, Path(tmp), log) as apis:
                if args.warmup:
                    run_case(case, apis, args.warmup)
                rates[case.name, mode] = run_case(case, apis, args.duration)
                print(f"{case.name:10} {mode:8} {rates[case.name, mode]:10,.0f} {case.unit}", flush=True)
    with tempfile.TemporaryDirectory(prefix="a2a-bench-") as tmp:
        ceiling = xadd_ceiling(Path(tmp))
        with redis_server(Path(tmp)) as port:
            latency = measure_latency(f"redis://{HOST}:{port}/0", 2000, 2.0)
    lines = [f"# Redis mode vs embedded — {started:%Y-%m-%d %H:%M} UTC, {args.duration} s per case, "
             f"load average before: {load:.2f}, after: {os.getloadavg()[0]:.2f}", "",
             "| case | " + " | ".join(modes) + " | " + " | ".join(f"{m} / embedded" for m in modes[1:]) + " |",
             "|---|" + "---:|" * (2 * len(modes) - 1)]  # fmt: skip
    for case in cases:
        values = [rates[case.name, m] for m in modes]
        base = rates.get((case.name, "embedded"))
        ratios = [f"{rates[case.name, m] / base:.2f}" if base else "-" for m in modes[1:]]
        lines.append(f"| {case.name} ({case.unit}) | " + " | ".join(f"{v:,.0f}" for v in values) + " | "
                     + " | ".join(ratios) + " |")  # fmt: skip
    lines += ["", "redis-benchmark on this machine (200,000 XADDs of a 200-byte field, MAXLEN ~ 100000):", ""]
    lines += [f"- {label}: {value:,.0f} XADD/s" for label, value in ceiling.items()]
    lines += ["", f"Cross-process event latency (append on one process → follower on another, "
              f"{latency['events']:.0f} events 2 ms apart): p50 {latency['p50_ms']:.2f} ms, "
              f"p99 {latency['p99_ms']:.2f} ms, max {latency['max_ms']:.2f} ms"]  # fmt: skip
    report = "\n".join(lines) + "\n"
    (RESULTS / "redis-latest.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
