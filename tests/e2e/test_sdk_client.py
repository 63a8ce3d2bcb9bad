"""The official A2A Python SDK client (a2a-sdk 1.3.0) drives the real server over loopback.

Each test runs three times: over the SDK's 1.0 JSON-RPC transport (card fetched with ``A2A-Version: 1.0``),
over its 0.3 transport (given the compat card) and over its 1.0 HTTP+JSON transport (the card's ``HTTP+JSON``
interface; the wire records ``<verb> <route>`` instead of a JSON-RPC method). An httpx request hook records
every JSON-RPC method and ``A2A-Version`` header the SDK sends, so each test also proves which wire generation
it exercised, not just that the SDK returned something.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import httpx
import pytest
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.client.card_resolver import parse_agent_card
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskNotCancelableError,
    TaskNotFoundError,
    TaskState,
    UnsupportedOperationError,
)
from a2a.utils.errors import JSON_RPC_ERROR_CODE_MAP

if TYPE_CHECKING:
    from tests.conftest import ServerProcess

# Every wait in this file is bounded: a server bug must fail a test, never hang CI.
TIMEOUT = 10.0

# The JSON-RPC method each SDK transport sends for each client call.
WIRE_METHODS = {
    "1.0": {
        "send": "SendMessage",
        "stream": "SendStreamingMessage",
        "get": "GetTask",
        "cancel": "CancelTask",
        "subscribe": "SubscribeToTask",
    },
    "0.3": {
        "send": "message/send",
        "stream": "message/stream",
        "get": "tasks/get",
        "cancel": "tasks/cancel",
        "subscribe": "tasks/resubscribe",
    },
    "rest": {
        "send": "POST /message:send",
        "stream": "POST /message:stream",
        "get": "GET /tasks/{id}",
        "cancel": "POST /tasks/{id}:cancel",
        "subscribe": "POST /tasks/{id}:subscribe",
    },
}
REST_BASE = "/a2a/rest"


@dataclass
class Sdk:
    """SDK clients bound to one transport, and the requests they put on the wire."""

    version: str  # "1.0" or "0.3": the protocol generation in use
    streaming: Client  # ClientConfig(streaming=True): send_message streams
    unary: Client  # ClientConfig(streaming=False): send_message is one blocking call
    wire: list[tuple[str, str | None]] = field(default_factory=list)  # (method, A2A-Version header)
    binding: str = "JSONRPC"  # or "HTTP+JSON"

    def method(self, call: str) -> str:
        return WIRE_METHODS["rest" if self.binding == "HTTP+JSON" else self.version][call]

    def spoke(self, *calls: str) -> list[tuple[str, str]]:
        """What ``wire`` must equal after ``calls``, in order."""
        return [(self.method(c), self.version) for c in calls]


async def _fetch_card(http: httpx.AsyncClient, url: str, version: str) -> dict[str, Any]:
    headers = {"A2A-Version": version}
    response = await http.get(url + "/.well-known/agent-card.json", headers=headers)
    assert response.status_code == 200, response.text
    card: dict[str, Any] = response.json()
    if version == "1.0":
        # the strict 1.0 card: interfaces only, no 0.3 connection keys
        assert not {"url", "protocolVersion", "preferredTransport"} & card.keys()
        interface_1_0 = {"protocolBinding": "JSONRPC", "protocolVersion": "1.0", "url": url + "/a2a"}
        assert interface_1_0 in card["supportedInterfaces"]
        rest = {"protocolBinding": "HTTP+JSON", "protocolVersion": "1.0", "url": url + REST_BASE}
        assert rest in card["supportedInterfaces"]
        return card
    assert card["protocolVersion"] == "0.3.0"
    assert card["url"] == url + "/a2a"
    assert card["preferredTransport"] == "JSONRPC"
    # asked for 0.3, the server serves a pure 0.3 card: the SDK derives its interface from ``url`` +
    # ``protocolVersion`` and uses its 0.3 transport (the no-header compat card also lists the 1.0
    # interface, which the SDK would prefer: test_compat_card_as_served_...)
    assert "supportedInterfaces" not in card
    return card


@pytest.fixture(params=["1.0", "0.3", "rest"], ids=["sdk-v1.0", "sdk-v0.3", "sdk-rest"])
async def sdk(request: pytest.FixtureRequest, server: ServerProcess) -> AsyncIterator[Sdk]:
    binding = "HTTP+JSON" if request.param == "rest" else "JSONRPC"
    version: str = "1.0" if request.param == "rest" else request.param
    wire: list[tuple[str, str | None]] = []

    async def record(req: httpx.Request) -> None:
        if req.url.path.startswith(REST_BASE):
            route = re.sub(r"/tasks/[^/:]+", "/tasks/{id}", req.url.path.removeprefix(REST_BASE))
            wire.append((f"{req.method} {route}", req.headers.get("a2a-version")))
        elif req.method == "POST":
            wire.append((json.loads(req.content)["method"], req.headers.get("a2a-version")))

    async with httpx.AsyncClient(timeout=TIMEOUT, event_hooks={"request": [record]}) as http:
        # fetched before ClientFactory runs: it sets a default ``A2A-Version: 1.0`` on the shared client
        card = parse_agent_card(await _fetch_card(http, server.url, version))
        bindings = [binding]
        streaming = ClientFactory(
            ClientConfig(httpx_client=http, streaming=True, supported_protocol_bindings=bindings)
        ).create(card)
        unary = ClientFactory(
            ClientConfig(httpx_client=http, streaming=False, supported_protocol_bindings=bindings)
        ).create(card)
        try:
            yield Sdk(version, streaming, unary, wire, binding)
        finally:
            await streaming.close()
            await unary.close()


def user_message(text: str, *, message_id: str | None = None, **metadata: Any) -> Message:
    message = Message(message_id=message_id or uuid4().hex, role=Role.ROLE_USER, parts=[Part(text=text)])
    if metadata:
        message.metadata.update(metadata)
    return message


def kind(ev: StreamResponse) -> str:
    return str(ev.WhichOneof("payload"))


def state_of(ev: StreamResponse) -> int:
    assert kind(ev) in ("task", "status_update"), f"{kind(ev)} has no state"
    return ev.task.status.state if kind(ev) == "task" else ev.status_update.status.state


def chunk_text(ev: StreamResponse) -> str:
    assert kind(ev) == "artifact_update", f"expected an artifact update, got {kind(ev)}"
    return "".join(p.text for p in ev.artifact_update.artifact.parts)


def artifact_text(task: Task) -> str:
    return "".join(p.text for a in task.artifacts for p in a.parts)


async def drain(events: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    async with aclosing(events):  # type: ignore[type-var]
        return [ev async for ev in events]


def assert_echo_tail(events: list[StreamResponse], task_id: str, terminal: int = TaskState.TASK_STATE_COMPLETED) -> str:
    """Artifact chunks of one streamed artifact, then exactly one ``terminal`` status; returns the chunks' text."""
    *chunks, last = events
    assert [kind(e) for e in chunks] == ["artifact_update"] * len(chunks)
    assert kind(last) == "status_update" and state_of(last) == terminal
    assert {e.artifact_update.task_id for e in chunks} | {last.status_update.task_id} == {task_id}
    assert len({e.artifact_update.artifact.artifact_id for e in chunks}) <= 1
    if chunks:
        assert chunks[-1].artifact_update.last_chunk
        assert not any(e.artifact_update.last_chunk for e in chunks[:-1])
        assert all(e.artifact_update.append for e in chunks[1:])
    return "".join(chunk_text(e) for e in chunks)


