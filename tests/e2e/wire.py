"""Raw-wire helpers for the end-to-end tests: JSON-RPC request builders and an SSE frame parser.

The tests talk to the server with plain httpx (no A2A client library) so that what they check is
exactly what goes over the socket. Every network wait here is bounded: a server bug must fail a
test, never hang CI.
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft7Validator  # type: ignore[import-untyped]  # no stubs in the dev extra

JSON = dict[str, Any]

JSON_HEADERS = {"Content-Type": "application/json"}
V10_HEADERS = {**JSON_HEADERS, "A2A-Version": "1.0"}

_ids = itertools.count(1)


def uid() -> str:
    return uuid.uuid4().hex


# --------------------------------------------------------------------------- JSON-RPC builders


def rpc(method: str, params: Any = None, request_id: Any = "auto") -> JSON:
    """A JSON-RPC 2.0 request; ``request_id=None`` leaves the id out (a notification)."""
    body: JSON = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        body["params"] = params
    if request_id == "auto":
        body["id"] = next(_ids)
    elif request_id is not None:
        body["id"] = request_id
    return body


def send01(text: str, task_id: str | None = None, *, session_id: str | None = None, **metadata: Any) -> JSON:
    """``TaskSendParams`` of v0.1 (the client chooses the task id)."""
    params: JSON = {
        "id": task_id or uid(),
        "message": {"role": "user", "parts": [{"type": "text", "text": text}]},
    }
    if session_id is not None:
        params["sessionId"] = session_id
    if metadata:
        params["metadata"] = metadata
    return params


def send03(text: str, *, message_id: str | None = None, blocking: bool | None = None, **metadata: Any) -> JSON:
    """``MessageSendParams`` of v0.3."""
    params: JSON = {
        "message": {
            "kind": "message",
            "messageId": message_id or uid(),
            "role": "user",
            "parts": [{"kind": "text", "text": text}],
        }
    }
    if blocking is not None:
        params["configuration"] = {"blocking": blocking}
    if metadata:
        params["metadata"] = metadata
    return params


def send10(
    text: str, *, message_id: str | None = None, return_immediately: bool | None = None, **metadata: Any
) -> JSON:
    """``SendMessageRequest`` of v1.0 (ProtoJSON)."""
    params: JSON = {"message": {"messageId": message_id or uid(), "role": "ROLE_USER", "parts": [{"text": text}]}}
    if return_immediately is not None:
        params["configuration"] = {"returnImmediately": return_immediately}
    if metadata:
        params["metadata"] = metadata
    return params


# --------------------------------------------------------------------------- SSE framing


@dataclass
class Frame:
    """One SSE event block as it came off the wire (the text up to and including its blank line)."""

    raw: str
    id: str | None = None
    event: str | None = None
    data_lines: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def is_comment(self) -> bool:
        return not self.data_lines and self.id is None and self.event is None

    @property
    def data(self) -> str:
        return "\n".join(self.data_lines)

    def json(self) -> Any:
        return json.loads(self.data)

    @cached_property
    def result(self) -> Any:
        return self.json()["result"]


class SSEParser:
    """Incremental parser over raw bytes; a frame is emitted only once its blank line has arrived.

    Lines end with CRLF, LF or CR (the SSE grammar). ``pending`` is the text received after the
    last blank line: when the stream closes, anything there is a frame that never got its end.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buf = ""  # text not yet split into lines
        self._block = ""  # raw text of the complete lines of the current frame

    @property
    def pending(self) -> str:
        return self._block + self._buf

    def feed(self, chunk: bytes) -> list[Frame]:
        self._buf += self._decoder.decode(chunk)
        frames: list[Frame] = []
        pos = 0
        while (m := _EOL.search(self._buf, pos)) is not None:
            if m.group() == "\r" and m.end() == len(self._buf):
                break  # may be the first half of a CRLF split across chunks
            line = self._buf[pos : m.start()]
            self._block += self._buf[pos : m.end()]
            pos = m.end()
            if not line:
                frames.append(_parse_block(self._block))
                self._block = ""
        self._buf = self._buf[pos:]
        return frames


_EOL = re.compile(r"\r\n|\r|\n")


def _parse_block(raw: str) -> Frame:
    frame = Frame(raw=raw)
    for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            continue
        if line.startswith(":"):
            frame.comments.append(line[1:].lstrip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            frame.data_lines.append(value)
        elif name == "id":
            frame.id = value
        elif name == "event":
            frame.event = value
    return frame


@dataclass
class Stream:
    """A whole SSE response read to its end: headers, every frame, and how it ended."""

    status: int
    headers: httpx.Headers
    frames: list[Frame]
    # text after the last blank line when the server closed (must be empty)
    tail: str

    @cached_property
    def events(self) -> list[Frame]:
        """The data frames (keepalive comments left out)."""
        return [f for f in self.frames if not f.is_comment]

    @cached_property
    def results(self) -> list[Any]:
        return [f.result for f in self.events]


class StreamReader:
    """Reads one open streaming response frame by frame, every read bounded by ``timeout``."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.parser = SSEParser()
        self.frames: list[Frame] = []
        self.closed = False
        self._chunks = response.aiter_raw()
        self._ready: list[Frame] = []

    async def next_frame(self, timeout: float) -> Frame | None:
        """The next frame (comment or data), or None once the server closed the stream."""
        async with asyncio.timeout(timeout):
            while not self._ready:
                if self.closed:
                    return None
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    self.closed = True
                    return None
                self._ready.extend(self.parser.feed(chunk))
        frame = self._ready.pop(0)
        self.frames.append(frame)
        return frame

    async def next_event(self, timeout: float) -> Frame | None:
        """The next data frame, skipping keepalive comments; None at the end of the stream."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next_frame(max(deadline - time.monotonic(), 0.001))
            if frame is None or not frame.is_comment:
                return frame

    async def rest(self, timeout: float) -> Stream:
        """Read to the end of the stream (within ``timeout`` seconds overall)."""
        deadline = time.monotonic() + timeout
        for _ in range(1_000_000):
            if await self.next_frame(max(deadline - time.monotonic(), 0.001)) is None:
                break
        return self.result()

    def result(self) -> Stream:
        """What was read so far (the whole stream once ``next_frame`` returned None)."""
        return Stream(self.response.status_code, self.response.headers, list(self.frames), self.parser.pending)


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str] | None = None, *, timeout: float = 10.0
) -> AsyncIterator[StreamReader]:
    """POST ``body`` and give a reader over the streaming response; the response is closed on exit."""
    request = client.build_request("POST", url, json=body, headers=headers or JSON_HEADERS, timeout=timeout)
    response = await asyncio.wait_for(client.send(request, stream=True), timeout)
    try:
        yield StreamReader(response)
    finally:
        await response.aclose()


