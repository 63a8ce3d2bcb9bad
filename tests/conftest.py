"""Shared fixtures: the real ASGI app in-process, and a real server process on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from starlette.applications import Starlette

from a2a_server import Settings, create_app
from tests.redis_server import RedisServer

if TYPE_CHECKING:
    from tests.consumers.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def app() -> AsyncIterator[Starlette]:
    application = create_app(Settings(skills=["echo", "conformance"], cancel_grace=1.0, store="memory"))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client bound to the in-process app (responses are read whole)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


@dataclass
class ServerProcess:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, skills: str = "echo,conformance"
) -> ServerProcess:
    """Start ``python -m a2a_server serve`` on a free loopback port and wait for /healthz."""
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    if "--store" not in args:  # each server gets its own SQLite file, never the user's default
        args = (*args, "--store", f"sqlite://{tmp_path / f'tasks-{port}.db'}")
    cmd = [
        sys.executable,
        "-m",
        "a2a_server",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--skills",
        skills,
        *args,
    ]
    with log_path.open("wb") as log_file:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=ROOT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return ServerProcess(url, port, proc, log_path)
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not answer /healthz within 30 s:\n{log_path.read_text()}")


def stop_server(server: ServerProcess) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server process (echo + conformance, 1 s keepalive) shared by the end-to-end tests. Webhooks may call
    127.0.0.1 (the push tests' receivers; a hook on a closed loopback port just retries, never leaves the host)."""
    srv = start_server(tmp_path_factory.mktemp("server"), "--keepalive-seconds", "1", "--push-allow", "127.0.0.1")
    yield srv
    stop_server(srv)


# ---------------------------------------------------------------- Redis (issue 10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, in this test's tmp dir (AOF on); stopped after."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the tests that keep apart by key prefix (the contract suites)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on loopback that verifies every signature (the push tests, in-process and e2e)."""
    from tests.consumers.receiver import SECRET, Receiver  # it imports free_port from here

    r = Receiver(secrets={SECRET})
    await r.start()
    yield r
    await r.stop()