# ------------------------------------------------------------------------------------------- card


async def test_compat_card_as_served_lets_the_sdk_choose_its_1_0_transport(server: ServerProcess) -> None:
    """The compat card lists both interfaces on one URL; the 1.0 SDK picks 1.0 and speaks it."""
    wire: list[tuple[str, str | None]] = []

    async def record(req: httpx.Request) -> None:
        if req.method == "POST":
            wire.append((json.loads(req.content)["method"], req.headers.get("a2a-version")))

    async with httpx.AsyncClient(timeout=TIMEOUT, event_hooks={"request": [record]}) as http:
        raw = (await http.get(server.url + "/.well-known/agent-card.json")).json()
        assert raw["protocolVersion"] == "0.3.0"
        card = parse_agent_card(raw)
        assert [(i.protocol_binding, i.protocol_version) for i in card.supported_interfaces] == [
            ("JSONRPC", "1.0"),
            ("JSONRPC", "0.3"),
            ("HTTP+JSON", "1.0"),
        ]
        async with ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card) as client:
            async with asyncio.timeout(TIMEOUT):
                [ev] = await drain(client.send_message(SendMessageRequest(message=user_message("via the compat card"))))
    assert state_of(ev) == TaskState.TASK_STATE_COMPLETED
    assert artifact_text(ev.task) == "via the compat card"
    assert wire == [("SendMessage", "1.0")]


# ------------------------------------------------------------------------------------- send / get


async def test_send_returns_the_completed_task_with_the_echo(sdk: Sdk) -> None:
    text = "hello  non-streaming\tworld "
    async with asyncio.timeout(TIMEOUT):
        events = await drain(sdk.unary.send_message(SendMessageRequest(message=user_message(text))))
    [ev] = events
    assert kind(ev) == "task"
    task = ev.task
    assert task.id and task.context_id
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [a.name for a in task.artifacts] == ["output"]
    assert artifact_text(task) == text
    assert [m.role for m in task.history][:1] == [Role.ROLE_USER]
    assert task.history[0].parts[0].text == text
    assert sdk.wire == sdk.spoke("send")


