"""Every 0.1 and 0.3 answer validates against the published JSON schema of its version; the cards per generation.

The schemas are ``tests/spec/a2a-v0.1.0.json`` and ``a2a-v0.3.0.json`` (vendored); each answer is
validated against the response definition of its method (``SendTaskResponse``,
``SendStreamingMessageResponse``, …) and, for errors, against the specific error definition of
its code where the schema has one. The 1.0 card has no JSON schema in the spec: its required and
forbidden keys are checked by hand (A2A-PROTOCOL.md §2).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.e2e.wire import (
    JSON,
    JSON_HEADERS,
    assert_schema,
    call,
    open_stream,
    read_stream,
    rpc,
    send01,
    send03,
    uid,
    wait_for_state,
)

V01_HEADERS = {**JSON_HEADERS, "A2A-Version": "0.1"}
V03_HEADERS = {**JSON_HEADERS, "A2A-Version": "0.3"}

# the 0.3 error definitions by code (their ``message`` is a default, not a constant)
V03_ERRORS = {
    -32700: "JSONParseError",
    -32600: "InvalidRequestError",
    -32601: "MethodNotFoundError",
    -32602: "InvalidParamsError",
    -32603: "InternalError",
    -32001: "TaskNotFoundError",
    -32002: "TaskNotCancelableError",
    -32003: "PushNotificationNotSupportedError",
    -32004: "UnsupportedOperationError",
    -32007: "AuthenticatedExtendedCardNotConfiguredError",
}

# conformance scenarios (messageId prefixes) and the state message/send ends in
SCENARIOS = {
    "tck-complete-task": "completed",
    "tck-artifact-text": "completed",
    "tck-artifact-file": "completed",
    "tck-artifact-file-url": "completed",
    "tck-artifact-data": "completed",
    "tck-input-required": "input-required",
    "tck-reject-task": "rejected",
}


@pytest.fixture
def url(server: ServerProcess) -> str:
    return f"{server.url}/a2a"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as c:
        yield c


def conformance(prefix: str, **kwargs: Any) -> JSON:
    return send03(f"scenario {prefix}", message_id=f"{prefix}-{uid()}", skill="conformance", **kwargs)


def assert_v03_error(answer: JSON, response_definition: str, code: int) -> None:
    assert answer.get("error", {}).get("code") == code, answer
    assert_schema("0.3", response_definition, answer)
    assert_schema("0.3", "JSONRPCErrorResponse", answer)
    assert_schema("0.3", V03_ERRORS[code], answer["error"])


def assert_v01_error(answer: JSON, response_definition: str, code: int) -> None:
    """0.1 errors: the method's response definition, the generic JSONRPCResponse, and the 0.3 error envelope.

    (The 0.1 schema's specific errors pin ``message`` to a constant such as "Task not found"; the
    server says which task, so only the generic ``JSONRPCError`` shape is required of it.)
    """
    assert answer.get("error", {}).get("code") == code, answer
    assert_schema("0.1", response_definition, answer)
    assert_schema("0.1", "JSONRPCResponse", answer)
    assert_schema("0.3", "JSONRPCErrorResponse", answer)


# ------------------------------------------------------------------------------- 0.1


async def test_v01_send_get_and_stream_results(http: httpx.AsyncClient, url: str) -> None:
    task_id = uid()
    sent = await call(http, url, rpc("tasks/send", send01("schema check", task_id, session_id="s-1")))
    assert "result" in sent, sent
    assert_schema("0.1", "SendTaskResponse", sent)
    got = await call(http, url, rpc("tasks/get", {"id": task_id, "historyLength": 1}))
    assert_schema("0.1", "GetTaskResponse", got)

    for path, method in (("/a2a", "tasks/sendSubscribe"), ("/a2a/stream", "tasks/send")):
        stream = await read_stream(http, url.replace("/a2a", path), rpc(method, send01("stream schema check")))
        assert stream.events, method
        for frame in stream.events:
            assert "result" in frame.json()
            assert_schema("0.1", "SendTaskStreamingResponse", frame.json())

    resubscribed = await read_stream(http, url, rpc("tasks/resubscribe", {"id": task_id}))
    for frame in resubscribed.events:
        assert_schema("0.1", "SendTaskStreamingResponse", frame.json())


async def test_v01_cancel_results(http: httpx.AsyncClient, url: str) -> None:
    task_id = uid()
    body = rpc("tasks/sendSubscribe", send01("slow cancel", task_id, delay_ms=3000))
    async with asyncio.timeout(10), open_stream(http, url, body) as reader:
        first = await reader.next_event(5)
        assert first is not None
        canceled = await call(http, url, rpc("tasks/cancel", {"id": task_id}))
        assert canceled["result"]["status"]["state"] == "canceled", canceled
        assert_schema("0.1", "CancelTaskResponse", canceled)
        rest = await reader.rest(5)
    for frame in rest.events:
        assert_schema("0.1", "SendTaskStreamingResponse", frame.json())

    assert_v01_error(await call(http, url, rpc("tasks/cancel", {"id": task_id})), "CancelTaskResponse", -32002)
    assert_v01_error(
        await call(http, url, rpc("tasks/cancel", {"id": "nope"}), V01_HEADERS), "CancelTaskResponse", -32001
    )
    assert_v01_error(await call(http, url, rpc("tasks/get", {"id": "nope"}), V01_HEADERS), "GetTaskResponse", -32001)


HOOK = "http://127.0.0.1:9/hook"  # allow-listed loopback, nothing listens: delivery retries, never leaves the host


async def test_v01_push_notification_results_and_errors(http: httpx.AsyncClient, url: str) -> None:
    task_id = uid()
    await call(http, url, rpc("tasks/send", send01("push schema check", task_id)))
    config = {"id": task_id, "pushNotificationConfig": {"url": HOOK, "token": "tok"}}
    assert_schema("0.1", "SetTaskPushNotificationResponse", await call(http, url, rpc("tasks/pushNotification/set",
                                                                                       config)))  # fmt: skip
    assert_schema("0.1", "GetTaskPushNotificationResponse", await call(http, url, rpc("tasks/pushNotification/get",
                                                                                       {"id": task_id})))  # fmt: skip
    config = {"id": "t", "pushNotificationConfig": {"url": HOOK}}
    answer = await call(http, url, rpc("tasks/pushNotification/set", config))
    assert_v01_error(answer, "SetTaskPushNotificationResponse", -32001)
    answer = await call(http, url, rpc("tasks/pushNotification/get", {"id": "t"}))
    assert_v01_error(answer, "GetTaskPushNotificationResponse", -32001)


@pytest.mark.parametrize("prefix", list(SCENARIOS))
async def test_v01_renders_every_kind_of_task_and_part(http: httpx.AsyncClient, url: str, prefix: str) -> None:
    """Tasks made by the conformance skill (files, data, agent messages, rejected, input-required) read in 0.1."""
    created = await call(http, url, rpc("message/send", conformance(prefix)))
    task_id = created["result"]["id"]
    answer = await call(http, url, rpc("tasks/get", {"id": task_id}), V01_HEADERS)
    assert_schema("0.1", "GetTaskResponse", answer)
    assert "result" in answer and answer["result"]["id"] == task_id


# ------------------------------------------------------------------------------- 0.3


@pytest.mark.parametrize("prefix", list(SCENARIOS))
async def test_v03_message_send_results(http: httpx.AsyncClient, url: str, prefix: str) -> None:
    answer = await call(http, url, rpc("message/send", conformance(prefix)))
    assert_schema("0.3", "SendMessageResponse", answer)
    assert_schema("0.3", "SendMessageSuccessResponse", answer)
    assert_schema("0.3", "Task", answer["result"])
    assert answer["result"]["status"]["state"] == SCENARIOS[prefix]
    got = await call(http, url, rpc("tasks/get", {"id": answer["result"]["id"], "historyLength": 1}))
    assert_schema("0.3", "GetTaskResponse", got)
    assert_schema("0.3", "GetTaskSuccessResponse", got)


async def test_v03_direct_message_reply(http: httpx.AsyncClient, url: str) -> None:
    answer = await call(http, url, rpc("message/send", conformance("tck-message-response")))
    assert_schema("0.3", "SendMessageSuccessResponse", answer)
    assert_schema("0.3", "Message", answer["result"])
    assert answer["result"]["kind"] == "message" and answer["result"]["role"] == "agent"


async def test_v03_echo_send_result(http: httpx.AsyncClient, url: str) -> None:
    answer = await call(http, url, rpc("message/send", send03("echo schema check")))
    assert_schema("0.3", "SendMessageSuccessResponse", answer)
    assert_schema("0.3", "Task", answer["result"])
    answer = await call(http, url, rpc("message/send", send03("non-blocking", blocking=False, delay_ms=50)))
    assert_schema("0.3", "SendMessageSuccessResponse", answer)
    assert answer["result"]["status"]["state"] in ("submitted", "working")
    await wait_for_state(http, url, answer["result"]["id"], {"completed"})


@pytest.mark.parametrize(
    ("path", "method", "params"),
    [
        ("/a2a", "message/stream", send03("stream schema check")),
        ("/a2a/stream", "message/send", send03("stream path schema check")),
        ("/a2a", "message/stream", conformance("tck-stream-artifact-chunked")),
        ("/a2a", "message/stream", conformance("tck-stream-artifact-file")),
        ("/a2a", "message/stream", conformance("tck-stream-002")),
        ("/a2a", "message/stream", conformance("tck-message-response")),
        ("/a2a", "message/stream", conformance("tck-input-required")),
    ],
    ids=["echo", "send on the stream path", "chunked", "file", "completed at once", "direct message", "input required"],
)
async def test_v03_stream_frames(
    http: httpx.AsyncClient, server: ServerProcess, path: str, method: str, params: JSON
) -> None:
    stream = await read_stream(http, server.url + path, rpc(method, params))
    assert stream.events
    for frame in stream.events:
        envelope = frame.json()
        assert "result" in envelope, envelope
        assert_schema("0.3", "SendStreamingMessageResponse", envelope)
        assert_schema("0.3", "SendStreamingMessageSuccessResponse", envelope)
    last = stream.results[-1]
    assert last["kind"] == "message" or last["final"] is True, last


async def test_v03_cancel_and_resubscribe_results(http: httpx.AsyncClient, url: str) -> None:
    created = await call(http, url, rpc("message/send", send03("cancel me please now", blocking=False, delay_ms=200)))
    task_id = created["result"]["id"]
    async with asyncio.timeout(10), open_stream(http, url, rpc("tasks/resubscribe", {"id": task_id})) as reader:
        first = await reader.next_event(5)
        assert first is not None and first.result["kind"] == "task"
        canceled = await call(http, url, rpc("tasks/cancel", {"id": task_id}))
        assert canceled["result"]["status"]["state"] == "canceled", canceled
        assert_schema("0.3", "CancelTaskResponse", canceled)
        assert_schema("0.3", "CancelTaskSuccessResponse", canceled)
        rest = await reader.rest(5)
    for frame in rest.events:
        assert_schema("0.3", "SendStreamingMessageSuccessResponse", frame.json())
    assert rest.results[-1]["status"]["state"] == "canceled" and rest.results[-1]["final"] is True

    assert_v03_error(await call(http, url, rpc("tasks/cancel", {"id": task_id})), "CancelTaskResponse", -32002)
    assert_v03_error(await call(http, url, rpc("tasks/cancel", {"id": "nope"})), "CancelTaskResponse", -32001)
    assert_v03_error(await call(http, url, rpc("tasks/get", {"id": "nope"})), "GetTaskResponse", -32001)


async def test_v03_push_config_results(http: httpx.AsyncClient, url: str) -> None:
    task = (await call(http, url, rpc("message/send", send03("push config schema check"))))["result"]
    for n in (1, 2):
        config = {"taskId": task["id"], "pushNotificationConfig": {"id": f"c{n}", "url": HOOK, "token": f"t{n}",
                                                                   "authentication": {"schemes": ["Bearer"]}}}
        answer = await call(http, url, rpc("tasks/pushNotificationConfig/set", config))
        assert answer["result"]["pushNotificationConfig"] == config["pushNotificationConfig"]
        assert_schema("0.3", "SetTaskPushNotificationConfigResponse", answer)
    ref = {"id": task["id"], "pushNotificationConfigId": "c2"}
    got = await call(http, url, rpc("tasks/pushNotificationConfig/get", ref))
    assert got["result"]["pushNotificationConfig"]["token"] == "t2"
    assert_schema("0.3", "GetTaskPushNotificationConfigResponse", got)
    listed = await call(http, url, rpc("tasks/pushNotificationConfig/list", {"id": task["id"]}))
    assert [c["pushNotificationConfig"]["id"] for c in listed["result"]] == ["c1", "c2"]
    assert_schema("0.3", "ListTaskPushNotificationConfigResponse", listed)
    deleted = await call(http, url, rpc("tasks/pushNotificationConfig/delete", {"id": task["id"],
                                                                                "pushNotificationConfigId": "c1"}))
    assert deleted["result"] is None
    assert_schema("0.3", "DeleteTaskPushNotificationConfigResponse", deleted)
    listed = await call(http, url, rpc("tasks/pushNotificationConfig/list", {"id": task["id"]}))
    assert [c["pushNotificationConfig"]["id"] for c in listed["result"]] == ["c2"]


@pytest.mark.parametrize(
    ("method", "params", "response_definition"),
    [
        (
            "tasks/pushNotificationConfig/set",
            {"taskId": "t", "pushNotificationConfig": {"url": "https://example.com/hook"}},
            "SetTaskPushNotificationConfigResponse",
        ),
        ("tasks/pushNotificationConfig/get", {"id": "t"}, "GetTaskPushNotificationConfigResponse"),
        ("tasks/pushNotificationConfig/list", {"id": "t"}, "ListTaskPushNotificationConfigResponse"),
        (
            "tasks/pushNotificationConfig/delete",
            {"id": "t", "pushNotificationConfigId": "c"},
            "DeleteTaskPushNotificationConfigResponse",
        ),
    ],
)
async def test_v03_push_config_errors(
    http: httpx.AsyncClient, url: str, method: str, params: JSON, response_definition: str
) -> None:
    assert_v03_error(await call(http, url, rpc(method, params)), response_definition, -32001)


async def test_v03_extended_card_error(http: httpx.AsyncClient, url: str) -> None:
    answer = await call(http, url, rpc("agent/getAuthenticatedExtendedCard"))
    assert_v03_error(answer, "GetAuthenticatedExtendedCardResponse", -32007)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{oops", -32700),
        (b'{"jsonrpc": "2.0", "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/fly"}', -32601),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {}}}', -32602),
    ],
    ids=["parse", "invalid request", "method not found", "invalid params"],
)
async def test_v03_protocol_errors(http: httpx.AsyncClient, url: str, content: bytes, code: int) -> None:
    response = await http.post(url, content=content, headers=JSON_HEADERS)
    assert_v03_error(response.json(), "JSONRPCErrorResponse", code)


# ------------------------------------------------------------------------------- agent cards


async def card(client: httpx.AsyncClient, path: str, version: str | None = None) -> httpx.Response:
    headers = {"A2A-Version": version} if version else {}
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response


async def test_the_old_well_known_path_serves_a_0_1_card(client: httpx.AsyncClient) -> None:
    body = (await card(client, "/.well-known/agent.json")).json()
    assert_schema("0.1", "AgentCard", body)
    assert body["url"].endswith("/a2a")
    assert {s["id"] for s in body["skills"]} == {"echo", "conformance"}
    assert body["capabilities"]["streaming"] is True and body["capabilities"]["pushNotifications"] is True


async def test_the_card_without_a_header_is_a_0_3_card(client: httpx.AsyncClient) -> None:
    body = (await card(client, "/.well-known/agent-card.json")).json()
    assert_schema("0.3", "AgentCard", body)
    assert body["url"].endswith("/a2a") and body["protocolVersion"].startswith("0.3")
    assert body["capabilities"]["pushNotifications"] is True


@pytest.mark.parametrize(("version", "schema"), [("0.3", "0.3"), ("0.1", "0.1")])
async def test_the_card_for_an_old_version_header(client: httpx.AsyncClient, version: str, schema: str) -> None:
    body = (await card(client, "/.well-known/agent-card.json", version)).json()
    assert_schema(schema, "AgentCard", body)
    assert "supportedInterfaces" not in body, "a pure 0.x card carries no 1.0 keys"


V10_REQUIRED = {
    "name",
    "description",
    "supportedInterfaces",
    "version",
    "capabilities",
    "defaultInputModes",
    "defaultOutputModes",
    "skills",
}
V10_FORBIDDEN = {
    "url",
    "preferredTransport",
    "additionalInterfaces",
    "protocolVersion",
    "supportsAuthenticatedExtendedCard",
}


@pytest.mark.parametrize("path", ["/.well-known/agent-card.json", "/.well-known/agent.json"])
async def test_the_1_0_card(client: httpx.AsyncClient, path: str) -> None:
    body = (await card(client, path, "1.0")).json()
    assert set(body) >= V10_REQUIRED, f"missing: {V10_REQUIRED - set(body)}"
    assert not V10_FORBIDDEN & set(body), f"0.3-only keys in the 1.0 card: {V10_FORBIDDEN & set(body)}"
    assert "stateTransitionHistory" not in body["capabilities"], "removed in 1.0"
    assert body["supportedInterfaces"], body
    for interface in body["supportedInterfaces"]:
        assert {"url", "protocolBinding", "protocolVersion"} <= set(interface), interface
        assert interface["protocolBinding"] in {"JSONRPC", "GRPC", "HTTP+JSON"}, interface
        assert interface["url"].startswith("http"), interface
    assert any(i["protocolVersion"] == "1.0" and i["protocolBinding"] == "JSONRPC" for i in body["supportedInterfaces"])
    for skill in body["skills"]:
        assert {"id", "name", "description", "tags"} <= set(skill), skill
    assert isinstance(body["defaultInputModes"], list) and isinstance(body["defaultOutputModes"], list)


@pytest.mark.parametrize("version", [None, "1.0", "0.3"])
async def test_card_caching_headers(client: httpx.AsyncClient, version: str | None) -> None:
    path = "/.well-known/agent-card.json"
    response = await card(client, path, version)
    cache_control = response.headers.get("cache-control", "")
    match = re.search(r"max-age=(\d+)", cache_control)
    assert match and int(match.group(1)) > 0, f"Cache-Control without a max-age: {cache_control!r}"
    etag = response.headers.get("etag")
    assert etag and re.fullmatch(r'(W/)?"[^"]+"', etag), f"not an entity tag: {etag!r}"
    last_modified = response.headers.get("last-modified")
    assert last_modified, "no Last-Modified"
    assert parsedate_to_datetime(last_modified).tzinfo is not None, last_modified
    assert "a2a-version" in response.headers.get("vary", "").lower(), (
        "the card depends on A2A-Version: Vary must say so"
    )

    headers = {"If-None-Match": etag, **({"A2A-Version": version} if version else {})}
    again = await client.get(path, headers=headers)
    assert again.status_code == 304, again.status_code
    assert again.content == b""
    assert again.headers.get("etag") == etag


async def test_each_card_version_has_its_own_etag(client: httpx.AsyncClient) -> None:
    path = "/.well-known/agent-card.json"
    old = (await card(client, path)).headers["etag"]
    new = (await card(client, path, "1.0")).headers["etag"]
    assert old != new
    # a cached 0.3 card is not a valid copy of the 1.0 one
    response = await client.get(path, headers={"If-None-Match": old, "A2A-Version": "1.0"})
    assert response.status_code == 200 and "url" not in response.json()
