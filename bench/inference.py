"""Inference benchmark: raw ctransformers streaming vs the same generation through a2a-server, in one run.

How it measures (``python -m bench.inference --help`` for the knobs):
- Prompts: a different question for every run (MODEL.md: ctransformers reuses the KV cache for a shared prompt
  prefix, so a repeated prompt shows a false, tiny time to first token). Run i asks question i on both sides;
  both build the same ChatML token ids (SmolLM2's default system turn + the question, ``chat.prompt_ids``) and
  decode greedily (temperature 0, repetition penalty 1.1) up to ``--max-tokens``, so they compute the same
  tokens; the table says whether the texts matched.
- Raw (the physical reference): ctransformers in this process, the tightest loop there is: eval(prompt), then
  sample / eval(token) per token. TTFT = from before the prompt evaluation to the first sampled token.
- Server: ``a2a-server serve --skills inference`` (memory store) in a subprocess, the same threads, pool 1. An
  httpx client POSTs ``SendStreamingMessage`` (``A2A-Version: 1.0``) and reads the SSE stream. TTFT = from
  sending the request to the first artifact-update carrying text.
- tokens/s, both sides = (tokens - 1) / (time of the last token - time of the first): the decode rate as the
  reader sees it, prompt evaluation excluded (that is TTFT's part).
- Rounds alternate raw and server on the same question; the table quotes medians over the rounds.
- Queueing: 4 streams of distinct questions sent at once to a server with pool 1, then to one with pool 2 (its
  instances get threads / 2 each, the server's default): when each began generating, its TTFT as the client saw
  it, the positions it was shown, and the aggregate tokens/s over the wall time. Medians over ``--queue-rounds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from skills.inference.models import BUILTIN_MODELS
from skills.inference.runtime import ctransformers_factory

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
SPEC = BUILTIN_MODELS[0]
SUBJECTS = [
    "the Moon", "volcanoes", "honey bees", "the Nile", "glass", "penguins", "the piano", "rain", "copper",
    "Mount Everest", "bread", "whales", "the compass", "salt", "owls", "the Sahara", "tea", "lightning",
    "coral reefs", "the bicycle", "cheese", "Jupiter", "maple trees", "the telescope", "silk", "wolves",
    "the Amazon", "paper", "octopuses", "the violin", "snow", "iron", "the Alps", "coffee", "dolphins", "clocks",
]  # fmt: skip
QUESTIONS = [f"Tell me three facts about {s}." for s in SUBJECTS]


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
    total_ms: float = 0.0
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
                if note.startswith("queued: position "):
                    result.positions.append(int(note.rsplit(" ", 1)[1]))
                state = update["status"]["state"]
                if state == "TASK_STATE_WORKING" and (update.get("metadata") or {}).get("model"):
                    result.started_ms = (now - sent) * 1000  # the skill's "generation started" status
                if state == "TASK_STATE_COMPLETED":
                    result.tokens = int(update["metadata"]["usage"]["completion_tokens"])
                    result.skill_ttft_ms = float(update["metadata"]["timings"]["ttft_ms"])
                    result.skill_tps = float(update["metadata"]["timings"]["tokens_per_second"])
    result.total_ms = (time.perf_counter() - sent) * 1000
    result.ttft_ms = (times[0] - sent) * 1000 if times else 0.0
    # chunks are tokens except where bytes were held back; spread the token count over the chunk times
    result.tps = decode_rate(times) * (result.tokens - 1) / (len(times) - 1) if len(times) > 1 else 0.0
    result.text = "".join(chunks)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(pool: int, threads: int, log: Path) -> Iterator[tuple[str, int]]:
    """``a2a-server serve --skills inference`` until /readyz says the model is loaded; always stopped."""
    port = free_port()
    env = {**os.environ, "A2A_STORE": "memory", "A2A_INFERENCE_POOL": str(pool),
           "A2A_INFERENCE_THREADS": str(threads)}  # fmt: skip
    argv = [str(Path(sys.executable).parent / "a2a-server"), "serve", "--host", HOST, "--port", str(port),
            "--skills", "inference", "--log-level", "warning"]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server (pool {pool}) did not become ready; see {log}")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


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


async def compare(url: str, llm: LLM, args: argparse.Namespace) -> list[str]:
    raws: list[Sample] = []
    served: list[Streamed] = []
    async with httpx.AsyncClient(timeout=120) as http:
        raw_run(llm, "Say hello.", 8, args.threads)  # warm-up, discarded
        await stream_run(http, url, "Say hello.", 8)
        for i in range(args.runs):
            question = QUESTIONS[i]
            raws.append(raw_run(llm, question, args.max_tokens, args.threads))
            served.append(await stream_run(http, url, question, args.max_tokens))
    same = sum(r.text == s.text for r, s in zip(raws, served, strict=True))
    rt, st = median([r.tps for r in raws]), median([s.tps for s in served])
    overhead = median([s.ttft_ms - r.ttft_ms for r, s in zip(raws, served, strict=True)])
    # The same prompt evaluation varies by tens of ms between runs when other jobs share the cores; the skill's
    # own TTFT times this run's evaluation, so client TTFT minus it is the server's part alone.
    server_part = median([s.ttft_ms - s.skill_ttft_ms for s in served])
    return [
        f"Single stream, pool 1, {args.threads} threads, max_tokens {args.max_tokens}, greedy; "
        f"medians of {args.runs} runs (one new question each):",
        "",
        "| path | tokens/s | TTFT ms | tokens |",
        "|---|---:|---:|---:|",
        f"| raw ctransformers | {rt:.1f} | {median([r.ttft_ms for r in raws]):.1f} | "
        f"{median([r.tokens for r in raws]):.0f} |",
        f"| a2a-server SSE (client side) | {st:.1f} | {median([s.ttft_ms for s in served]):.1f} | "
        f"{median([s.tokens for s in served]):.0f} |",
        f"| ratio / difference | {st / rt if rt else 0:.3f} x | +{overhead:.1f} ms (median of per-run differences) | |",
        f"| server's part of its TTFT | | {server_part:.1f} ms (client TTFT - the skill's own TTFT, per run) | |",
        "",
        f"Same text on both paths in {same}/{args.runs} runs. Per-run tokens/s raw: "
        + ", ".join(f"{r.tps:.1f}" for r in raws)
        + "; server (client side): " + ", ".join(f"{s.tps:.1f}" for s in served)
        + "; server (its worker thread): " + ", ".join(f"{s.skill_tps:.1f}" for s in served),
    ]  # fmt: skip


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


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="single-stream rounds (default 7)")
    parser.add_argument("--queue-rounds", type=int, default=3, help="rounds of 4 concurrent streams per pool size")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads per model (pool 1)")
    args = parser.parse_args()
    if args.runs + 8 * args.queue_rounds > len(QUESTIONS):
        parser.error(f"at most {len(QUESTIONS)} distinct questions: lower --runs or --queue-rounds")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log = RESULTS / f"inference-{stamp}-server.log"
    path = SPEC.load_path()
    if path is None or not path.is_file():
        raise SystemExit(f"{SPEC.id} is not converted yet: run `a2a-server models convert` first")
    llm = ctransformers_factory(path, SPEC.model_type, SPEC.context_length, args.threads)
    with server(1, args.threads, log) as (url, pid):
        other = OtherLoad(pid)
        out = asyncio.run(compare(url, llm, args))
        others = [f"single stream {other.cores():.2f}"]
        other = OtherLoad(pid)
        rows = asyncio.run(queueing(url, 1, args, args.runs))
        others.append(f"pool 1 queueing {other.cores():.2f}")
    del llm  # free its threads' memory before the pool-2 server loads two instances
    with server(2, max(1, args.threads // 2), log) as (url, pid):
        other = OtherLoad(pid)
        rows += asyncio.run(queueing(url, 2, args, args.runs + 4 * args.queue_rounds))
        others.append(f"pool 2 queueing {other.cores():.2f}")
    out += [
        "",
        f"4 concurrent streams (sent 5 ms apart, FIFO), max_tokens {args.max_tokens}; medians of "
        f"{args.queue_rounds} rounds. started = until the 'generation started' status; positions = the "
        "'queued: position N' statuses one round showed:",
        "",
        "| pool | task | started ms | TTFT ms | total ms | tokens/s | positions seen |",
        "|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        f"Machine: {os.cpu_count()} cores. Cores kept busy by other processes meanwhile: {', '.join(others)}. "
        f"Command: python -m bench.inference --runs {args.runs} --queue-rounds {args.queue_rounds} "
        f"--max-tokens {args.max_tokens} --threads {args.threads}",
    ]
    report = "\n".join(out) + "\n"
    (RESULTS / f"inference-{stamp}.md").write_text(report)
    (RESULTS / "inference-latest.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