async def test_get_returns_the_finished_task(sdk: Sdk) -> None:
    text = "get me back"
    message = user_message(text)
    async with asyncio.timeout(TIMEOUT):
        [sent] = await drain(sdk.unary.send_message(SendMessageRequest(message=message)))
        task = await sdk.unary.get_task(GetTaskRequest(id=sent.task.id))
    assert task.id == sent.task.id
    assert task.context_id == sent.task.context_id
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert artifact_text(task) == text
    assert task.history[0].message_id == message.message_id
    assert sdk.wire == sdk.spoke("send", "get")


async def test_get_of_an_unknown_task_raises_task_not_found(sdk: Sdk) -> None:
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(TaskNotFoundError) as err:
            await sdk.unary.get_task(GetTaskRequest(id="no-such-task-" + uuid4().hex))
    assert JSON_RPC_ERROR_CODE_MAP[type(err.value)] == -32001
    assert sdk.wire == sdk.spoke("get")


# ------------------------------------------------------------------------------------------ stream


async def test_stream_is_task_working_chunks_completed(sdk: Sdk) -> None:
    text = "  streaming  is\nfun, isn't it? "
    async with asyncio.timeout(TIMEOUT):
        events = await drain(sdk.streaming.send_message(SendMessageRequest(message=user_message(text))))
    first, working, *rest = events
    assert kind(first) == "task"
    task_id, context_id = first.task.id, first.task.context_id
    assert task_id and context_id
    assert kind(working) == "status_update" and state_of(working) == TaskState.TASK_STATE_WORKING
    assert working.status_update.task_id == task_id
    assert assert_echo_tail(rest, task_id) == text
    assert len(rest) - 1 == 5  # one chunk per word with its following whitespace
    assert {e.artifact_update.context_id for e in rest[:-1]} == {context_id}
    assert not rest[0].artifact_update.append
    assert sdk.wire == sdk.spoke("stream")


# ------------------------------------------------------------------------------------------ cancel


async def test_cancel_stops_a_running_task_and_ends_its_stream_canceled(sdk: Sdk) -> None:
    words = [f"word{i} " for i in range(30)]  # 30 x 200 ms = 6 s if the cancel does not stop it
    text = "".join(words)
    received: list[StreamResponse] = []
    async with asyncio.timeout(TIMEOUT):
        stream = sdk.streaming.send_message(SendMessageRequest(message=user_message(text, delay_ms=200)))
        async with aclosing(stream):  # type: ignore[type-var]
            async for ev in stream:
                received.append(ev)
                if kind(ev) == "artifact_update":
                    break
            task_id = received[0].task.id
            started = time.monotonic()
            canceled = await sdk.unary.cancel_task(CancelTaskRequest(id=task_id))
            cancel_seconds = time.monotonic() - started
            tail = [ev async for ev in stream]  # the open stream must end by itself
    assert canceled.id == task_id
    assert canceled.status.state == TaskState.TASK_STATE_CANCELED
    assert cancel_seconds < 1.0, f"cancel took {cancel_seconds:.2f} s"
    assert [kind(e) for e in received[:2]] == ["task", "status_update"]
    assert state_of(received[1]) == TaskState.TASK_STATE_WORKING
    streamed = assert_echo_tail(received[2:] + tail, task_id, terminal=TaskState.TASK_STATE_CANCELED)
    assert text.startswith(streamed) and len(streamed) < len(text)
    assert artifact_text(canceled) == streamed
    async with asyncio.timeout(TIMEOUT):
        after = await sdk.unary.get_task(GetTaskRequest(id=task_id))
    assert after.status.state == TaskState.TASK_STATE_CANCELED
    assert sdk.wire == sdk.spoke("stream", "cancel", "get")


async def test_cancel_of_a_finished_task_raises_not_cancelable(sdk: Sdk) -> None:
    async with asyncio.timeout(TIMEOUT):
        [sent] = await drain(sdk.unary.send_message(SendMessageRequest(message=user_message("done already"))))
        with pytest.raises(TaskNotCancelableError) as err:
            await sdk.unary.cancel_task(CancelTaskRequest(id=sent.task.id))
    assert JSON_RPC_ERROR_CODE_MAP[type(err.value)] == -32002
    assert sdk.wire == sdk.spoke("send", "cancel")


# ------------------------------------------------------------------------------------- resubscribe


