"""Inference benchmark: raw ctransformers at every thread count vs a2a-server at its defaults, in one run.

How it measures (``python -m bench.inference --help`` for the knobs; findings in bench/inference.md):
- Prompts: a different question for every round (MODEL.md: ctransformers reuses the KV cache for a shared prompt
  prefix, so a repeated prompt shows a false, tiny time to first token). Round i asks question i on every path;
  all build the same ChatML token ids (SmolLM2's default system turn + the question, ``chat.prompt_ids``) and
  decode greedily (temperature 0, repetition penalty 1.1) up to ``--max-tokens``, so they compute the same tokens.
- Raw (the physical reference): ctransformers in this process, one instance per thread count 1..cores (each its
  own KV cache), the tightest loop there is: eval(prompt), then sample / eval(token) per token. TTFT = from
  before the prompt evaluation to the first sampled token.
- Server: ``a2a-server serve --skills inference`` (memory store, pool 1) in a subprocess, with its defaults (no
  A2A_INFERENCE_* variable set) and, to show what the defaults replace, the variants of ``--variants``. An httpx
  client POSTs ``SendStreamingMessage`` (``A2A-Version: 1.0``) and reads the SSE stream. TTFT = from sending the
  request to the first artifact-update carrying text.
- tokens/s, all paths = (tokens - 1) / (time of the last token - time of the first): the decode rate as the
  reader sees it, prompt evaluation excluded (that is TTFT's part).
- Rounds alternate the paths on the same question (raw 1, raw 2, ..., each server); the table quotes medians.
- Server CPU per streamed token: CPU time of the server's threads other than the model's (the generation thread
  and the ggml threads it starts are named ``a2a-infer``; everything else - event loop, log writer, executor -
  counts; ``/proc/<pid>/task/*/schedstat``, ns) over the tokens it streamed. The client's CPU per token (this
  process, the httpx reader) beside it.
- First request: ``--first-runs`` fresh servers at their defaults; the first request after /readyz turns 200,
  against the warm TTFT of the same server's next requests.
- Queueing: 4 streams of distinct questions sent at once to a server with pool 1, then to one with pool 2, both
  at their defaults: when each began generating, its TTFT, the positions it was shown, the aggregate tokens/s.
- Every section says how many cores other processes kept busy meanwhile: the figures are only as clean as that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.core_apps import core_busy_seconds, cpu_seconds
from skills.inference.backend import LLM
from skills.inference.chat import Turn, prompt_ids
from skills.inference.generate import THREAD_NAME
from skills.inference.models import BUILTIN_MODELS
from skills.inference.runtime import ctransformers_factory

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
SPEC = BUILTIN_MODELS[0]
CORES = len(os.sched_getaffinity(0))
SUBJECTS = [
    "the Moon", "volcanoes", "honey bees", "the Nile", "glass", "penguins", "the piano", "rain", "copper",
    "Mount Everest", "bread", "whales", "the compass", "salt", "owls", "the Sahara", "tea", "lightning",
    "coral reefs", "the bicycle", "cheese", "Jupiter", "maple trees", "the telescope", "silk", "wolves",
    "the Amazon", "paper", "octopuses", "the violin", "snow", "iron", "the Alps", "coffee", "dolphins", "clocks",
    "the Danube", "granite", "hummingbirds", "the harp", "fog", "tin", "Mars", "rice", "sharks", "lanterns",
    "the Andes", "wool", "bats", "the flute", "hail", "zinc", "Saturn", "olives", "eagles", "bridges",
]  # fmt: skip
QUESTIONS = [f"Tell me three facts about {s}." for s in SUBJECTS]
INFERENCE_VARIABLES = ("A2A_INFERENCE_THREADS", "A2A_INFERENCE_POOL", "A2A_INFERENCE_FLUSH_MS", "A2A_INFERENCE_TIMEOUT")


@dataclass
class Sample:
    ttft_ms: float
    tokens: int
    tps: float
    text: str


@dataclass
class Streamed(Sample):
    started_ms: float = 0.0  # from the request to the status that says generation started
    skill_ttft_ms: float = 0.0  # the skill's own TTFT (its final status): prompt building + evaluation
    skill_tps: float = 0.0  # the skill's own decode rate, measured in its worker thread
    threads: int = 0  # the ggml thread count the skill used at the end
    prompt_threads: int = 0  # ... and for the prompt's last slice
    total_ms: float = 0.0
    chunks: int = 0
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0  # the server's own threads (not the model's) during this request
    positions: list[int] = field(default_factory=list)


def decode_rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0


def raw_run(llm: LLM, question: str, max_tokens: int, threads: int) -> Sample:
    ids = prompt_ids([Turn("user", question)], lambda t: list(llm.tokenize(t, add_bos_token=False)),
                     chat_format=SPEC.chat_format, system_prompt=SPEC.system_prompt)  # fmt: skip
    started = time.perf_counter()
    llm.eval(llm.prepare_inputs_for_generation(ids, reset=True), batch_size=8, threads=threads)
    out: list[int] = []
    times: list[float] = []
    while len(out) < max_tokens:
        token = llm.sample(top_k=1, top_p=0.9, temperature=1.0, repetition_penalty=1.1, last_n_tokens=64, seed=0)
        if token in (2, llm.eos_token_id):
            break
        times.append(time.perf_counter())
        out.append(token)
        if len(out) < max_tokens:
            llm.eval([token], batch_size=8, threads=threads)
    data = llm.detokenize(out, decode=False)
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return Sample((times[0] - started) * 1000 if times else 0.0, len(out), decode_rate(times), text)


async def stream_run(http: httpx.AsyncClient, url: str, question: str, max_tokens: int) -> Streamed:
    message = {"messageId": os.urandom(8).hex(), "role": "ROLE_USER", "parts": [{"text": question}]}
    params = {"message": message, "metadata": {"max_tokens": max_tokens, "temperature": 0}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": params}
    cpu = time.thread_time()
    sent = time.perf_counter()
    times: list[float] = []
    chunks: list[str] = []
    result = Streamed(0.0, 0, 0.0, "")
    async with http.stream("POST", url + "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            now = time.perf_counter()
            event = json.loads(line[5:])["result"]
            if "artifactUpdate" in event:
                text = "".join(p.get("text", "") for p in event["artifactUpdate"]["artifact"]["parts"])
                if text:
                    times.append(now)
                    chunks.append(text)
            elif "statusUpdate" in event:
                update = event["statusUpdate"]
                note = "".join(p.get("text", "") for p in update["status"].get("message", {}).get("parts", []))
                if note.startswith("queued: position "):  # "queued: position N" or "... N (waiting S s)"
                    result.positions.append(int(note.split()[2]))
                state = update["status"]["state"]
                if state == "TASK_STATE_WORKING" and (update.get("metadata") or {}).get("model"):
                    result.started_ms = (now - sent) * 1000  # the skill's "generation started" status
                if state == "TASK_STATE_COMPLETED":
                    metadata = update["metadata"]
                    result.tokens = int(metadata["usage"]["completion_tokens"])
                    result.skill_ttft_ms = float(metadata["timings"]["ttft_ms"])
                    result.skill_tps = float(metadata["timings"]["tokens_per_second"])
                    result.threads = int(metadata["timings"].get("threads", 0))
                    result.prompt_threads = int(metadata["timings"].get("prompt_threads", 0))
    result.total_ms = (time.perf_counter() - sent) * 1000
    result.client_cpu_s = time.thread_time() - cpu
    result.ttft_ms = (times[0] - sent) * 1000 if times else 0.0
    # a chunk may carry several tokens: the rate is tokens over the time from the first chunk to the last
    result.tps = (result.tokens - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    result.text = "".join(chunks)
    result.chunks = len(chunks)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """``a2a-server serve --skills inference`` until /readyz says the model is loaded; always stopped."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if k not in INFERENCE_VARIABLES}
    full = {**clean, "A2A_STORE": "memory", **env}
    argv = [str(Path(sys.executable).parent / "a2a-server"), "serve", "--host", HOST, "--port", str(port),
            "--skills", "inference", "--log-level", "warning"]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server ({env or 'defaults'}) did not become ready; see {log}")
            time.sleep(0.02)
        yield url, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds of each live thread of ``pid``, with its OS name: ``schedstat``'s nanoseconds (``stat``'s clock
    ticks are 10 ms, as much as a whole 64-token request costs the server)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            ns = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            out[int(tid)] = (comm, ns / 1e9)
    return out


