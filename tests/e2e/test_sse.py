"""SSE on the wire, read as raw bytes from a real server: framing, ids, keepalive, closing, resuming, fan-out.

What a client relies on (A2A-PROTOCOL.md §1.6, §4): each event frame carries an ``id:`` that
counts the task's events (``n``, or ``<task id>:n``) and ends with a blank line; idle streams get keepalive
comments; the stream closes right after the terminal event; a dropped client resumes with
``Last-Event-ID`` without gaps or duplicates; every subscriber of a task sees the same events in
the same order; a subscriber that stops reading slows nobody else and, once it reads, gets the rest from the log.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, start_server, stop_server
from tests.e2e.wire import (
    JSON,
    JSON_HEADERS,
    V10_HEADERS,
    Frame,
    SSEParser,
    Stream,
    StreamReader,
    call,
    event_seq,
    open_stream,
    read_stream,
    rpc,
    send01,
    send03,
    send10,
    uid,
    wait_for_state,
)

# 1.0 streams close on a terminal or an interrupted state
SETTLED_10 = {
    "TASK_STATE_COMPLETED",
    "TASK_STATE_FAILED",
    "TASK_STATE_CANCELED",
    "TASK_STATE_REJECTED",
    "TASK_STATE_INPUT_REQUIRED",
    "TASK_STATE_AUTH_REQUIRED",
}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as c:
        yield c


def event_ids(stream: Stream) -> list[int]:
    return [event_seq(frame) for frame in stream.events]


def assert_strictly_increasing(ids: list[int]) -> None:
    assert all(a < b for a, b in itertools.pairwise(ids)), f"SSE ids are not strictly increasing: {ids}"


def assert_sse_headers(headers: httpx.Headers) -> None:
    assert headers["content-type"].split(";")[0] == "text/event-stream", headers
    assert headers["cache-control"] == "no-cache", headers
    assert headers["x-accel-buffering"] == "no", headers


def assert_frames_end_with_blank_lines(stream: Stream) -> None:
    for frame in stream.frames:
        assert frame.raw.endswith(("\r\n\r\n", "\n\n", "\r\r")), f"a frame without its blank line: {frame.raw!r}"
    assert stream.tail == "", f"the server closed in the middle of a frame: {stream.tail!r}"


def settles(version: str, result: JSON) -> bool:
    """Whether ``result`` is the event after which a stream of ``version`` must close."""
    if version == "1.0":
        state = result.get("statusUpdate", {}).get("status", {}).get("state")
        return state in SETTLED_10 or "message" in result
    return result.get("final") is True


async def assert_closes_after(reader: StreamReader, version: str) -> None:
    """Read up to the stream's closing event and expect the response to end right after it (before a keepalive)."""
    deadline = time.monotonic() + 10
    while True:
        frame = await reader.next_event(max(deadline - time.monotonic(), 0.01))
        assert frame is not None, "the stream ended before its terminal event"
        if settles(version, frame.result):
            break
    try:
        after = await reader.next_frame(0.9)  # the keepalive interval is 1 s
    except TimeoutError:
        raise AssertionError("the stream stayed open after its terminal event") from None
    assert after is None, f"the server sent more after the terminal event: {after.raw!r}"


def find_key(obj: Any, key: str) -> bool:
    if isinstance(obj, dict):
        return key in obj or any(find_key(v, key) for v in obj.values())
    if isinstance(obj, list):
        return any(find_key(v, key) for v in obj)
    return False


# ------------------------------------------------------------------------------- framing


# name → (path, generation, method, params builder)
STREAMS: dict[str, tuple[str, str, str, Callable[[str], JSON]]] = {
    "0.1 tasks/sendSubscribe": ("/a2a", "0.1", "tasks/sendSubscribe", send01),
    "0.1 tasks/send on /a2a/stream": ("/a2a/stream", "0.1", "tasks/send", send01),
    "0.3 message/stream": ("/a2a", "0.3", "message/stream", send03),
    "0.3 message/send on /a2a/stream": ("/a2a/stream", "0.3", "message/send", send03),
    "1.0 SendStreamingMessage": ("/a2a", "1.0", "SendStreamingMessage", send10),
    "1.0 SendMessage on /a2a/stream": ("/a2a/stream", "1.0", "SendMessage", send10),
}


