"""A request's head is bounded (64 KiB) whichever HTTP parser serves it: httptools (the default) by
``http_parser.py``, h11 (the fallback where httptools is not installed) by its own option. Both refuse a head that is
still incomplete past the bound (a client sending headers without end) with a 400 and a closed connection; a normal
request with a large body in the same write is not mistaken for one."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from a2a_server.config import HEAD_LIMIT
from tests.conftest import ServerProcess, start_server, stop_server


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server on each parser: for h11, an ``httptools`` that fails to import comes first on the path, as on a
    platform without it (``cli._http_protocol`` then falls back to h11)."""
    tmp = tmp_path_factory.mktemp(f"head-{request.param}")
    env = {}
    if request.param == "h11":
        (tmp / "shadow" / "httptools").mkdir(parents=True)
        (tmp / "shadow" / "httptools" / "__init__.py").write_text('raise ImportError("not on this platform")\n')
        env["PYTHONPATH"] = str(tmp / "shadow")
    srv = start_server(tmp, env=env)
    yield srv
    stop_server(srv)


def _raw(port: int, request: bytes, piece: int = 0) -> bytes:
    """Send ``request`` (in pieces of ``piece`` bytes, 20 ms apart, if given) and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # the server may close before it has read it all
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for start in range(0, len(request), piece or len(request)):
                sock.sendall(request[start : start + (piece or len(request))])
                if piece:
                    time.sleep(0.02)
        data = b""
        try:
            while more := sock.recv(1 << 16):
                data += more
        except ConnectionResetError:
            pass
        return data


@pytest.mark.parametrize(("size", "piece"), [(HEAD_LIMIT + 32 * 1024, 8 * 1024), (4 * 1024 * 1024, 0)])
def test_a_head_past_the_limit_is_refused_and_the_connection_closed(
    server: ServerProcess, size: int, piece: int
) -> None:
    """Headers that keep coming, in 8 KiB pieces; and 4 MiB of them at once."""
    answer = _raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size, piece)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert httpx.get(server.url + "/healthz").status_code == 200  # the server is fine


def test_a_head_just_under_the_limit_and_a_big_body_in_one_write_are_served(server: ServerProcess) -> None:
    big = b"a" * (HEAD_LIMIT - 1024)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + big + b"\r\n\r\n"
    assert _raw(server.port, head).startswith(b"HTTP/1.1 200")
    body = b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"' + b"x" * 500_000 + b'"}}'
    request = (
        b"POST /a2a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nA2A-Version: 1.0\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    answer = _raw(server.port, request)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert b"-32001" in answer  # the task is not found: the request was read whole and answered