def server_cpu(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> float:
    """CPU the server's own threads (not the model's) used between two ``thread_cpu`` readings."""
    name = THREAD_NAME.decode()
    return sum(cpu - before.get(tid, (comm, 0.0))[1] for tid, (comm, cpu) in after.items() if comm != name)


class OtherLoad:
    """How many cores other processes kept busy while a section ran: the numbers are only as clean as this."""

    def __init__(self, *pids: int) -> None:
        self.pids = (os.getpid(), *pids)
        self.started, self.busy, self.ours = time.perf_counter(), self._busy(), self._ours()

    @staticmethod
    def _busy() -> float:
        return sum(core_busy_seconds(cpu) for cpu in sorted(os.sched_getaffinity(0)))

    def _ours(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def cores(self) -> float:
        others = (self._busy() - self.busy) - (self._ours() - self.ours)
        return max(others, 0.0) / (time.perf_counter() - self.started)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


@dataclass
class Path_:
    """One way of generating: a raw thread count, or a server variant."""

    name: str
    samples: list[Sample] = field(default_factory=list)

    def streamed(self) -> list[Streamed]:
        return [s for s in self.samples if isinstance(s, Streamed)]


async def compare(servers: dict[str, tuple[str, int]], llms: dict[int, LLM], args: argparse.Namespace) -> list[Path_]:
    raws = {t: Path_(f"raw ctransformers, {t} thread{'s' if t > 1 else ''}") for t in llms}
    served = {name: Path_(f"a2a-server, {name}") for name in servers}
    async with httpx.AsyncClient(timeout=300) as http:
        for t, llm in llms.items():
            raw_run(llm, "Say hello.", 8, t)  # warm-up, discarded
        for url, _ in servers.values():
            await stream_run(http, url, "Say hello.", 8)
        for i in range(args.runs):
            question = QUESTIONS[i]
            for t, llm in llms.items():
                raws[t].samples.append(raw_run(llm, question, args.max_tokens, t))
            for name, (url, pid) in servers.items():
                before = thread_cpu(pid)
                sample = await stream_run(http, url, question, args.max_tokens)
                sample.server_cpu_s = server_cpu(before, thread_cpu(pid))
                served[name].samples.append(sample)
    return [*raws.values(), *served.values()]


def single_stream_table(paths: list[Path_], args: argparse.Namespace) -> tuple[list[str], dict[str, float]]:
    raws = [p for p in paths if not p.streamed()]
    best = max(raws, key=lambda p: median([s.tps for s in p.samples]))
    best_tps = median([s.tps for s in best.samples])
    lines = [
        f"Single stream, pool 1, max_tokens {args.max_tokens}, greedy; medians of {args.runs} rounds (one new "
        "question each, every path in turn):",
        "",
        "| path | tokens/s | x best raw | TTFT ms | TTFT - best raw (per round) | server's own part of TTFT "
        "| chunks | threads used (prompt+decode) | server CPU µs/token | client CPU µs/token |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    goals: dict[str, float] = {}
    for p in paths:
        tps = median([s.tps for s in p.samples])
        ttft = median([s.ttft_ms for s in p.samples])
        row = [p.name + (" (best raw)" if p is best else ""), f"{tps:.1f}", f"{tps / best_tps:.2f}", f"{ttft:.1f}"]
        streamed = p.streamed()
        if streamed:
            over = median([s.ttft_ms - r.ttft_ms for s, r in zip(streamed, best.samples, strict=True)])
            own = median([s.ttft_ms - s.skill_ttft_ms for s in streamed])
            tokens = sum(s.tokens for s in streamed)
            cpu = sum(s.server_cpu_s for s in streamed)
            threads = sorted({f"{s.prompt_threads}+{s.threads}" for s in streamed})
            row += [
                f"{over:+.1f}",
                f"{own:.1f}",
                f"{median([s.chunks for s in streamed]):.0f}",
                " ".join(threads),
                f"{1e6 * cpu / tokens:.0f}" if tokens else "-",
                f"{1e6 * sum(s.client_cpu_s for s in streamed) / tokens:.0f}" if tokens else "-",
            ]
            if p.name.endswith("defaults"):
                goals = {"ratio": tps / best_tps, "ttft_over": over, "own": own,
                         "cpu_us": 1e6 * cpu / tokens if tokens else 0.0}  # fmt: skip
        else:
            row += ["", "", "", "", "", ""]
        lines.append("| " + " | ".join(row) + " |")
    same = [
        f"{p.name}: {sum(s.text == r.text for s, r in zip(p.samples, best.samples, strict=True))}/{args.runs}"
        for p in paths
        if p.streamed()
    ]
    runs = [s for p in paths for s in p.streamed()]
    if len({s.chunks for s in runs}) > 1:
        per_chunk, fixed = statistics.linear_regression([s.chunks for s in runs], [s.server_cpu_s for s in runs])
        lines += [
            "",
            f"Server CPU (its own threads) per request, least squares over all {len(runs)} server runs above: "
            f"{1000 * fixed:.1f} ms + {1e6 * per_chunk:.0f} µs per text chunk (event).",
        ]
    lines += [
        "",
        "Same text as the best raw path in: " + "; ".join(same) + ". Per-round tokens/s: "
        + "; ".join(f"{p.name}: " + ", ".join(f"{s.tps:.0f}" for s in p.samples) for p in paths) + ".",
    ]  # fmt: skip
    return lines, goals


async def first_requests(args: argparse.Namespace, log: Path) -> tuple[list[float], list[float], list[float]]:
    """TTFT of the first request after /readyz, then of the next ones, on fresh servers at their defaults."""
    firsts, warms, others = [], [], []
    for run in range(args.first_runs):
        with server({}, log) as (url, pid):
            load = OtherLoad(pid)
            async with httpx.AsyncClient(timeout=300) as http:
                base = len(QUESTIONS) - 1 - 4 * run
                firsts.append((await stream_run(http, url, QUESTIONS[base], args.max_tokens)).ttft_ms)
                for k in range(1, 4):
                    warms.append((await stream_run(http, url, QUESTIONS[base - k], args.max_tokens)).ttft_ms)
            others.append(load.cores())
    return firsts, warms, others


async def queueing(url: str, pool: int, args: argparse.Namespace, offset: int) -> list[str]:
    rounds: list[tuple[float, list[Streamed]]] = []
    async with httpx.AsyncClient(timeout=300) as http:
        for r in range(args.queue_rounds):
            questions = QUESTIONS[offset + 4 * r : offset + 4 * r + 4]
            started = time.perf_counter()
            tasks = []
            for q in questions:  # sent in this order, a few ms apart, so the FIFO order is known
                tasks.append(asyncio.create_task(stream_run(http, url, q, args.max_tokens)))
                await asyncio.sleep(0.005)
            results = await asyncio.gather(*tasks)
            rounds.append((time.perf_counter() - started, list(results)))
    lines = [f"| {pool} | {k + 1} | " + " | ".join([
        f"{median([rs[k].started_ms for _, rs in rounds]):.0f}",
        f"{median([rs[k].ttft_ms for _, rs in rounds]):.0f}",
        f"{median([rs[k].total_ms for _, rs in rounds]):.0f}",
        f"{median([rs[k].tps for _, rs in rounds]):.1f}",
        " ".join(map(str, rounds[0][1][k].positions)) or "-",
    ]) + " |" for k in range(4)]  # fmt: skip
    total = median([sum(s.tokens for s in rs) / wall for wall, rs in rounds])
    return [*lines, f"| {pool} | all | | | {median([w for w, _ in rounds]) * 1000:.0f} (wall) | {total:.1f} | |"]


def filler(llm: LLM, tokens: int) -> str:
    """A user text of about ``tokens`` tokens (whole sentences about the subjects)."""
    sentences = [f"Here is a note about {s}, kept for later reference. " for s in SUBJECTS]
    per_round = len(llm.tokenize("".join(sentences), add_bos_token=False))
    return "".join(sentences) * max(1, tokens // per_round) + "Summarize the notes in one sentence."


async def long_prompt(url: str, text: str, oversize: str, context: int) -> list[str]:
    """A long prompt streamed while a short request waits behind it; then a prompt longer than the context, on both
    faces. Reports what each side was shown, and when."""
    notes: dict[str, list[tuple[float, str]]] = {"long": [], "short": []}
    finals: dict[str, dict[str, object]] = {}

    async def watch(name: str, question: str, delay: float) -> None:
        await asyncio.sleep(delay)
        message = {"messageId": os.urandom(8).hex(), "role": "ROLE_USER", "parts": [{"text": question}]}
        params = {"message": message, "metadata": {"max_tokens": 16, "temperature": 0}}
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": params}
        sent = time.perf_counter()
        async with http.stream("POST", url + "/a2a", json=body, headers={"A2A-Version": "1.0"}) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])["result"]
                update = event.get("statusUpdate")
                if update is None:
                    continue
                parts = update["status"].get("message", {}).get("parts", [])
                note = "".join(p.get("text", "") for p in parts)
                if note:
                    notes[name].append((time.perf_counter() - sent, note))
                if update["status"]["state"] != "TASK_STATE_WORKING":
                    finals[name] = {"t": time.perf_counter() - sent, **(update.get("metadata") or {})}

    def gaps(name: str, prefix: str) -> str:
        times = [t for t, n in notes[name] if n.startswith(prefix)]
        if not times:
            return "none"
        widest = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
        return f"{len(times)}, first at {times[0]:.1f} s, widest gap {widest:.1f} s"

    async with httpx.AsyncClient(timeout=900) as http:
        await asyncio.gather(watch("long", text, 0), watch("short", QUESTIONS[-1], 0.5))
        message = {"messageId": os.urandom(8).hex(), "role": "ROLE_USER", "parts": [{"text": oversize}]}
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
        began = time.perf_counter()
        rpc = (await http.post(url + "/a2a", json=body, headers={"A2A-Version": "1.0"})).json()
        rpc_ms = (time.perf_counter() - began) * 1000
        chat = {"model": SPEC.id, "messages": [{"role": "user", "content": oversize}]}
        began = time.perf_counter()
        openai = await http.post(url + "/v1/chat/completions", json=chat)
        openai_ms = (time.perf_counter() - began) * 1000
    usage = finals.get("long", {}).get("usage", {})
    timings = finals.get("long", {}).get("timings", {})
    error = (
        openai.json().get("error", {}) if openai.headers.get("content-type", "").startswith("application/json") else {}
    )
    return [
        f"Long prompt: {usage.get('prompt_tokens') if isinstance(usage, dict) else '?'} prompt tokens, max_tokens 16, "
        f"server at its defaults; done after {finals.get('long', {}).get('t', 0):.1f} s "
        f"(skill TTFT {timings.get('ttft_ms') if isinstance(timings, dict) else '?'} ms). "
        f"'evaluating prompt' statuses: {gaps('long', 'evaluating prompt')}. A short request sent 0.5 s later: "
        f"'queued' statuses {gaps('short', 'queued')}; done after {finals.get('short', {}).get('t', 0):.1f} s.",
        "",
        f"A prompt longer than the context ({context} tokens): JSON-RPC SendMessage answered "
        f"{rpc.get('error', {}).get('code')} in {rpc_ms:.0f} ms ({str(rpc.get('error', {}).get('message'))[:120]}); "
        f"/v1/chat/completions answered HTTP {openai.status_code} code {error.get('code')!r} in {openai_ms:.0f} ms.",
    ]


def variants(spec: str) -> dict[str, dict[str, str]]:
    """``--variants``: comma-separated servers, each one or more ``+``-joined NAME=VALUE settings of
    A2A_INFERENCE_*, e.g. ``THREADS=1,THREADS=2+FLUSH_MS=0`` (two servers besides the one at its defaults)."""
    out: dict[str, dict[str, str]] = {"defaults": {}}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        settings = [part.partition("=") for part in item.split("+")]
        name = ", ".join(f"{key.lower()} {value}" for key, _, value in settings)
        out[name] = {f"A2A_INFERENCE_{key.upper()}": value for key, _, value in settings}
    return out


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="single-stream rounds (default 9)")
    parser.add_argument("--first-runs", type=int, default=3, help="fresh servers for the first-request TTFT")
    parser.add_argument("--queue-rounds", type=int, default=2, help="rounds of 4 concurrent streams per pool size")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--long-prompt", type=int, default=0, help="tokens of a long-prompt section (0: skip)")
    parser.add_argument(
        "--variants",
        default=",".join([*(f"THREADS={n}+FLUSH_MS=0" for n in range(1, CORES + 1)), "FLUSH_MS=0"]),
        help="servers to compare with the one at its defaults (default: every fixed thread count with a token "
        "event per token, as before issue 14, and the defaults with a token event per token)",
    )
    args = parser.parse_args()
    # SIGTERM (timeout, pkill) unwinds through each server()'s finally, which stops it; without this a killed
    # bench left its model servers running and busy
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.runs + 8 * args.queue_rounds + 4 * args.first_runs > len(QUESTIONS):
        parser.error(f"at most {len(QUESTIONS)} distinct questions: lower --runs, --queue-rounds or --first-runs")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log = RESULTS / f"inference-{stamp}-server.log"
    path = SPEC.load_path()
    if path is None or not path.is_file():
        raise SystemExit(f"{SPEC.id} is not converted yet: run `a2a-server models convert` first")
    started = datetime.now(UTC)
    others: list[str] = []
    llms = {t: ctransformers_factory(path, SPEC.model_type, SPEC.context_length, t) for t in range(1, CORES + 1)}
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(server(env, log)) for name, env in variants(args.variants).items()}
        load = OtherLoad(*(pid for _, pid in servers.values()))
        paths = asyncio.run(compare(servers, llms, args))
        others.append(f"single stream {load.cores():.2f}")
    long_text = filler(llms[1], args.long_prompt) if args.long_prompt else ""
    oversize = filler(llms[1], SPEC.context_length + 500)
    del llms  # free their memory before the queueing servers load theirs
    out, goals = single_stream_table(paths, args)
    firsts, warms, first_load = asyncio.run(first_requests(args, log))
    others.append("first requests " + "/".join(f"{c:.2f}" for c in first_load))
    rows: list[str] = []
    long_lines: list[str] = []
    for pool in (1, 2):
        with server({"A2A_INFERENCE_POOL": str(pool)}, log) as (url, pid):
            load = OtherLoad(pid)
            rows += asyncio.run(queueing(url, pool, args, args.runs + 4 * args.queue_rounds * (pool - 1)))
            others.append(f"pool {pool} queueing {load.cores():.2f}")
            if pool == 1 and long_text:
                load = OtherLoad(pid)
                long_lines = asyncio.run(long_prompt(url, long_text, oversize, SPEC.context_length))
                others.append(f"long prompt {load.cores():.2f}")
    first, warm = median(firsts), median(warms)
    out += [
        "",
        f"First request after /readyz, {args.first_runs} fresh servers at their defaults: TTFT "
        + ", ".join(f"{f:.0f}" for f in firsts)
        + f" ms (median {first:.0f}); the next 3 requests of each: median {warm:.0f} ms.",
        "",
        "| goal (issue 14) | target | this run | |",
        "|---|---|---:|---|",
        f"| server tokens/s ÷ raw at its best thread count | ≥ 0.9 | {goals['ratio']:.2f} | "
        f"{verdict(goals['ratio'] >= 0.9)} |",
        f"| warm TTFT overhead (server - best raw, median per round) | ≤ 10 ms | {goals['ttft_over']:+.1f} ms "
        f"(server's own part {goals['own']:.1f} ms) | {verdict(goals['ttft_over'] <= 10)} |",
        f"| first-request TTFT ÷ warm TTFT | ≤ 2 | {first / warm if warm else 0:.2f} | "
        f"{verdict(warm > 0 and first <= 2 * warm)} |",
        f"| server CPU per streamed token (not the model's threads) | ≤ 100 µs | {goals['cpu_us']:.0f} µs | "
        f"{verdict(goals['cpu_us'] <= 100)} |",
        "",
        f"4 concurrent streams (sent 5 ms apart, FIFO), servers at their defaults, max_tokens {args.max_tokens}; "
        f"medians of {args.queue_rounds} rounds. started = until the 'generation started' status; positions = the "
        "'queued: position N' statuses one round showed:",
        "",
        "| pool | task | started ms | TTFT ms | total ms | tokens/s | positions seen |",
        "|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        *(["", *long_lines] if long_lines else []),
        "",
        f"Machine: {CORES} cores ({os.cpu_count()} online); run {started:%Y-%m-%d %H:%M} to "
        f"{datetime.now(UTC):%H:%M} UTC. "
        f"Cores kept busy by other processes meanwhile: {', '.join(others)}. Command: python -m bench.inference "
        f"--runs {args.runs} --first-runs {args.first_runs} --queue-rounds {args.queue_rounds} "
        f"--max-tokens {args.max_tokens} --long-prompt {args.long_prompt} --variants {args.variants}",
    ]  # fmt: skip
    report = "\n".join(out) + "\n"
    (RESULTS / f"inference-{stamp}.md").write_text(report)
    (RESULTS / "inference-latest.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
