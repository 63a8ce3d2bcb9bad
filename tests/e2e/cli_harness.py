"""Running the ``a2a-server`` console script as a user would, for tests/e2e/test_cli_client.py and tests/a2a_client.

``run_cli`` runs a command to its end; ``Running`` keeps one going and stamps each piece of its
stdout with the time it arrived; ``on_terminal`` runs one on a pseudo-terminal; ``DroppingProxy``
relays TCP to a server and cuts the first event stream, to prove that the client resumes. Every
wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

from tests.conftest import ROOT

TIMEOUT = 30.0
_SCRIPT = Path(sys.executable).parent / "a2a-server"
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "a2a_server"]


def run_cli(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


class Running:
    """A CLI process whose stdout is read as it comes, each piece stamped with its arrival time."""

    alive: ClassVar[list[Running]] = []

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        Running.alive.append(self)
        self.pieces: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := os.read(self.proc.stdout.fileno(), 4096):
            self.pieces.append((time.monotonic(), chunk.decode(errors="replace")))

    @property
    def out(self) -> str:
        return "".join(text for _, text in self.pieces)

    def wait_for(self, text: str, timeout: float = TIMEOUT) -> float:
        """When ``text`` had arrived on stdout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = ""
            for at, piece in list(self.pieces):
                seen += piece
                if text in seen:
                    return at
            time.sleep(0.01)
        self.proc.kill()
        raise AssertionError(f"{text!r} not on stdout within {timeout} s; got {self.out!r}")

    def interrupt(self) -> None:
        """Ctrl-C, as a terminal sends it."""
        self.proc.send_signal(signal.SIGINT)

    def task_id(self) -> str:
        self.wait_for("\n")
        first = self.out.splitlines()[0]
        assert first.startswith("task: "), first
        return first.removeprefix("task: ")

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self.proc.kill()  # a no-op once it exited
            Running.alive.remove(self)
        self._reader.join(timeout=5)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        stderr = self.proc.stderr.read().decode()
        for pipe in (self.proc.stdout, self.proc.stderr):
            pipe.close()
        return code, self.out, stderr


def on_terminal(*args: str, interrupt_after: bytes | None = None, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """Run a command with a pseudo-terminal as stdin, stdout and stderr: its exit code and all it wrote.

    With ``interrupt_after`` the command gets a SIGINT once those bytes have appeared (a command that
    runs until Ctrl-C).
    """
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([*CLI, *args], stdin=secondary, stdout=secondary, stderr=secondary, cwd=ROOT)
    os.close(secondary)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([primary], [], [], left)[0]:
                break
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
            if interrupt_after is not None and interrupt_after in out:
                interrupt_after = None
                proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=TIMEOUT), out
    finally:
        proc.kill()  # a no-op once it exited
        os.close(primary)


class DroppingProxy:
    """Relays TCP to the server, and cuts the first event-stream response after a few events."""

    def __init__(self, port: int, cut_after_events: int = 3) -> None:
        self.upstream, self.cut_after = port, cut_after_events
        self.requests: list[bytes] = []
        self.cuts = 0
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        for sock in [self._listener, *self._sockets]:
            sock.close()  # the relay threads see OSError and end

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the listener was closed
            while True:
                client, _ = self._listener.accept()
                server = socket.create_connection(("127.0.0.1", self.upstream))
                self._sockets += [client, server]
                threading.Thread(target=self._relay, args=(client, server, True), daemon=True).start()
                threading.Thread(target=self._relay, args=(server, client, False), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        events, sse = 0, False
        with contextlib.suppress(OSError):  # the other direction closed both sockets
            while data := source.recv(65536):
                sink.sendall(data)
                if upstream:
                    self.requests.append(data)
                    continue
                sse = sse or b"text/event-stream" in data
                events += data.count(b"data:") if sse else 0
                if events >= self.cut_after and self.cuts == 0:
                    self.cuts += 1
                    for sock in (source, sink):
                        sock.shutdown(socket.SHUT_RDWR)
                        sock.close()