async def read_stream(
    client: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str] | None = None, *, timeout: float = 10.0
) -> Stream:
    """POST ``body`` and read the SSE response to its end, within ``timeout`` seconds."""
    async with asyncio.timeout(timeout + 1), open_stream(client, url, body, headers, timeout=timeout) as reader:
        return await reader.rest(timeout)


# --------------------------------------------------------------------------- small conveniences


async def call(client: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str] | None = None) -> JSON:
    """POST one JSON-RPC request and return the decoded (non-streaming) response."""
    response = await client.post(url, json=body, headers=headers or JSON_HEADERS, timeout=10)
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    answer: JSON = response.json()
    return answer


async def wait_for_state(
    client: httpx.AsyncClient,
    url: str,
    task_id: str,
    states: set[str],
    *,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
    method: str = "tasks/get",
) -> JSON:
    """Poll ``tasks/get`` (or ``GetTask``) until the task's state is one of ``states``; return the task."""
    deadline = time.monotonic() + timeout
    last: JSON = {}
    while time.monotonic() < deadline:
        last = await call(client, url, rpc(method, {"id": task_id}), headers)
        if last.get("result", {}).get("status", {}).get("state") in states:
            return last["result"]  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not reach {states} within {timeout} s; last answer: {last}")


# --------------------------------------------------------------------------- JSON schemas of 0.1 and 0.3

# the published schemas, vendored in tests/spec (see its README); A2A_SPEC_DIR overrides
SPEC_DIR = Path(os.environ.get("A2A_SPEC_DIR") or Path(__file__).resolve().parents[1] / "spec")
SCHEMA_FILES = {"0.1": "a2a-v0.1.0.json", "0.3": "a2a-v0.3.0.json"}


@cache
def _schema(version: str) -> tuple[JSON, str]:
    schema: JSON = json.loads((SPEC_DIR / SCHEMA_FILES[version]).read_text())
    prefix = "#/$defs/" if "$defs" in schema else "#/definitions/"
    return schema, prefix


def schema_errors(version: str, definition: str, instance: Any) -> list[str]:
    """Every way ``instance`` breaks ``definition`` of the A2A JSON schema of ``version`` ("0.1" or "0.3")."""
    schema, prefix = _schema(version)
    defs = schema.get("$defs") or schema["definitions"]
    assert definition in defs, f"{definition} is not a definition of the {version} schema"
    # draft-07: keywords beside a root $ref are ignored, so the root *is* the definition and
    # JSON pointers into the definitions still resolve against this document
    validator = Draft7Validator({**schema, "$ref": prefix + definition}, format_checker=Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(instance)]


def assert_schema(version: str, definition: str, instance: Any) -> None:
    errors = schema_errors(version, definition, instance)
    assert not errors, (
        f"not a valid {version} {definition}:\n  " + "\n  ".join(errors) + f"\ninstance: {json.dumps(instance)[:2000]}"
    )


# --------------------------------------------------------------------------- event ids


def task_id_of(result: JSON) -> str | None:
    """The task a stream result belongs to, in any generation's shape."""
    for key in ("task", "statusUpdate", "artifactUpdate", "message"):  # 1.0 StreamResponse wrappers
        if isinstance(result.get(key), dict):
            inner = result[key]
            return inner.get("taskId") or (inner.get("id") if key == "task" else None)
    if result.get("kind") in ("status-update", "artifact-update", "message"):
        return result.get("taskId")
    return result.get("id")  # a 0.1 event, or a 0.3 Task


def event_seq(frame: Frame) -> int:
    """The per-task event number of a frame's SSE ``id:``: ``n``, or ``<task id>:n`` naming the frame's own task."""
    assert frame.id is not None, f"an event frame without an id: {frame.raw!r}"
    owner, sep, number = frame.id.rpartition(":")
    if sep:
        assert owner == task_id_of(frame.result), f"SSE id {frame.id!r} names another task than its event: {frame.data}"
    assert number.isdigit(), f"the SSE id does not end in a non-negative integer: {frame.id!r}"
    return int(number)


def result_frames(response: httpx.Response) -> Iterator[tuple[str, JSON]]:
    """(SSE id, JSON-RPC result) of each frame of a blocking ``httpx`` stream, as it arrives (an error frame fails)."""
    event_id, data = "", ""
    for line in response.iter_lines():
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line == "" and data:
            body = json.loads(data)
            assert "result" in body, body
            yield event_id, body["result"]
            event_id, data = "", ""


def id_seq(event_id: str) -> int:
    """The per-task event number of an SSE id ``<task id>:n``."""
    return int(event_id.rpartition(":")[2])
