"""Issue 11, slow readers: a stream whose reader falls behind its buffer's bound still delivers every event once,
in order, over the real app (memory and SQLite stores).

Regression: a follower past its subscriber buffer's bound was dropped and its JSON-RPC stream ENDED (the client
had to resume with Last-Event-ID), so the bound had to be large (1 MiB a reader). Now the follower reads on from
the log. The server here has a 16 KiB byte bound (about eight one-word chunks) and a 4 KiB socket send buffer,
and the client reads nothing until the task has completed: the stream cannot have come from the live buffer.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.e2e.test_sse import _read_http_response
from tests.e2e.wire import SSEParser, event_seq, rpc, uid

WORDS = 3000


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_a_reader_behind_its_buffer_bound_gets_every_event_once_in_order(tmp_path: Path, store: str) -> None:
    env = {"A2A_SUBSCRIBER_BUFFER_BYTES": str(16 * 1024), "A2A_SEND_BUFFER_BYTES": "4096"}
    args = ("--store", "memory") if store == "memory" else ()
    srv = start_server(tmp_path, *args, env=env)
    context = uid()
    text = " ".join(f"w{i}" for i in range(WORDS))
    message = {"messageId": uid(), "role": "ROLE_USER", "parts": [{"text": text}], "contextId": context}
    request = json.dumps(rpc("SendStreamingMessage", {"message": message})).encode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        await asyncio.to_thread(sock.connect, ("127.0.0.1", srv.port))
        sock.sendall(
            b"POST /a2a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nA2A-Version: 1.0\r\n"
            + f"Content-Length: {len(request)}\r\n\r\n".encode()
            + request
        )
        # the task runs to its end while the client reads nothing
        async with httpx.AsyncClient(base_url=srv.url, timeout=10) as http, asyncio.timeout(60):
            while True:
                page = (await http.get("/a2a/rest/tasks", params={"contextId": context},
                                       headers={"A2A-Version": "1.0"})).json()  # fmt: skip
                tasks = page.get("tasks", [])
                if tasks and tasks[0]["status"]["state"] == "TASK_STATE_COMPLETED":
                    break
                await asyncio.sleep(0.1)
        head, body, complete = await asyncio.to_thread(_read_http_response, sock, time.monotonic() + 30)
    finally:
        sock.close()
        stop_server(srv)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert complete, "the server did not end the stream after the task's last event"
    frames = [f for f in SSEParser().feed(body) if not f.is_comment]
    assert "task" in frames[0].result
    ids = [event_seq(f) for f in frames[1:]]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "the stream has gaps or repeats"
    updates = [f.result["artifactUpdate"] for f in frames if "artifactUpdate" in f.result]
    chunks = [p["text"] for u in updates for p in u["artifact"]["parts"]]
    # the echo skill sends one chunk a word, whose text adds up to the input exactly
    assert len(chunks) == WORDS and "".join(chunks) == text, "chunks lost, repeated or reordered"
    assert frames[-1].result["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
