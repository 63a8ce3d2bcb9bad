"""A client that stops reading holds its stream for ``send_timeout`` at most (``http/sse.py``'s one timer per stream).

The stalled client is a raw socket with a small receive buffer that asks for a long stream and never reads;
the server's own socket buffers fill, its send to that client blocks, and the timer ends the send and the
response. The task is not the client's to stop: it runs to completion, and a reading client sees all of it.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from pathlib import Path

import httpx

from tests.conftest import start_server, stop_server
from tests.e2e.wire import V10_HEADERS, call, rpc, send10

SEND_TIMEOUT = 1.0


def _open_streams(metrics: str) -> float:
    found = re.search(r"^a2a_streams_open (\S+)$", metrics, re.M)
    assert found, "no a2a_streams_open gauge in /metrics"
    return float(found.group(1))


def _stalled(port: int, body: bytes) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"POST /a2a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nA2A-Version: 1.0\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return sock


async def test_a_client_that_stops_reading_is_cut_after_send_timeout(tmp_path: Path) -> None:
    srv = start_server(
        tmp_path, "--store", "memory", "--keepalive-seconds", "1", env={"A2A_SEND_TIMEOUT": str(SEND_TIMEOUT)}
    )
    # ~20 MB of frames: more than every buffer between the server and a client that does not read
    text = " ".join(f"w{i:07d}" for i in range(60_000))
    params = send10(text)
    params["message"]["contextId"] = "stalled"
    sock = await asyncio.to_thread(
        _stalled, srv.port, json.dumps(rpc("SendStreamingMessage", params)).encode()
    )
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            # the stream opens (1 stream), blocks on the client, and is ended by the send timeout (0 streams)
            opened = closed = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and closed is None:
                count = _open_streams((await http.get(srv.url + "/metrics")).text)
                now = time.monotonic()
                if count >= 1 and opened is None:
                    opened = now
                if count == 0 and opened is not None:
                    closed = now
                await asyncio.sleep(0.1)
            assert opened is not None, "the stalled client's stream never opened"
            assert closed is not None, "the stream to a client that never reads was still open after 60 s"
            # the server closed the connection: what the client can still read ends, without the stream's end
            got = await asyncio.to_thread(_drain, sock)
            assert got.startswith(b"HTTP/1.1 200"), got[:200]
            assert not got.endswith(b"0\r\n\r\n"), "the response was completed, not cut"
            # the task itself runs to completion, whatever its reader did
            for _ in range(600):
                listed = await call(http, srv.url + "/a2a", rpc("ListTasks", {"contextId": "stalled"}), V10_HEADERS)
                states = [t["status"]["state"] for t in listed["result"]["tasks"]]
                if states != ["TASK_STATE_WORKING"]:
                    break
                await asyncio.sleep(0.1)
            assert states == ["TASK_STATE_COMPLETED"], states
    finally:
        sock.close()
        stop_server(srv)
    log = srv.log()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    assert "read nothing for 1 s" in log, log[-3000:]


def _drain(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while more := sock.recv(1 << 16):
        data += more
    return data
