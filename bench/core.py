"""Benchmark a2a-server against a bare Starlette + sse-starlette app, in one run on one machine.

Each measurement starts a fresh app process pinned to one core, warms it up, then runs wrk
pinned to the other core for a bounded time. Before the rounds, one send and one stream of each
app are checked by hand, so that "one completed response = one stream of 100 chunk events" is
known to hold. Rounds alternate which app goes first; the table quotes medians and the ratio
a2a-server / bare.

Events/s = completed streams x 100 / duration. wrk drops the streams still in flight when its
time is up (at most one per connection), so the per-round lines also give the rate implied by
the bytes wrk read, which counts those partial streams too.

Run through ``bench/run`` (it installs wrk); ``python -m bench.core --help`` for the knobs.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from types import FrameType

from bench.core_apps import (
    APPS,
    HOST,
    RESULTS,
    ROOT,
    WORDS,
    Checked,
    check,
    checkout_before,
    core_busy_seconds,
    cpu_seconds,
    running,
)

WRK_ERRORS = ("connect", "read", "write", "status", "timeout")


@dataclass(frozen=True)
class Case:
    name: str
    script: str  # bench/wrk/<script>.lua
    connections: int
    target: float  # minimum ratio a2a-server / bare

    @property
    def streaming(self) -> bool:
        return self.script.endswith("stream")

    @property
    def unit(self) -> str:
        return "events/s" if self.streaming else "req/s"


CASES = [
    Case("send c1", "send", 1, 0.5),
    Case("send c16", "send", 16, 0.5),
    Case("send c64", "send", 64, 0.5),
    Case("stream c1", "stream", 1, 0.6),
    Case("stream c64", "stream", 64, 0.6),
]


def wrk(case: Case, port: int, cpu: int, seconds: int) -> dict[str, int]:
    script = ROOT / "bench" / "wrk" / f"{case.script}.lua"
    argv = f"taskset -c {cpu} wrk -t1 -c{case.connections} -d{seconds}s --timeout 10s -s {script}".split()
    argv.append(f"http://{HOST}:{port}/a2a")
    env = {**os.environ, "BENCH_WORDS": str(WORDS)}
    run = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, env=env, check=True)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no BENCH line:\n{run.stdout}{run.stderr}")
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}


def rate(case: Case, stats: dict[str, int]) -> float:
    done = stats["requests"] * (WORDS if case.streaming else 1)
    return done / (stats["duration_us"] / 1e6)


@dataclass(frozen=True)
class Measurement:
    stats: dict[str, int]
    rate: float
    per_cpu_second: float  # the same work per CPU-second the app used
    app_load: float  # share of the app's core the app used
    others_app_core: float  # share of the app's core other processes used
    others_wrk_core: float  # share of wrk's core other processes used

    def noisy(self, limit: float) -> bool:
        return max(self.others_app_core, self.others_wrk_core) > limit

    def noise(self) -> str:
        return (
            f"app CPU {self.app_load:.0%}, others on its core {self.others_app_core:.0%}, "
            f"on wrk's {self.others_wrk_core:.0%}"
        )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(case: Case, app: str, cores: tuple[int, int], log: Path, args: argparse.Namespace) -> Measurement:
    """A fresh app, warm-up, then one timed wrk run, with the CPU each side and everyone else used."""
    app_cpu, wrk_cpu = cores
    with running(app, app_cpu, log, args.store) as (port, pid):
        if args.warmup > 0:
            wrk(case, port, wrk_cpu, args.warmup)
        before = cpu_seconds(pid), core_busy_seconds(app_cpu), core_busy_seconds(wrk_cpu), _children_cpu()
        stats = wrk(case, port, wrk_cpu, args.duration)
        after = cpu_seconds(pid), core_busy_seconds(app_cpu), core_busy_seconds(wrk_cpu), _children_cpu()
    app_s, app_core_s, wrk_core_s, wrk_s = (a - b for a, b in zip(after, before, strict=True))
    seconds = stats["duration_us"] / 1e6
    value = rate(case, stats)
    return Measurement(
        stats,
        value,
        value * seconds / max(app_s, 1e-3),
        app_s / seconds,
        max(0.0, app_core_s - app_s) / seconds,
        max(0.0, wrk_core_s - wrk_s) / seconds,
    )


def rate_by_bytes(stats: dict[str, int], checked: Checked) -> float:
    return stats["bytes"] / checked.stream_wire_bytes * WORDS / (stats["duration_us"] / 1e6)


def cpus() -> tuple[int, int]:
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < 2:
        raise SystemExit("need two cores: one for the app, one for wrk")
    return mine[0], mine[1]


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    libs = ", ".join(f"{p} {version(p)}" for p in ("starlette", "uvicorn", "sse-starlette", "jsonrpcserver"))
    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    http = "httptools" if find_spec("httptools") else "h11"
    return (
        f"{model}, {os.cpu_count()} cores, Linux {platform.release()}; Python {platform.python_version()}, "
        f"{libs}; wrk {wrk_v.split()[1] if wrk_v else '?'}; uvicorn loop {loop}, http {http} (both 'auto'), 1 worker"
    )


def revision() -> str:
    """The code under test: the commit, and whether a2a_server/ or skills/ differ from it."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "a2a_server", "skills"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    return f"a2a-server at {head.stdout.strip() or '?'}" + (" + uncommitted changes" if dirty.stdout.strip() else "")


def _fmt(value: float | None, case: Case) -> str:
    return "—" if value is None else f"{value:,.0f} {case.unit}"


