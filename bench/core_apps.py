"""The two apps under test: how to start them pinned to a core, stop them, and check their work.

Every app runs under the same Python and uvicorn on a free loopback port; its pid is listed in
``bench/results/.pids`` while it runs so that ``bench/run``'s trap can stop it if this process is
killed outright.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
PIDFILE = RESULTS / ".pids"
HOST = "127.0.0.1"
WORDS = 100  # words per streamed message = artifact chunk events per stream

# `a2a-server serve` calls uvicorn.run with uvicorn's default loop and HTTP ("auto": uvloop and
# httptools when installed, else asyncio and h11), no access log, log level info (a2a_server/cli.py).
# The bare app must run under the same settings or the ratio means nothing.
UVICORN_FLAGS = ["--loop", "auto", "--http", "auto", "--no-access-log", "--log-level", "info"]

# ``python -m`` from the app's directory: the code of this checkout, whatever the venv's editable install names
SERVER = [str(BIN / "python"), "-m", "a2a_server", "serve", "--host", HOST, "--port", "{port}", "--skills", "echo"]
BARE = [str(BIN / "python"), "-m", "uvicorn", "bench.bare_app:app", "--host", HOST, "--port", "{port}"]
APPS: dict[str, list[str]] = {"a2a-server": SERVER, "bare": [*BARE, *UVICORN_FLAGS]}
# BENCH_BEFORE=<git revision>: also measure the server as it was at that revision (checked out into
# bench/results/before), so that one run shows before and after side by side
BEFORE = os.environ.get("BENCH_BEFORE")
CWD: dict[str, Path] = {"a2a-server": ROOT, "bare": ROOT}
if BEFORE:
    # cli._serve directly: an older cli's argument parser may clash with the commands the venv now registers
    APPS["before"] = [str(BIN / "python"), "-c", "import sys; from a2a_server.cli import _serve; "
                      "from a2a_server.config import Settings; "
                      f"sys.exit(_serve(Settings.from_env(host={HOST!r}, port={{port}}, skills=['echo'])))"]
    CWD["before"] = RESULTS / "before"


def checkout_before() -> None:
    """Put the code of BENCH_BEFORE into bench/results/before (a detached worktree, made once)."""
    if BEFORE and not CWD["before"].exists():
        RESULTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(CWD["before"]), BEFORE], cwd=ROOT, check=True)


@dataclass(frozen=True)
class Checked:
    send_bytes: int  # body of one SendMessage reply
    stream_wire_bytes: int  # one whole stream as wrk reads it: status line, headers, chunked body
    events: int  # SSE events with data in one stream
    chunks: int  # of which artifact-update chunks
    ids: int  # of which carry an id


def request_body(method: str, text: str) -> bytes:
    message = {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": text}]}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"message": message}}).encode()


def stream_text() -> str:
    return " ".join(f"w{i}" for i in range(1, WORDS + 1))  # same text as bench/wrk/stream.lua


def _post(port: int, body: bytes) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", "/a2a", body, {"Content-Type": "application/json", "A2A-Version": "1.0"})
        resp = conn.getresponse()
        return resp.status, resp.getheader("content-type", ""), resp.read()
    finally:
        conn.close()


def _wire_bytes(port: int, body: bytes) -> int:
    """Bytes of one keep-alive response on the wire, counted the way wrk counts them."""
    head = (
        f"POST /a2a HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"A2A-Version: 1.0\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        got = b""
        while not got.endswith(b"\r\n0\r\n\r\n"):
            data = sock.recv(65536)
            if not data:
                break
            got += data
    return len(got)


def check(app: str, port: int) -> Checked:
    """One send and one stream by hand; fail loudly if the app does not do the work wrk will count."""
    status, _, raw = _post(port, request_body("SendMessage", "hello"))
    if status != 200 or "result" not in json.loads(raw):
        raise SystemExit(f"{app}: SendMessage answered {status} {raw[:300]!r}")
    send_bytes = len(raw)
    body = request_body("SendStreamingMessage", stream_text())
    status, ctype, raw = _post(port, body)
    frames = [f for f in raw.decode().replace("\r\n", "\n").split("\n\n") if "data:" in f]
    chunks = [f for f in frames if "artifactUpdate" in f]
    if status != 200 or not ctype.startswith("text/event-stream") or len(chunks) != WORDS:
        raise SystemExit(f"{app}: stream answered {status} {ctype} with {len(chunks)} chunk events, not {WORDS}")
    ids = sum(1 for f in frames if re.search(r"^id:", f, re.MULTILINE))
    return Checked(send_bytes, _wire_bytes(port, body), len(frames), len(chunks), ids)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def running(app: str, cpu: int, log: Path, store: str = "sqlite") -> Iterator[tuple[int, int]]:
    """Start ``app`` pinned to ``cpu``, yield (port, pid) once /healthz answers, always stop it.

    a2a-server gets ``store``: "memory", or "sqlite" for a fresh database file of its own that is
    removed afterwards (never the user's default one, which other runs and people share).
    """
    with tempfile.TemporaryDirectory(prefix="a2a-bench-") as tmp:
        env = {**os.environ, "A2A_STORE": "memory" if store == "memory" else f"sqlite://{tmp}/tasks.db"}
        with _started(app, cpu, log, env) as started:
            yield started


@contextlib.contextmanager
def _started(app: str, cpu: int, log: Path, env: dict[str, str]) -> Iterator[tuple[int, int]]:
    port = _free_port()
    argv = ["taskset", "-c", str(cpu), *(a.format(port=port) for a in APPS[app])]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, cwd=CWD[app], env={**env, "PYTHONPATH": str(CWD[app])}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    with PIDFILE.open("a") as f:
        f.write(f"{proc.pid}\n")
    try:
        deadline = time.monotonic() + 30
        while not _healthy(port):
            if proc.poll() is not None:
                raise SystemExit(f"{app} exited with {proc.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{app} not healthy after 30 s; see {log}")
            time.sleep(0.1)
        yield port, proc.pid  # taskset execs the app, so this is the app's own pid
    finally:
        _stop(proc)
        kept = [line for line in PIDFILE.read_text().splitlines() if line != str(proc.pid)]
        PIDFILE.write_text("".join(f"{line}\n" for line in kept))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core_busy_seconds(cpu: int) -> float:
    """CPU time core ``cpu`` has spent busy (any process, any mode but idle and iowait) since boot."""
    for line in Path("/proc/stat").read_text().splitlines():
        name, *ticks = line.split()
        if name == f"cpu{cpu}":
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(t) for t in ticks[:8])
            return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    raise ValueError(f"no cpu{cpu} in /proc/stat")
