"""The 1.0 HTTP+JSON binding (A2A-PROTOCOL.md §5) over raw httpx against a real server: every route (plain and
``/{tenant}``-prefixed), the google.rpc.Status errors with their HTTP status, SSE of StreamResponse, resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.client.card_resolver import parse_agent_card
from a2a.types import ListTasksRequest, Message, Part, Role, SendMessageRequest

from tests.conftest import ServerProcess
from tests.e2e.wire import JSON, StreamReader, send10

REST_BASE = "/a2a/rest"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
JSON_BODY = {"Content-Type": "application/json"}
TIMEOUT = 10.0


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(TIMEOUT)) as c:
        yield c


@pytest.fixture(params=["", "/acme"], ids=["plain", "tenant"])
def base(request: pytest.FixtureRequest, server: ServerProcess) -> str:
    prefix: str = request.param
    return server.url + REST_BASE + prefix


def _message(text: str, **metadata: Any) -> JSON:
    return send10(text, skill="echo", **metadata)


def assert_status(response: httpx.Response, http_status: int, status: str, reason: str) -> JSON:
    """A google.rpc.Status body (§11.6) with one ErrorInfo."""
    assert response.status_code == http_status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    error: JSON = response.json()["error"]
    assert error["code"] == http_status and error["status"] == status, error
    assert isinstance(error["message"], str) and error["message"], error
    [info] = error["details"]
    assert info["@type"] == ERROR_INFO and info["reason"] == reason and info["domain"] == "a2a-protocol.org", info
    return error


async def _send(http: httpx.AsyncClient, base: str, body: JSON, **headers: str) -> JSON:
    response = await http.post(f"{base}/message:send", json=body, headers={**JSON_BODY, **headers})
    assert response.status_code == 200, response.text
    answer: JSON = response.json()
    return answer


async def _stream(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, list[Any]]:
    async with asyncio.timeout(TIMEOUT + 1), http.stream(method, url, timeout=TIMEOUT, **kwargs) as response:
        reader = StreamReader(response)
        stream = await reader.rest(TIMEOUT)
    return response, stream.events


# ------------------------------------------------------------------------------- the routes


async def test_send_returns_the_completed_task(http: httpx.AsyncClient, base: str) -> None:
    answer = await _send(http, base, _message("hello rest"))
    task = answer["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert "".join(p["text"] for a in task["artifacts"] for p in a["parts"]) == "hello rest"


async def test_send_takes_the_a2a_json_media_type(http: httpx.AsyncClient, base: str) -> None:
    answer = await _send(http, base, _message("typed"), **{"Content-Type": "application/a2a+json"})
    assert answer["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_stream_is_sse_of_stream_responses_with_resumable_ids(http: httpx.AsyncClient, base: str) -> None:
    response, events = await _stream(http, "POST", f"{base}/message:stream", json=_message("a b c"), headers=JSON_BODY)
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = [e.json() for e in events]
    assert "jsonrpc" not in payloads[0] and "task" in payloads[0], payloads[0]
    task_id = payloads[0]["task"]["id"]
    assert [next(iter(p)) for p in payloads[1:]] == ["statusUpdate", "artifactUpdate", "artifactUpdate",
                                                    "artifactUpdate", "statusUpdate"]  # fmt: skip
    assert payloads[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    ids = [e.id for e in events]
    assert all(i is not None and i.startswith(f"{task_id}:") for i in ids), ids


async def test_get_with_camel_case_history_length(http: httpx.AsyncClient, base: str) -> None:
    task = (await _send(http, base, _message("get me")))["task"]
    response = await http.get(f"{base}/tasks/{task['id']}", params={"historyLength": 0})
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["id"] == task["id"] and got["status"]["state"] == "TASK_STATE_COMPLETED"
    assert not got.get("history"), got


async def test_list_filters_by_context_with_camel_case_query(http: httpx.AsyncClient, base: str) -> None:
    context = uuid4().hex
    body = _message("listed")
    body["message"]["contextId"] = context
    task = (await _send(http, base, body))["task"]
    response = await http.get(f"{base}/tasks", params={"contextId": context, "pageSize": 5, "includeArtifacts": "true"})
    assert response.status_code == 200, response.text
    page = response.json()
    assert [t["id"] for t in page["tasks"]] == [task["id"]] and page["pageSize"] == 5 and page["totalSize"] == 1
    assert page["tasks"][0]["artifacts"], page


async def test_cancel_of_a_running_task(http: httpx.AsyncClient, base: str) -> None:
    body = _message("one two three four", delay_ms=1000)
    body["configuration"] = {"returnImmediately": True}
    task = (await _send(http, base, body))["task"]
    response = await http.post(f"{base}/tasks/{task['id']}:cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"]["state"] == "TASK_STATE_CANCELED"
    again = await http.post(f"{base}/tasks/{task['id']}:cancel", json={}, headers=JSON_BODY)
    assert_status(again, 400, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE")


@pytest.mark.parametrize("verb", ["GET", "POST"])
async def test_subscribe_opens_with_the_task_and_resumes_after_last_event_id(
    http: httpx.AsyncClient, base: str, verb: str
) -> None:
    body = _message("w1 w2 w3 w4 w5", delay_ms=150)
    body["configuration"] = {"returnImmediately": True}
    task_id = (await _send(http, base, body))["task"]["id"]
    url = f"{base}/tasks/{task_id}:subscribe"
    _, events = await _stream(http, verb, url)
    assert "task" in events[0].json() and events[-1].json()["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    # resume after the second event: exactly the events after it, in order, the same ids
    after = events[1].id
    assert after is not None
    _, resumed = await _stream(http, verb, url, headers={"Last-Event-ID": after})
    assert [e.id for e in resumed] == [e.id for e in events if _seq(e.id) > _seq(after)], (events, resumed)


def _seq(event_id: str | None) -> int:
    assert event_id is not None
    return int(event_id.rsplit(":", 1)[1])


async def test_subscribe_to_a_finished_task_is_unsupported(http: httpx.AsyncClient, base: str) -> None:
    task = (await _send(http, base, _message("done")))["task"]
    response = await http.post(f"{base}/tasks/{task['id']}:subscribe")
    error = assert_status(response, 400, "FAILED_PRECONDITION", "UNSUPPORTED_OPERATION")
    assert error["details"][0]["metadata"] == {"taskId": task["id"]}


@pytest.mark.parametrize(
    ("verb", "path"),
    [
        ("POST", "/tasks/t1/pushNotificationConfigs"),
        ("GET", "/tasks/t1/pushNotificationConfigs"),
        ("GET", "/tasks/t1/pushNotificationConfigs/c1"),
        ("DELETE", "/tasks/t1/pushNotificationConfigs/c1"),
    ],
)
async def test_push_config_routes_of_an_unknown_task_are_not_found(
    http: httpx.AsyncClient, base: str, verb: str, path: str
) -> None:
    kwargs: Any = {"json": {"url": "https://example.com/hook"}, "headers": JSON_BODY} if verb == "POST" else {}
    response = await http.request(verb, base + path, **kwargs)
    assert_status(response, 404, "NOT_FOUND", "TASK_NOT_FOUND")


async def test_push_config_routes(http: httpx.AsyncClient, base: str) -> None:
    task = (await _send(http, base, _message("hook me")))["task"]
    routes = f"{base}/tasks/{task['id']}/pushNotificationConfigs"
    made = await http.post(routes, json={"id": "c1", "url": "http://127.0.0.1:9/hook", "token": "t"}, headers=JSON_BODY)
    assert made.status_code == 200, made.text
    assert made.json()["id"] == "c1" and made.json()["taskId"] == task["id"]
    assert [c["id"] for c in (await http.get(routes)).json()["configs"]] == ["c1"]
    assert (await http.get(f"{routes}/c1")).json()["token"] == "t"
    assert (await http.delete(f"{routes}/c1")).status_code == 200
    assert (await http.delete(f"{routes}/c1")).status_code == 200  # idempotent
    assert_status(await http.get(f"{routes}/c1"), 404, "NOT_FOUND", "TASK_NOT_FOUND")
    refused = await http.post(routes, json={"url": "https://192.168.1.1/hook"}, headers=JSON_BODY)
    assert_status(refused, 400, "INVALID_ARGUMENT", "INVALID_PARAMS")


async def test_extended_card_is_not_configured(http: httpx.AsyncClient, base: str) -> None:
    response = await http.get(f"{base}/extendedAgentCard")
    assert_status(response, 400, "FAILED_PRECONDITION", "EXTENDED_AGENT_CARD_NOT_CONFIGURED")


# ------------------------------------------------------------------------------- errors


async def test_get_of_an_unknown_task_is_404(http: httpx.AsyncClient, base: str) -> None:
    error = assert_status(await http.get(f"{base}/tasks/no-such-task"), 404, "NOT_FOUND", "TASK_NOT_FOUND")
    assert error["details"][0]["metadata"] == {"taskId": "no-such-task"}


async def test_cancel_and_subscribe_of_an_unknown_task_are_404(http: httpx.AsyncClient, base: str) -> None:
    assert_status(await http.post(f"{base}/tasks/ghost:cancel"), 404, "NOT_FOUND", "TASK_NOT_FOUND")
    assert_status(await http.get(f"{base}/tasks/ghost:subscribe"), 404, "NOT_FOUND", "TASK_NOT_FOUND")


async def test_a_wrong_content_type_is_content_type_not_supported(http: httpx.AsyncClient, base: str) -> None:
    response = await http.post(f"{base}/message:send", content=b"hello", headers={"Content-Type": "text/plain"})
    assert_status(response, 415, "INVALID_ARGUMENT", "CONTENT_TYPE_NOT_SUPPORTED")


async def test_bad_json_and_bad_params_are_invalid_argument(http: httpx.AsyncClient, base: str) -> None:
    bad_json = await http.post(f"{base}/message:send", content=b"{nope", headers=JSON_BODY)
    assert_status(bad_json, 400, "INVALID_ARGUMENT", "PARSE_ERROR")
    bad_params = await http.post(f"{base}/message:send", json={"message": {"role": "ROLE_USER"}}, headers=JSON_BODY)
    assert_status(bad_params, 400, "INVALID_ARGUMENT", "INVALID_PARAMS")
    bad_query = await http.get(f"{base}/tasks", params={"pageSize": "many"})
    assert_status(bad_query, 400, "INVALID_ARGUMENT", "INVALID_PARAMS")


async def test_an_unknown_route_is_a_status_404(http: httpx.AsyncClient, base: str) -> None:
    assert_status(await http.get(f"{base}/nowhere"), 404, "NOT_FOUND", "METHOD_NOT_FOUND")


async def test_another_generation_s_version_header_is_refused(http: httpx.AsyncClient, base: str) -> None:
    response = await http.get(f"{base}/tasks", headers={"A2A-Version": "0.3"})
    assert_status(response, 400, "FAILED_PRECONDITION", "VERSION_NOT_SUPPORTED")


# ------------------------------------------------------------------------------- the card and the SDK


async def test_the_1_0_card_declares_the_binding(http: httpx.AsyncClient, server: ServerProcess) -> None:
    card = (await http.get(server.url + "/.well-known/agent-card.json", headers={"A2A-Version": "1.0"})).json()
    interface = {"url": server.url + REST_BASE, "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"}
    assert interface in card["supportedInterfaces"], card["supportedInterfaces"]


async def test_the_sdk_lists_tasks_over_http_json(server: ServerProcess) -> None:
    paths: list[str] = []

    async def record(req: httpx.Request) -> None:
        paths.append(f"{req.method} {req.url.path}")

    async with httpx.AsyncClient(timeout=TIMEOUT, event_hooks={"request": [record]}) as http:
        raw = (await http.get(server.url + "/.well-known/agent-card.json", headers={"A2A-Version": "1.0"})).json()
        config = ClientConfig(httpx_client=http, streaming=False, supported_protocol_bindings=["HTTP+JSON"])
        context = uuid4().hex
        message = Message(message_id=uuid4().hex, context_id=context, role=Role.ROLE_USER, parts=[Part(text="hi")])
        message.metadata.update({"skill": "echo"})
        async with ClientFactory(config).create(parse_agent_card(raw)) as client, asyncio.timeout(TIMEOUT):
            [sent] = [ev async for ev in client.send_message(SendMessageRequest(message=message))]
            page = await client.list_tasks(ListTasksRequest(context_id=context))
    assert [t.id for t in page.tasks] == [sent.task.id]
    assert paths[1:] == [f"POST {REST_BASE}/message:send", f"GET {REST_BASE}/tasks"], paths