@pytest.mark.parametrize("name", list(STREAMS))
async def test_framing_ids_headers_and_close(http: httpx.AsyncClient, server: ServerProcess, name: str) -> None:
    path, version, method, params = STREAMS[name]
    body = rpc(method, params("frames on the wire"))
    headers = V10_HEADERS if version == "1.0" else JSON_HEADERS
    async with asyncio.timeout(10), open_stream(http, server.url + path, body, headers) as reader:
        assert reader.response.status_code == 200
        assert_sse_headers(reader.response.headers)
        await assert_closes_after(reader, version)
        stream = reader.result()
    assert_frames_end_with_blank_lines(stream)
    ids = event_ids(stream)
    # a new task's events are numbered from 1, one number per event
    assert ids == list(range(1, len(ids) + 1)), ids
    for frame in stream.events:
        assert len(frame.data_lines) == 1, f"one JSON-RPC response per data line: {frame.raw!r}"
        envelope = frame.json()
        assert envelope["jsonrpc"] == "2.0" and envelope["id"] == body["id"], envelope
        assert "result" in envelope, envelope


async def test_ids_are_per_task(http: httpx.AsyncClient, server: ServerProcess) -> None:
    """Two tasks streamed at once each count their own events from 1."""
    url = server.url + "/a2a"
    a, b = await asyncio.gather(
        read_stream(http, url, rpc("message/stream", send03("first task here", delay_ms=20))),
        read_stream(http, url, rpc("message/stream", send03("second task", delay_ms=20))),
    )
    assert event_ids(a) == list(range(1, len(a.events) + 1))
    assert event_ids(b) == list(range(1, len(b.events) + 1))


# ------------------------------------------------------------------------------- 1.0 shapes