def table(medians: dict[tuple[str, str], float], cases: list[Case]) -> str:
    before = "before" in APPS
    head = "| case | a2a-server median | bare median | ratio | target | result |"
    if before:
        head += " before median | before ratio |"
    rows = [head, "|---|---:|---:|---:|---:|---|" + ("---:|---:|" if before else "")]
    for case in cases:
        server, bare = medians.get((case.name, "a2a-server")), medians.get((case.name, "bare"))
        if server is not None and bare:
            ratio, verdict = f"{server / bare:.2f}", "pass" if server / bare >= case.target else "FAIL"
        else:
            ratio, verdict = "—", "not run"
        row = f"| {case.name} | {_fmt(server, case)} | {_fmt(bare, case)} | {ratio} | ≥ {case.target} | {verdict} |"
        if before:
            old = medians.get((case.name, "before"))
            row += f" {_fmt(old, case)} | {f'{old / bare:.2f}' if old is not None and bare else '—'} |"
        rows.append(row)
    return "\n".join(rows)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through running()'s finally, which stops the app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "5")),
                        help="seconds per measurement (wrk -d)")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk before each measurement")
    parser.add_argument("--only", choices=list(APPS), help="measure one app (e.g. bare, before the server exists)")
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite",
                        help="a2a-server's task store (default: sqlite, a fresh file per start)")  # fmt: skip
    parser.add_argument("--max-others", type=float, default=0.15,
                        help="share of either core other processes may use before a measurement is redone")  # fmt: skip
    parser.add_argument("--retries", type=int, default=2, help="redo a noisy measurement at most this often")
    parser.add_argument("--cases", help="comma-separated subset, e.g. 'send c64,stream c64'")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _terminate)

    app_cpu, wrk_cpu = cpus()
    checkout_before()
    apps = [args.only] if args.only else list(APPS)
    cases = [c for c in CASES if not args.cases or c.name in args.cases.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log = RESULTS / f"{stamp}-apps.log"
    print(f"apps on cpu {app_cpu}, wrk on cpu {wrk_cpu}; {args.rounds} rounds x {args.duration} s; logs: {log}")

    checked: dict[str, Checked] = {}
    notes = []
    for app in apps:
        with running(app, app_cpu, log, args.store) as (port, _):
            seen = checked[app] = check(app, port)
        notes.append(
            f"- {app}: one stream of {WORDS} words = {seen.events} SSE events ({seen.chunks} artifact chunks, "
            f"{seen.ids} with an id), {seen.stream_wire_bytes:,} bytes on the wire; "
            f"a send reply body is {seen.send_bytes} bytes"
        )
        print(notes[-1], flush=True)

    samples: dict[tuple[str, str], list[float]] = {}
    per_cpu: dict[tuple[str, str], list[float]] = {}
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    rounds: list[str] = []
    errors: list[str] = []
    for rnd in range(1, args.rounds + 1):
        order = apps if rnd % 2 else apps[::-1]
        for case in cases:
            for app in order:
                m = measure(case, app, (app_cpu, wrk_cpu), log, args)
                for _ in range(args.retries):
                    if not m.noisy(args.max_others):
                        break
                    print(f"round {rnd} {case.name:<10} {app:<10} noisy ({m.noise()}), measuring again", flush=True)
                    m = measure(case, app, (app_cpu, wrk_cpu), log, args)
                samples.setdefault((case.name, app), []).append(m.rate)
                per_cpu.setdefault((case.name, app), []).append(m.per_cpu_second)
                stats = m.stats
                line = (
                    f"round {rnd} {case.name:<10} {app:<10} {m.rate:>9,.0f} {case.unit:<8} "
                    f"p50 {stats['p50_us'] / 1000:.1f} ms, p99 {stats['p99_us'] / 1000:.1f} ms, {m.noise()}"
                    f"{' (noisy)' if m.noisy(args.max_others) else ''}"
                )
                if case.streaming:
                    line += f", by bytes {rate_by_bytes(stats, checked[app]):,.0f} events/s"
                if bad := {k: stats[k] for k in WRK_ERRORS if stats[k]}:
                    line += f", wrk errors {bad}"
                    errors.append(line)
                rounds.append(line)
                print(line, flush=True)

    medians = {key: statistics.median(values) for key, values in samples.items()}
    cpu_medians = {key: statistics.median(values) for key, values in per_cpu.items()}
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    report = "\n".join([
        f"# bench {stamp}",
        "",
        f"Command: `{shlex.join(['bench/run', *sys.argv[1:]])}`",
        "",
        f"Machine: {machine()}",
        f"Code: {revision()}.",
        f"Load average (1, 5, 15 min) before the rounds {' '.join(load_before)}, after {' '.join(load_after)}.",
        "",
        (
            f"Medians of {args.rounds} rounds of {args.duration} s (apps alternate going first), wrk -t1 after "
            f"{args.warmup} s of warm-up, apps pinned to cpu {app_cpu}, wrk to cpu {wrk_cpu}, a fresh app "
            f"process per measurement, a2a-server with the {args.store} store. "
            f"Events/s = completed streams x {WORDS} / duration."
        ),
        "",
        table(medians, cases),
        "",
        "The same work per CPU-second of the app process (less sensitive to other load on the machine):",
        "",
        table(cpu_medians, cases),
        "",
        "Checked by hand before the rounds:",
        *notes,
        "",
        "Every measurement:",
        "```",
        *rounds,
        "```",
        "",
    ])  # fmt: skip
    (RESULTS / f"{stamp}.md").write_text(report)
    (RESULTS / "latest.md").write_text(report)
    print(f"\n{report}")
    if errors:
        raise SystemExit(f"{len(errors)} measurements had wrk errors (non-2xx, timeouts or socket errors)")


if __name__ == "__main__":
    main()