async def test_resubscribe_after_disconnect_gets_the_task_then_the_rest(sdk: Sdk) -> None:
    text = "one two three four five six seven eight"
    async with asyncio.timeout(TIMEOUT):
        stream = sdk.streaming.send_message(SendMessageRequest(message=user_message(text, delay_ms=100)))
        async with aclosing(stream):  # type: ignore[type-var]
            seen = [await anext(stream) for _ in range(3)]  # task, working, first chunk; then disconnect
        task_id = seen[0].task.id
        assert [kind(e) for e in seen] == ["task", "status_update", "artifact_update"]
        events = await drain(sdk.streaming.subscribe(SubscribeToTaskRequest(id=task_id)))
    first, *rest = events
    assert kind(first) == "task", f"first event of a resubscribe must be the current Task, got {kind(first)}"
    assert first.task.id == task_id
    assert first.task.status.state == TaskState.TASK_STATE_WORKING
    # the snapshot carries the text streamed so far; the events after it carry the rest, exactly once
    so_far = artifact_text(first.task)
    assert so_far.startswith(chunk_text(seen[2]))
    assert so_far + assert_echo_tail(rest, task_id) == text
    assert len(rest) >= 2, "the task was still running: some chunks must arrive live"
    assert sdk.wire == sdk.spoke("stream", "subscribe")


async def test_resubscribe_to_a_finished_task(sdk: Sdk) -> None:
    async with asyncio.timeout(TIMEOUT):
        [sent] = await drain(sdk.unary.send_message(SendMessageRequest(message=user_message("finished"))))
        task_id = sent.task.id
        if sdk.version == "1.0":
            # 1.0 §3.1.6: SubscribeToTask on a terminal task is UnsupportedOperationError
            with pytest.raises(UnsupportedOperationError) as err:
                await drain(sdk.streaming.subscribe(SubscribeToTaskRequest(id=task_id)))
            assert JSON_RPC_ERROR_CODE_MAP[type(err.value)] == -32004
            assert err.value.data == {"taskId": task_id}  # from the google.rpc.ErrorInfo metadata
        else:
            # 0.3 defines no error here: the server answers with the final Task and closes the stream
            [only] = await drain(sdk.streaming.subscribe(SubscribeToTaskRequest(id=task_id)))
            assert kind(only) == "task" and only.task.id == task_id
            assert only.task.status.state == TaskState.TASK_STATE_COMPLETED
            assert artifact_text(only.task) == "finished"
    assert sdk.wire == sdk.spoke("send", "subscribe")


# ------------------------------------------------------------------------------------- conformance


def conformance_message(prefix: str) -> Message:
    return user_message("conformance", message_id=f"{prefix}-{uuid4().hex}", skill="conformance")


@pytest.mark.parametrize("mode", ["streaming", "unary"])
async def test_conformance_message_response_is_a_direct_message(sdk: Sdk, mode: str) -> None:
    client = sdk.streaming if mode == "streaming" else sdk.unary
    async with asyncio.timeout(TIMEOUT):
        request = SendMessageRequest(message=conformance_message("tck-message-response"))
        events = await drain(client.send_message(request))
    [ev] = events
    assert kind(ev) == "message"
    assert ev.message.role == Role.ROLE_AGENT
    assert [p.text for p in ev.message.parts] == ["Direct message response"]
    assert sdk.wire == sdk.spoke("stream" if mode == "streaming" else "send")


async def test_conformance_chunked_artifact_streams_two_chunks(sdk: Sdk) -> None:
    request = SendMessageRequest(
        message=conformance_message("tck-stream-artifact-chunked"),
        configuration=SendMessageConfiguration(accepted_output_modes=["text/plain"]),
    )
    async with asyncio.timeout(TIMEOUT):
        events = await drain(sdk.streaming.send_message(request))
    assert [kind(e) for e in events] == ["task", "status_update", "artifact_update", "artifact_update", "status_update"]
    task_id = events[0].task.id
    assert state_of(events[1]) == TaskState.TASK_STATE_WORKING
    one, two = events[2].artifact_update, events[3].artifact_update
    assert [p.text for p in one.artifact.parts] == ["chunk-1 "]
    assert [p.text for p in two.artifact.parts] == ["chunk-2"]
    assert (one.append, one.last_chunk) == (False, False)
    assert (two.append, two.last_chunk) == (True, True)
    assert one.artifact.artifact_id == two.artifact.artifact_id != ""
    assert state_of(events[4]) == TaskState.TASK_STATE_COMPLETED
    assert {one.task_id, two.task_id, events[4].status_update.task_id} == {task_id}
    async with asyncio.timeout(TIMEOUT):
        task = await sdk.unary.get_task(GetTaskRequest(id=task_id))
    assert artifact_text(task) == "chunk-1 chunk-2"
    assert sdk.wire == sdk.spoke("stream", "get")