async def test_v10_stream_results_are_stream_response_wrappers(http: httpx.AsyncClient, server: ServerProcess) -> None:
    text = "wrapped in stream responses"
    stream = await read_stream(http, server.url + "/a2a", rpc("SendStreamingMessage", send10(text)), V10_HEADERS)
    results = stream.results
    for result in results:
        assert len(result) == 1 and next(iter(result)) in {"task", "message", "statusUpdate", "artifactUpdate"}, result
        assert not find_key(result, "kind"), f"1.0 has no kind discriminators: {result}"
        assert not find_key(result, "final"), f"1.0 has no final flag: {result}"
    assert "task" in results[0], "a 1.0 stream starts with the Task"
    task = results[0]["task"]
    assert task["status"]["state"] == "TASK_STATE_SUBMITTED"
    assert [next(iter(r)) for r in results[1:]] == ["statusUpdate"] + ["artifactUpdate"] * 4 + ["statusUpdate"]
    assert results[1]["statusUpdate"]["status"]["state"] == "TASK_STATE_WORKING"
    assert results[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    updates = [r["artifactUpdate"] for r in results if "artifactUpdate" in r]
    assert all(u["taskId"] == task["id"] and u["contextId"] == task["contextId"] for u in updates)
    assert "".join(p["text"] for u in updates for p in u["artifact"]["parts"]) == text
    assert [u.get("append", False) for u in updates] == [False, True, True, True]
    assert [u.get("lastChunk", False) for u in updates] == [False, False, False, True]
    assert len({u["artifact"]["artifactId"] for u in updates}) == 1


async def test_v10_subscribe_starts_with_the_current_task(http: httpx.AsyncClient, server: ServerProcess) -> None:
    url = server.url + "/a2a"
    created = await call(
        http, url, rpc("SendMessage", send10("a b c d", return_immediately=True, delay_ms=100)), V10_HEADERS
    )
    task_id = created["result"]["task"]["id"]
    stream = await read_stream(http, url, rpc("SubscribeToTask", {"id": task_id}), V10_HEADERS)
    assert "task" in stream.results[0] and stream.results[0]["task"]["id"] == task_id, stream.results[0]
    assert stream.results[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert_strictly_increasing(event_ids(stream))
    # a terminal task cannot be subscribed to: a plain JSON-RPC error, not a stream
    response = await http.post(url, json=rpc("SubscribeToTask", {"id": task_id}), headers=V10_HEADERS)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == -32004


@pytest.mark.parametrize("version", ["0.3", "1.0"])
async def test_resubscribe_sends_the_current_task_at_once(
    http: httpx.AsyncClient, server: ServerProcess, version: str
) -> None:
    """The opening Task of a re-attached stream is not held back until the task's next event."""
    url = server.url + "/a2a"
    if version == "1.0":
        headers = V10_HEADERS
        create = rpc("SendMessage", send10("idle between words", return_immediately=True, delay_ms=4000))
        subscribe = "SubscribeToTask"
    else:
        headers = JSON_HEADERS
        create = rpc("message/send", send03("idle between words", blocking=False, delay_ms=4000))
        subscribe = "tasks/resubscribe"
    created = await call(http, url, create, headers)
    task_id = (created["result"].get("task") or created["result"])["id"]
    get = "GetTask" if version == "1.0" else "tasks/get"
    await wait_for_state(http, url, task_id, {"working", "TASK_STATE_WORKING"}, headers=headers, method=get)
    try:
        async with asyncio.timeout(10), open_stream(http, url, rpc(subscribe, {"id": task_id}), headers) as reader:
            started = time.monotonic()
            try:
                first = await reader.next_event(2)  # the next word comes 4 s after the task started
            except TimeoutError:
                raise AssertionError(f"{subscribe} sent nothing for 2 s on a working task") from None
            assert first is not None, "the stream ended without a single event"
            assert time.monotonic() - started < 1.0
            snapshot = first.result["task"] if version == "1.0" else first.result
            assert snapshot["id"] == task_id and "status" in snapshot, first.result
    finally:
        await call(http, url, rpc("CancelTask" if version == "1.0" else "tasks/cancel", {"id": task_id}), headers)


# ------------------------------------------------------------------------------- keepalive and cancel


async def test_keepalive_comments_on_an_idle_stream_and_cancel_ends_it(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    url = server.url + "/a2a"
    body = rpc("message/stream", send03("slow words", delay_ms=1500))
    async with asyncio.timeout(10), open_stream(http, url, body) as reader:
        task_id = None
        comment: Frame | None = None
        for _ in range(20):
            frame = await reader.next_frame(3)  # keepalive every 1 s; the first word waits 1.5 s
            assert frame is not None, "the stream ended early"
            if frame.is_comment:
                comment = frame
                break
            task_id = task_id or frame.result.get("id")
        assert comment is not None, "no keepalive comment within the first 20 frames"
        assert comment.raw.startswith(":"), comment.raw
        assert task_id is not None
        assert all(f.result["kind"] != "artifact-update" for f in reader.frames if not f.is_comment)

        canceled = await call(http, url, rpc("tasks/cancel", {"id": task_id}))
        assert canceled["result"]["status"]["state"] == "canceled", canceled
        await assert_closes_after(reader, "0.3")
        last = reader.result().events[-1].result
    assert last["kind"] == "status-update" and last["status"]["state"] == "canceled" and last["final"] is True, last


# ------------------------------------------------------------------------------- disconnect, then resume


@pytest.mark.parametrize("version", ["0.1", "0.3"])
async def test_disconnect_then_resubscribe_with_last_event_id(
    http: httpx.AsyncClient, server: ServerProcess, version: str
) -> None:
    url = server.url + "/a2a"
    text = "one two three four five six seven eight nine ten"
    if version == "0.1":
        task_id = uid()
        body = rpc("tasks/sendSubscribe", send01(text, task_id, delay_ms=120))
    else:
        task_id = ""
        body = rpc("message/stream", send03(text, delay_ms=120))

    seen: list[Frame] = []
    async with asyncio.timeout(10), open_stream(http, url, body) as reader:
        for _ in range(4):  # the opening task/status, working, two words
            frame = await reader.next_event(5)
            assert frame is not None
            seen.append(frame)
    # the connection is closed now; the task goes on without anyone listening
    if version == "0.3":
        task_id = seen[0].result["id"]
    last_seen = seen[-1].id or ""
    during = await call(http, url, rpc("tasks/get", {"id": task_id}))
    assert during["result"]["status"]["state"] == "working", during
    await asyncio.sleep(0.3)  # a few more words go by while nobody listens

    resumed = await read_stream(
        http, url, rpc("tasks/resubscribe", {"id": task_id}), {**JSON_HEADERS, "Last-Event-ID": last_seen}
    )
    assert resumed.status == 200
    assert_frames_end_with_blank_lines(resumed)
    ids = [event_seq(f) for f in seen] + event_ids(resumed)
    assert ids == list(range(1, len(ids) + 1)), f"a gap or a duplicate across the reconnect: {ids}"
    results = [f.result for f in seen] + resumed.results
    if version == "0.1":
        chunks = [p["text"] for r in results if "artifact" in r for p in r["artifact"]["parts"]]
    else:
        chunks = [p["text"] for r in results if r.get("kind") == "artifact-update" for p in r["artifact"]["parts"]]
    assert "".join(chunks) == text
    assert results[-1]["final"] is True and results[-1]["status"]["state"] == "completed"
    after = await call(http, url, rpc("tasks/get", {"id": task_id}))
    assert after["result"]["status"]["state"] == "completed"


# ------------------------------------------------------------------------------- fan-out


async def test_many_subscribers_see_the_same_events_in_the_same_order(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    url = server.url + "/a2a"
    text = "every subscriber sees the very same words in order"
    created = await call(
        http, url, rpc("SendMessage", send10(text, return_immediately=True, delay_ms=120)), V10_HEADERS
    )
    task_id = created["result"]["task"]["id"]
    streams = await asyncio.gather(
        *(read_stream(http, url, rpc("SubscribeToTask", {"id": task_id}), V10_HEADERS, timeout=10) for _ in range(5))
    )
    by_id: dict[int, JSON] = {}
    finals = set()
    for stream in streams:
        assert_sse_headers(stream.headers)
        assert_frames_end_with_blank_lines(stream)
        ids = event_ids(stream)
        snapshot, rest = stream.results[0], stream.results[1:]
        assert "task" in snapshot, snapshot
        # after the snapshot (whose id is the last event it includes), every later event, in order
        assert ids == list(range(ids[0], ids[0] + len(ids))), ids
        for event_id, result in zip(ids[1:], rest, strict=True):
            assert by_id.setdefault(event_id, result) == result, f"subscribers disagree on event {event_id}"
        finals.add(ids[-1])
        assert rest and rest[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
        # what the snapshot held plus what came after is the whole output, once
        before = "".join(p["text"] for a in snapshot["task"].get("artifacts", []) for p in a["parts"])
        after = "".join(
            p["text"] for r in rest if "artifactUpdate" in r for p in r["artifactUpdate"]["artifact"]["parts"]
        )
        assert before + after == text
    assert len(finals) == 1, f"the subscribers' streams ended at different events: {finals}"
    assert sum(1 for r in by_id.values() if "artifactUpdate" in r) >= 5, "the subscribers joined too late to compare"


# ------------------------------------------------------------------------------- a stalled subscriber


def _tcp_send_buffer_max() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


def _read_http_response(sock: socket.socket, deadline: float) -> tuple[bytes, bytes, bool]:
    """Head, de-chunked body, and whether the body was complete (the server ended the response)."""
    data = b""

    def need(n: int) -> bool:
        nonlocal data
        while len(data) < n:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                more = sock.recv(1 << 16)
            except (TimeoutError, OSError):
                return False
            if not more:
                return False
            data += more
        return True

    while b"\r\n\r\n" not in data:
        if not need(len(data) + 1):
            return data, b"", False
    head, _, data = data.partition(b"\r\n\r\n")
    body = bytearray()
    for _ in range(10_000_000):
        while b"\r\n" not in data:
            if not need(len(data) + 1):
                return head, bytes(body), False
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if not need(size + 2):
            return head, bytes(body), False
        body += data[:size]
        data = data[size + 2 :]
        if size == 0:
            return head, bytes(body), True
    return head, bytes(body), False


async def _stream_rate(reader: StreamReader) -> tuple[Stream, float]:
    """Read the rest of a 1.0 stream; artifact events per second between the first chunk and the end."""
    first_chunk_at = None
    for _ in range(10_000_000):
        frame = await reader.next_event(30)
        if frame is None:
            break
        if first_chunk_at is None and "artifactUpdate" in frame.result:
            first_chunk_at = time.monotonic()
    assert first_chunk_at is not None, "the stream carried no artifact chunks"
    stream = reader.result()
    chunks = sum(1 for r in stream.results if "artifactUpdate" in r)
    return stream, chunks / max(time.monotonic() - first_chunk_at, 1e-3)


BUFFER = 1024


async def test_a_stalled_subscriber_reads_on_from_the_log_without_slowing_the_others(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A client that stops reading fills its buffers and loses its live buffer; the task and the other subscriber
    go on. Issue 11 (slow readers): its stream is not ended for it (it was, and the client had to resume with
    Last-Event-ID): once it reads again it gets every event once, in order, read back from the log.

    Its own server with the memory store: the subject is the bus, and the task is long (tens of
    thousands of events), which a per-event durable store would make slow.
    """
    # a subscriber buffer of 1024 events (the default is 8192) keeps the task that overflows it short
    srv = start_server(
        tmp_path, "--store", "memory", "--keepalive-seconds", "1", env={"A2A_SUBSCRIBER_BUFFER": str(BUFFER)}
    )
    url = srv.url + "/a2a"
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        async with asyncio.timeout(90):
            # the same kind of task with nobody stalled: its pace, and the size of one event on the wire
            baseline_body = rpc(
                "SendStreamingMessage", send10(" ".join(f"w{i:07d}" for i in range(2000)), delay_ms=0.01)
            )
            async with open_stream(http, url, baseline_body, V10_HEADERS, timeout=30) as reader:
                baseline, baseline_rate = await _stream_rate(reader)
            frame_bytes = max(len(f.raw.encode()) for f in baseline.events if "artifactUpdate" in f.result)
            # enough events to overflow every buffer on the way to a client that does not read: the
            # kernel's (the socket send buffer may grow to tcp_wmem max) and then the subscriber's own
            words = (_tcp_send_buffer_max() + 1024 * 1024) // frame_bytes + 2 * BUFFER
            text = " ".join(f"w{i:07d}" for i in range(words))

            body = rpc("SendStreamingMessage", send10(text, delay_ms=0.01))
            async with open_stream(http, url, body, V10_HEADERS, timeout=30) as reader:
                first = await reader.next_event(10)
                assert first is not None and "task" in first.result
                task_id = first.result["task"]["id"]

                # a client that asks for the task's stream and then never reads a byte
                request = json.dumps(rpc("SubscribeToTask", {"id": task_id})).encode()
                await asyncio.to_thread(stalled.connect, ("127.0.0.1", srv.port))
                stalled.sendall(
                    b"POST /a2a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nA2A-Version: 1.0\r\n"
                    + f"Content-Length: {len(request)}\r\n\r\n".encode()
                    + request
                )
                normal, rate = await _stream_rate(reader)

            # the reading subscriber got every event, in order, up to the completed status
            ids = event_ids(normal)
            assert ids == list(range(1, len(ids) + 1)), "the reading subscriber lost events"
            results = normal.results
            assert results[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED", results[-1]
            chunks = [
                p["text"] for r in results if "artifactUpdate" in r for p in r["artifactUpdate"]["artifact"]["parts"]
            ]
            assert len(chunks) == words and "".join(chunks) == text
            # ... at a pace the stalled client did not hold back (it only costs the server one more socket write
            # per event until it is dropped)
            assert rate > baseline_rate / 3, (
                f"{rate:.0f} events/s with a stalled subscriber, {baseline_rate:.0f} without"
            )
            # and the task finished while the stalled client still had not read anything
            got = await call(http, url, rpc("GetTask", {"id": task_id}), V10_HEADERS)
            assert got["result"]["status"]["state"] == "TASK_STATE_COMPLETED"

            # now read what the stalled client was sent: a truncated stream that the server ended
            head, stalled_body, complete = await asyncio.to_thread(_read_http_response, stalled, time.monotonic() + 15)
    finally:
        stalled.close()
        stop_server(srv)

    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"text/event-stream" in head.lower(), head
    assert complete, "the server never ended the stalled subscriber's response"
    frames = [f for f in SSEParser().feed(stalled_body) if not f.is_comment]
    assert frames and "task" in frames[0].result, "the stalled subscriber's stream did not open with the Task"
    stalled_ids = [event_seq(f) for f in frames]
    assert stalled_ids == list(range(stalled_ids[0], stalled_ids[0] + len(stalled_ids))), "the stalled stream has gaps"
    assert stalled_ids[-1] == ids[-1], "the stalled subscriber's stream ended before the task's last event"
    for frame in frames[1:]:
        assert frame.result == normal.events[event_seq(frame) - 1].result
