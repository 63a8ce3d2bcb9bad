"""Metered against unmetered streams in one run: what charging each token on a billing channel costs.

A real server (``python -m a2a_server serve``, SQLite store in a temporary directory, echo skill) streams the same
answer of ``--words`` chunks with no delay (the worst case for metering: the store, not a model, sets the pace),
alternately on a billing channel and without one, ``--rounds`` times each. A stream is
``SendStreamingMessage`` read to its end by httpx; tokens/s = chunks / (last chunk - first chunk). With ``--model``
the inference skill streams SmolLM2's answer instead (``max_tokens`` 128, temperature 0), where a model sets the pace.

    .venv/bin/python -m bench.billing [--words 3000] [--rounds 5] [--model]

Prints each round and the medians; the goal is metered / unmetered >= 0.99.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(tmp: Path, skills: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    cmd = [sys.executable, "-m", "a2a_server", "serve", "--host", "127.0.0.1", "--port", str(port), "--skills",
           skills, "--store", f"sqlite://{tmp / 'bench.db'}"]  # fmt: skip
    env = {**os.environ, "A2A_INFERENCE_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not become ready within 120 s")


def _rpc(url: str, method: str, params: dict[str, Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(url + "/a2a", json=body, timeout=30).json()["result"]


def _stream(url: str, text: str, metadata: dict[str, Any]) -> tuple[int, float]:
    """Chunks received and tokens/s of one stream."""
    message = {"messageId": os.urandom(8).hex(), "role": "ROLE_USER", "parts": [{"text": text}], "metadata": metadata}
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": {"message": message}}
    times: list[float] = []
    usage: dict[str, Any] = {}
    with httpx.stream("POST", url + "/a2a", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            result = json.loads(line[5:])["result"]
            if "artifactUpdate" in result:
                if any(p.get("text") for p in result["artifactUpdate"]["artifact"]["parts"]):
                    times.append(time.perf_counter())
            elif "statusUpdate" in result:
                usage = (result["statusUpdate"].get("metadata") or {}).get("usage") or usage
    tokens = int(usage.get("completion_tokens", len(times)))
    elapsed = times[-1] - times[0] if len(times) > 1 else 0.0
    return tokens, (tokens / elapsed if elapsed else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", action="store_true", help="the inference skill (SmolLM2) instead of echo")
    args = parser.parse_args()
    skill = "inference" if args.model else "echo"
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _serve(Path(tmp), skill)
        try:
            if args.model:
                text = "Write a long story about a lighthouse keeper."
                base: dict[str, Any] = {"skill": skill, "max_tokens": 128, "temperature": 0}
            else:
                text = " ".join(f"w{i}" for i in range(args.words))
                base = {"skill": skill}
            _stream(url, text, base)  # warm-up
            rates: dict[str, list[float]] = {"unmetered": [], "metered": []}
            for n in range(args.rounds):
                channel = _rpc(url, "OpenChannel", {"deposit": str(10**30), "tokenRate": "1000000000000"})
                for kind in ("unmetered", "metered") if n % 2 == 0 else ("metered", "unmetered"):
                    metadata = {**base, "channel": channel["id"]} if kind == "metered" else base
                    tokens, rate = _stream(url, text, metadata)
                    rates[kind].append(rate)
                    print(f"round {n + 1} {kind:>9}: {tokens} tokens, {rate:,.0f} tokens/s", flush=True)
                receipt = _rpc(url, "CloseChannel", {"id": channel["id"]})
                assert receipt["tokens"] == tokens or args.model, receipt  # every token of the metered run charged
            unmetered, metered = statistics.median(rates["unmetered"]), statistics.median(rates["metered"])
            # the load of a shared machine drifts between rounds: the two runs of a round are compared to each other
            pairs = statistics.median(m / u for m, u in zip(rates["metered"], rates["unmetered"], strict=True) if u)
            print(f"median unmetered {unmetered:,.0f} tokens/s, metered {metered:,.0f} tokens/s; "
                  f"median of the rounds' metered/unmetered {pairs:.3f} (goal >= 0.99)")  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(15)


if __name__ == "__main__":
    main()
