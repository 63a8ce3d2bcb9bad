"""The 1.0 HTTP+JSON binding against JSON-RPC on the same server, in one run (issue 9: REST should cost no more).

    .venv/bin/python -m bench.rest [--rounds 3] [--duration 5] [--cases 'send c16,stream c64']

Same harness as bench/core.py (a fresh a2a-server per measurement pinned to one core, wrk on the other, warm-up,
CPU accounting, noisy measurements redone), but both columns are a2a-server: JSON-RPC (`POST /a2a`, the
`send.lua` / `stream.lua` bodies) and REST (`POST /a2a/rest/message:send|stream`, the same message). The order
alternates per round. Prints medians, the ratio REST / JSON-RPC, and the same per CPU-second of the server.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.core import WRK_ERRORS, Case, cpus, machine, measure, revision
from bench.core_apps import RESULTS

PAIRS = [
    (Case("send c1", "send", 1, 1.0), Case("send c1", "rest_send", 1, 1.0)),
    (Case("send c16", "send", 16, 1.0), Case("send c16", "rest_send", 16, 1.0)),
    (Case("stream c1", "stream", 1, 1.0), Case("stream c1", "rest_stream", 1, 1.0)),
    (Case("stream c64", "stream", 64, 1.0), Case("stream c64", "rest_stream", 64, 1.0)),
]
BINDINGS = ("JSON-RPC", "REST")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--max-others", type=float, default=0.15)
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--cases", help="comma-separated subset of: " + ", ".join(p[0].name for p in PAIRS))
    args = parser.parse_args()
    cores = cpus()
    pairs = [p for p in PAIRS if not args.cases or p[0].name in args.cases.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / f"rest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-apps.log"
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    rates: dict[tuple[str, str], list[float]] = {}
    per_cpu: dict[tuple[str, str], list[float]] = {}
    lines = []
    for rnd in range(1, args.rounds + 1):
        for pair in pairs:
            order = list(zip(BINDINGS, pair, strict=True))
            for binding, case in order if rnd % 2 else order[::-1]:
                m = measure(case, "a2a-server", cores, log, args)
                for _ in range(args.retries):
                    if not m.noisy(args.max_others):
                        break
                    m = measure(case, "a2a-server", cores, log, args)
                rates.setdefault((case.name, binding), []).append(m.rate)
                per_cpu.setdefault((case.name, binding), []).append(m.per_cpu_second)
                bad = {k: m.stats[k] for k in WRK_ERRORS if m.stats[k]}
                noisy = " (noisy)" if m.noisy(args.max_others) else ""
                errors = f", wrk errors {bad}" if bad else ""
                rate = f"{m.rate:>9,.0f} {case.unit:<8}"
                lines.append(f"round {rnd} {case.name:<10} {binding:<8} {rate} {m.noise()}{noisy}{errors}")
                print(lines[-1], flush=True)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    out = [f"Machine: {machine()}", f"Code: {revision()}, {args.store} store, echo skill.",
           f"Load average before {' '.join(load_before)}, after {' '.join(load_after)}; medians of "
           f"{args.rounds} rounds of {args.duration} s, the bindings alternating.", "",
           "| case | JSON-RPC | REST | REST / JSON-RPC | JSON-RPC per CPU-s | REST per CPU-s | ratio per CPU-s |",
           "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for rpc_case, _ in pairs:
        r = [statistics.median(rates[(rpc_case.name, b)]) for b in BINDINGS]
        c = [statistics.median(per_cpu[(rpc_case.name, b)]) for b in BINDINGS]
        unit = rpc_case.unit
        out.append(f"| {rpc_case.name} | {r[0]:,.0f} {unit} | {r[1]:,.0f} {unit} | {r[1] / r[0]:.2f} | "
                   f"{c[0]:,.0f} | {c[1]:,.0f} | {c[1] / c[0]:.2f} |")  # fmt: skip
    report = "\n".join([*out, "", "```", *lines, "```", ""])
    (RESULTS / "rest-latest.md").write_text(report)
    print("\n" + report)
    if any("wrk errors" in ln for ln in lines):
        sys.exit("some measurements had wrk errors (non-2xx, timeouts or socket errors)")


if __name__ == "__main__":
    main()
