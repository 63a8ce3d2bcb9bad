"""Where a2a-server spends its time under one benchmark case: py-spy on the pinned server under wrk.

    .venv/bin/pip install py-spy
    .venv/bin/python -m bench.core_profile --case "send c64"

Starts a fresh a2a-server exactly as bench/core.py does, warms it up, then samples it with
``py-spy record`` (on the wrk core) while wrk runs the
case. Prints the largest shares of the samples by package, by function's own time (the frame on
top) and by total time (anywhere on the stack), and keeps the raw collapsed stacks for
flamegraph.pl or speedscope. Idle time in the event loop's select() is not sampled, so shares are
of busy time. py-spy pauses the server for each sample (whole stacks; --nonblocking reads them
while it runs and gets torn stacks), so the rate under the profiler is lower than in the benchmark.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.core import CASES, cpus, rate, wrk
from bench.core_apps import BIN, RESULTS, running

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _name(frame: str) -> str:
    """``send (a2a_server/operations.py:57)`` -> ``a2a_server/operations.py:send``, lines merged."""
    m = FRAME.match(frame)
    return f"{m['file']}:{m['func']}" if m else frame


def _package(name: str) -> str:
    """``a2a_server/engine.py:Engine._drive`` -> ``a2a_server``; the stdlib's modules keep their file name."""
    path = name.split(":", 1)[0]
    return path.split("/", 1)[0] if "/" in path else path


# Leaf frames where a thread waits rather than works (py-spy's idle detection misses some of them).
WAITING = ("selectors.py:EpollSelector.select", "concurrent/futures/thread.py:_worker", "threading.py:Condition.wait")
# Frames under which everything runs (interpreter entry, the loop, worker threads): no information.
PLUMBING = re.compile(
    r"^(a2a-server:<module>|a2a_server/cli\.py:|uvicorn/(main|server|_compat)\.py:|asyncio/(runners|base_events)\.py:"
    r"|asyncio/events\.py:Handle\._run|threading\.py:|concurrent/futures/thread\.py:_worker)"
)


def summarize(raw: Path, top: int) -> str:
    stacks: list[tuple[list[str], int]] = []
    waiting = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [_name(f) for f in stack.split(";")]
        if frames[-1] in WAITING:
            waiting += int(count)
        else:
            stacks.append((frames, int(count)))
    samples = sum(n for _, n in stacks)
    if not samples:
        return "no samples"
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    package: Counter[str] = Counter()
    for frames, n in stacks:
        own[frames[-1]] += n
        package[_package(frames[-1])] += n
        for name in set(frames):
            if not PLUMBING.match(name):
                total[name] += n
    out = [f"{samples} samples of busy time ({waiting} more of threads waiting in select() or for work left out)", ""]
    ours = Counter({name: n for name, n in total.items() if name.startswith(("a2a_server/", "skills/"))})
    tables = (
        ("own time by package/module", package),
        ("own time", own),
        ("total time (on the stack)", total),
        ("total time, a2a_server and skills only", ours),
    )
    for title, counter in tables:
        out += [f"| {title} | % |", "|---|---:|"]
        out += [f"| `{name}` | {n / samples:.1%} |" for name, n in counter.most_common(top)]
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", default="send c64", choices=[c.name for c in CASES])
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk; py-spy samples all but 1 s")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--nonblocking", action="store_true", help="do not pause the server to sample")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    py_spy = BIN / "py-spy"
    if not py_spy.exists():
        sys.exit(f"{py_spy} is missing: .venv/bin/pip install py-spy")

    case = next(c for c in CASES if c.name == args.case)
    app_cpu, wrk_cpu = cpus()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"profile-{case.name.replace(' ', '-')}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    raw = RESULTS / f"{stem}.raw"
    with running("a2a-server", app_cpu, RESULTS / f"{stem}-app.log", args.store) as (port, pid):
        wrk(case, port, wrk_cpu, 1)
        spy_argv = [str(py_spy), "record", "-p", str(pid), "-r", str(args.rate)]
        spy_argv += ["--nonblocking"] if args.nonblocking else []
        spy_argv += ["-d", str(max(1, args.duration - 1)), "-f", "raw", "-o", str(raw)]
        spy = subprocess.Popen(["taskset", "-c", str(wrk_cpu), *spy_argv], stdout=subprocess.DEVNULL)
        try:
            stats = wrk(case, port, wrk_cpu, args.duration)
        finally:
            spy.wait(timeout=args.duration + 30)
    report = "\n".join([
        f"# py-spy profile of a2a-server ({args.store} store), {case.name}",
        "",
        f"Under the profiler: {rate(case, stats):,.0f} {case.unit} (py-spy {args.rate} Hz"
        f"{', non-blocking' if args.nonblocking else ''}, "
        f"on the wrk core). Raw stacks: {raw}",
        "",
        summarize(raw, args.top),
    ])  # fmt: skip
    (RESULTS / f"{stem}.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
