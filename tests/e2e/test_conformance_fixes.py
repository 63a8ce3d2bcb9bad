"""What the official conformance suites expect (A2A-PROTOCOL.md §6), against a real server (issue 9).

Each test is one behaviour a suite run tripped over: the slash form of the endpoints, GET on them, the
Content-Type error, 0.x streaming errors as SSE, SubscribeToTask through an input-required turn, and a
message for a task that is still working.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.e2e.wire import (
    JSON,
    JSON_HEADERS,
    V10_HEADERS,
    call,
    open_stream,
    read_stream,
    rpc,
    send03,
    send10,
    uid,
    wait_for_state,
)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False) as c:
        yield c


@pytest.fixture
def url(server: ServerProcess) -> str:
    return f"{server.url}/a2a"


def _with_task(params: JSON, task_id: str) -> JSON:
    params["message"]["taskId"] = task_id
    return params


# ------------------------------------------------------------------------------- paths


async def test_post_to_the_slash_form_is_served_not_redirected(http: httpx.AsyncClient, url: str) -> None:
    """Bug: POST /a2a/ answered 307 with an empty body (clients do not follow it); Fix: served like /a2a."""
    response = await http.post(f"{url}/", json=rpc("SendMessage", send10("hi")), headers=V10_HEADERS)
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_the_slash_form_of_the_stream_path_streams(http: httpx.AsyncClient, url: str) -> None:
    stream = await read_stream(http, f"{url}/stream/", rpc("message/send", send03("a b")))
    assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
    assert stream.results[-1].get("final") is True, stream.results
    assert stream.results[-1]["status"]["state"] == "completed"


@pytest.mark.parametrize("path", ["", "/", "/stream", "/stream/"])
async def test_get_on_a_jsonrpc_endpoint_is_a_json_error_with_allow(
    http: httpx.AsyncClient, url: str, path: str
) -> None:
    response = await http.get(url + path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert answer["id"] is None and "POST a JSON-RPC" in answer["error"]["message"], answer


# ------------------------------------------------------------------------------- 0.x streaming errors


async def test_a_0_3_resubscribe_of_an_unknown_task_is_an_sse_error(http: httpx.AsyncClient, url: str) -> None:
    stream = await read_stream(http, url, rpc("tasks/resubscribe", {"id": "no-such-task"}, request_id=7))
    assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
    [event] = stream.events
    answer = event.json()
    assert answer["id"] == 7 and answer["error"]["code"] == -32001, answer


async def test_a_0_3_stream_with_bad_params_is_an_sse_error(http: httpx.AsyncClient, url: str) -> None:
    stream = await read_stream(http, url, rpc("message/stream", {"message": "not a message"}, request_id="s"))
    assert stream.headers["content-type"].startswith("text/event-stream")
    [event] = stream.events
    assert event.json()["error"]["code"] == -32602 and event.json()["id"] == "s"


async def test_a_1_0_stream_error_stays_a_json_body(http: httpx.AsyncClient, url: str) -> None:
    response = await http.post(url, json=rpc("SubscribeToTask", {"id": "no-such-task"}), headers=V10_HEADERS)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == -32001


# ------------------------------------------------------------------------------- turns and follow-ups


async def test_subscribe_to_an_input_required_task_stays_open_through_the_next_turn(
    http: httpx.AsyncClient, url: str
) -> None:
    first = await call(
        http,
        url,
        rpc("SendMessage", send10("q", message_id=f"tck-input-required-{uid()}", skill="conformance")),
        V10_HEADERS,
    )
    task = first["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    async with open_stream(http, url, rpc("SubscribeToTask", {"id": task["id"]}), V10_HEADERS) as reader:
        opening = await reader.next_event(10)
        assert opening is not None and opening.result["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        follow_up = _with_task(send10("done", message_id=f"tck-complete-task-{uid()}"), task["id"])
        answer = await call(http, url, rpc("SendMessage", follow_up), V10_HEADERS)
        assert answer["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED", answer
        rest = await reader.rest(10)
    states = [e.result["statusUpdate"]["status"]["state"] for e in rest.events[1:] if "statusUpdate" in e.result]
    assert states[-1] == "TASK_STATE_COMPLETED", states
    assert "TASK_STATE_WORKING" in states, states


async def test_a_message_for_a_working_task_reaches_a_skill_that_takes_follow_ups(
    http: httpx.AsyncClient, url: str
) -> None:
    """Bug: a message with the taskId of a working task was refused; the 1.0 suite expects it accepted."""
    started = await call(
        http, url, rpc("SendMessage", send10("wait", message_id=f"test-resubscribe-message-id-{uid()}",
                                             return_immediately=True, skill="conformance")), V10_HEADERS
    )  # fmt: skip
    task_id = started["result"]["task"]["id"]
    await wait_for_state(http, url, task_id, {"TASK_STATE_WORKING"}, headers=V10_HEADERS, method="GetTask")
    follow_up = _with_task(send10("finish", message_id=f"tck-complete-task-{uid()}"), task_id)
    answer = await call(http, url, rpc("SendMessage", follow_up), V10_HEADERS)
    task = answer["result"]["task"]
    assert task["id"] == task_id and task["status"]["state"] == "TASK_STATE_COMPLETED", answer
    assert task["status"]["message"]["parts"][0]["text"] == "Hello from TCK"
    assert any(m["messageId"] == follow_up["message"]["messageId"] for m in task["history"]), task["history"]


async def test_a_follow_up_on_a_stream_follows_the_task_to_its_end(http: httpx.AsyncClient, url: str) -> None:
    started = await call(http, url, rpc("message/send", send03("wait", blocking=False, skill="conformance")))
    task_id = started["result"]["id"]
    await wait_for_state(http, url, task_id, {"working"})
    params = _with_task(send03("finish", message_id=f"tck-complete-task-{uid()}"), task_id)
    stream = await read_stream(http, url, rpc("message/stream", params))
    assert stream.results[0]["id"] == task_id, stream.results
    assert stream.results[-1].get("final") is True, stream.results
    assert stream.results[-1]["status"]["state"] == "completed"


async def test_a_message_for_a_working_task_of_another_skill_is_busy_naming_it(
    http: httpx.AsyncClient, url: str
) -> None:
    started = await call(http, url, rpc("message/send", send03("a b c", blocking=False, skill="echo", delay_ms=2000)))
    task_id = started["result"]["id"]
    await wait_for_state(http, url, task_id, {"working"})
    answer = await call(http, url, rpc("message/send", _with_task(send03("more"), task_id)), JSON_HEADERS)
    assert answer["error"]["code"] == -32004, answer
    assert "'echo'" in answer["error"]["message"] and "takes no messages" in answer["error"]["message"], answer
    await call(http, url, rpc("tasks/cancel", {"id": task_id}))
    await asyncio.wait_for(wait_for_state(http, url, task_id, {"canceled"}), 15)
