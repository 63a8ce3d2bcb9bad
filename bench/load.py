"""Shared by bench/slow_readers.py, bench/soak.py and their bounded CI versions (tests/e2e/test_load.py).

A real server process on a free loopback port with the per-caller limits off (the load comes from one
address), its RSS and open descriptors read from /proc, clients that stall (raw sockets that send a
request and never read) and clients that read (httpx streams).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# one client address makes all the load: the per-caller limits would refuse most of it (README "Security")
NO_LIMITS = ["--rate-limit", "0", "--max-running-tasks", "0", "--max-streams", "0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    workdir: tempfile.TemporaryDirectory[str] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def rss(self) -> int:
        """Resident set size in bytes (VmRSS)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.workdir.cleanup()


def start(*args: str, env: dict[str, str] | None = None, store: str = "sqlite") -> Server:
    """``python -m a2a_server serve --skills echo`` with the limits off, a fresh store, waited for /healthz."""
    port = free_port()
    workdir = tempfile.TemporaryDirectory(prefix="a2a-load-")
    log = Path(workdir.name) / "server.log"
    url = "memory" if store == "memory" else f"sqlite://{workdir.name}/tasks.db"
    cmd = [sys.executable, "-m", "a2a_server", "serve", "--host", HOST, "--port", str(port), "--skills", "echo",
           "--store", url, *NO_LIMITS, *args]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})})
    server = Server(port, proc, log, workdir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("server did not answer /healthz within 30 s")


class RssSampler:
    """Samples the server's RSS every ``period`` seconds in a thread: peak and the samples themselves."""

    def __init__(self, server: Server, period: float = 0.1) -> None:
        self.server = server
        self.period = period
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic() - t0, self.server.rss()))
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.period)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int:
        return max(r for _, r in self.samples)


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def rpc(method: str, params: dict[str, Any], rid: int | str = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


def message(text: str, context: str, **configuration: Any) -> dict[str, Any]:
    """1.0 SendMessage params."""
    msg = {"messageId": os.urandom(8).hex(), "role": "ROLE_USER", "parts": [{"text": text}], "contextId": context}
    params: dict[str, Any] = {"message": msg}
    if configuration:
        params["configuration"] = configuration
    return params


HEADERS = {"A2A-Version": "1.0", "Content-Type": "application/json"}


def stalled_stream(port: int, body: dict[str, Any], rcvbuf: int = 4096) -> socket.socket:
    """A client that asks for a stream and never reads a byte (a small receive buffer, as a stuck phone's)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((HOST, port))
    raw = json.dumps(body).encode()
    sock.sendall(
        b"POST /a2a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nA2A-Version: 1.0\r\n"
        + f"Content-Length: {len(raw)}\r\n\r\n".encode()
        + raw
    )
    return sock


def list_context(client: httpx.Client, base: str, context: str) -> list[dict[str, Any]]:
    """Every task of one context (REST ListTasks, pages of 100)."""
    tasks: list[dict[str, Any]] = []
    token = ""
    for _ in range(1000):
        params = {"contextId": context, "pageSize": "100"} | ({"pageToken": token} if token else {})
        r = client.get(base + "/a2a/rest/tasks", params=params, headers={"A2A-Version": "1.0"})
        r.raise_for_status()
        page = r.json()
        tasks += page.get("tasks", [])
        token = page.get("nextPageToken") or ""
        if not token:
            break
    return tasks
