"""A2A v0.1 end to end, with raw httpx against a real server: every v0.1 method, in v0.1 shapes.

v0.1 is the generation with client-chosen task ids, ``sessionId``, ``type`` part discriminators,
``index``/``append``/``lastChunk`` on the artifact itself and ``final`` on status events. Every
answer is also checked against the published v0.1 JSON schema.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.e2e.wire import (
    JSON,
    JSON_HEADERS,
    Stream,
    assert_schema,
    call,
    open_stream,
    read_stream,
    rpc,
    send01,
    send03,
    uid,
)

TEXT = "the quick  brown fox\tjumps over the lazy dog "


@pytest.fixture
def url(server: ServerProcess) -> str:
    return f"{server.url}/a2a"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as c:
        yield c


def text_of(parts: list[JSON]) -> str:
    assert all(p["type"] == "text" for p in parts), parts
    return "".join(p["text"] for p in parts)


def assert_v01_task(task: JSON) -> None:
    """A v0.1 Task: ``sessionId`` instead of ``contextId``, ``type`` on parts, no ``kind`` anywhere."""
    assert "kind" not in task and "contextId" not in task, task
    assert isinstance(task["sessionId"], str) and task["sessionId"], task
    for message in task.get("history", []):
        assert set(message) <= {"role", "parts", "metadata"}, message
    for artifact in task.get("artifacts", []):
        assert "artifactId" not in artifact and isinstance(artifact["index"], int), artifact


def assert_v01_stream(stream: Stream, task_id: str, request_id: Any) -> list[JSON]:
    """Common checks of a v0.1 event stream; returns the results."""
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    results = stream.results
    assert results, "the stream carried no events"
    for frame in stream.events:
        envelope = frame.json()
        assert envelope["jsonrpc"] == "2.0" and envelope["id"] == request_id, envelope
        assert_schema("0.1", "SendTaskStreamingResponse", envelope)
    for result in results:
        assert result["id"] == task_id, result
        assert "kind" not in result and "taskId" not in result, result
        assert ("status" in result) != ("artifact" in result), result
    finals = [r.get("final") for r in results if "status" in r]
    assert finals[-1] is True, f"the last status event must be final: {results[-1]}"
    assert not any(finals[:-1]), f"only the last status event may be final: {finals}"
    assert "status" in results[-1], "a v0.1 stream ends with its final status event"
    return results


def chunks_text(results: list[JSON]) -> str:
    return "".join(text_of(r["artifact"]["parts"]) for r in results if "artifact" in r)


# ------------------------------------------------------------------------------------ tasks/send


async def test_send_keeps_the_client_chosen_task_id_and_session_id(http: httpx.AsyncClient, url: str) -> None:
    task_id, session_id = uid(), uid()
    body = rpc("tasks/send", send01(TEXT, task_id, session_id=session_id), request_id="send-1")
    answer = await call(http, url, body)
    assert_schema("0.1", "SendTaskResponse", answer)
    assert answer["id"] == "send-1" and "error" not in answer, answer
    task = answer["result"]
    assert_v01_task(task)
    assert (task["id"], task["sessionId"]) == (task_id, session_id)
    # a blocking send answers once the task is terminal, with the merged echo artifact
    assert task["status"]["state"] == "completed"
    assert [a["index"] for a in task["artifacts"]] == [0]
    assert text_of(task["artifacts"][0]["parts"]) == TEXT
    assert task["history"][0] == {"role": "user", "parts": [{"type": "text", "text": TEXT}]}


async def test_send_without_session_id_gets_one_from_the_server(http: httpx.AsyncClient, url: str) -> None:
    answer = await call(http, url, rpc("tasks/send", send01("hi")))
    assert_schema("0.1", "SendTaskResponse", answer)
    assert_v01_task(answer["result"])


async def test_send_short_form_task_skill_input(http: httpx.AsyncClient, url: str) -> None:
    """The seed's ``{"task": {"skill": ..., "input": ...}}`` params."""
    answer = await call(http, url, rpc("tasks/send", {"task": {"skill": "echo", "input": "short form works"}}))
    assert_schema("0.1", "SendTaskResponse", answer)
    task = answer["result"]
    assert_v01_task(task)
    assert task["id"], task
    assert task["status"]["state"] == "completed"
    assert text_of(task["artifacts"][0]["parts"]) == "short form works"
    # the task is kept under the id the server gave it
    got = await call(http, url, rpc("tasks/get", {"id": task["id"]}))
    assert got["result"]["id"] == task["id"] and got["result"]["status"]["state"] == "completed"


async def test_send_short_form_picks_the_skill(http: httpx.AsyncClient, url: str) -> None:
    """``task.skill`` routes: the conformance skill (any other message) completes without an echo artifact."""
    answer = await call(http, url, rpc("tasks/send", {"task": {"skill": "conformance", "input": "not echoed"}}))
    task = answer["result"]
    assert task["status"]["state"] == "completed", task
    assert all(text_of(a["parts"]) != "not echoed" for a in task["artifacts"]), task


async def test_send_history_length_trims_the_returned_history(http: httpx.AsyncClient, url: str) -> None:
    params = {**send01("trim me"), "historyLength": 0}
    answer = await call(http, url, rpc("tasks/send", params))
    assert_schema("0.1", "SendTaskResponse", answer)
    assert answer["result"]["history"] == []


# ---------------------------------------------------------------------------- tasks/sendSubscribe


async def test_send_subscribe_streams_statuses_and_artifact_chunks(http: httpx.AsyncClient, url: str) -> None:
    task_id = uid()
    body = rpc("tasks/sendSubscribe", send01(TEXT, task_id), request_id=7)
    stream = await read_stream(http, url, body, timeout=10)
    results = assert_v01_stream(stream, task_id, 7)

    states = [r["status"]["state"] for r in results if "status" in r]
    assert states == ["submitted", "working", "completed"], states
    artifacts = [r["artifact"] for r in results if "artifact" in r]
    words = ["the ", "quick  ", "brown ", "fox\t", "jumps ", "over ", "the ", "lazy ", "dog "]
    assert [text_of(a["parts"]) for a in artifacts] == words
    assert chunks_text(results) == TEXT
    # one artifact (index 0) streamed in chunks: the first starts it, the rest append, the last says so
    assert {a["index"] for a in artifacts} == {0}
    assert [a["append"] for a in artifacts] == [False] + [True] * (len(words) - 1)
    assert [a["lastChunk"] for a in artifacts] == [False] * (len(words) - 1) + [True]
    # the chunks arrive between working and the final status
    kinds = ["status" if "status" in r else "artifact" for r in results]
    assert kinds == ["status", "status"] + ["artifact"] * len(words) + ["status"]

    got = await call(http, url, rpc("tasks/get", {"id": task_id}))
    assert text_of(got["result"]["artifacts"][0]["parts"]) == TEXT


async def test_send_on_the_stream_path_streams(http: httpx.AsyncClient, server: ServerProcess) -> None:
    """POST /a2a/stream turns the non-streaming ``tasks/send`` into an event stream."""
    task_id = uid()
    stream = await read_stream(
        http, f"{server.url}/a2a/stream", rpc("tasks/send", send01("on the stream path", task_id), request_id="s")
    )
    results = assert_v01_stream(stream, task_id, "s")
    assert chunks_text(results) == "on the stream path"
    assert results[-1]["status"]["state"] == "completed"


# ------------------------------------------------------------------------------------- tasks/get


async def test_get_history_length(http: httpx.AsyncClient, url: str) -> None:
    task_id = uid()
    await call(http, url, rpc("tasks/send", send01("remember me", task_id)))
    user = {"role": "user", "parts": [{"type": "text", "text": "remember me"}]}
    for params, expected in (({}, [user]), ({"historyLength": 1}, [user]), ({"historyLength": 0}, [])):
        answer = await call(http, url, rpc("tasks/get", {"id": task_id, **params}))
        assert_schema("0.1", "GetTaskResponse", answer)
        assert_v01_task(answer["result"])
        assert answer["result"]["history"] == expected, params


async def test_get_history_length_keeps_the_newest_messages(http: httpx.AsyncClient, url: str) -> None:
    """A task with two messages (user, then the agent asking for input), read in v0.1 shape."""
    params = send03("need more", message_id=f"tck-input-required-{uid()}", skill="conformance")
    created = await call(http, url, rpc("message/send", params))
    task_id = created["result"]["id"]
    assert created["result"]["status"]["state"] == "input-required", created
    headers = {**JSON_HEADERS, "A2A-Version": "0.1"}
    full = await call(http, url, rpc("tasks/get", {"id": task_id}), headers)
    assert_schema("0.1", "GetTaskResponse", full)
    assert [m["role"] for m in full["result"]["history"]] == ["user", "agent"]
    last = await call(http, url, rpc("tasks/get", {"id": task_id, "historyLength": 1}), headers)
    assert_schema("0.1", "GetTaskResponse", last)
    assert last["result"]["history"] == full["result"]["history"][-1:]


async def test_get_unknown_task_is_task_not_found(http: httpx.AsyncClient, url: str) -> None:
    answer = await call(http, url, rpc("tasks/get", {"id": "no-such-task"}, request_id=3))
    assert answer["id"] == 3
    assert answer["error"]["code"] == -32001
    assert "no-such-task" in answer["error"]["message"]


async def test_get_answers_in_the_dialect_the_task_was_created_in(http: httpx.AsyncClient, url: str) -> None:
    v01_id = uid()
    await call(http, url, rpc("tasks/send", send01("made in 0.1", v01_id)))
    v03 = await call(http, url, rpc("message/send", send03("made in 0.3")))
    v03_id = v03["result"]["id"]

    as01 = (await call(http, url, rpc("tasks/get", {"id": v01_id})))["result"]
    assert_v01_task(as01)
    assert_schema("0.1", "Task", as01)
    as03 = await call(http, url, rpc("tasks/get", {"id": v03_id}))
    assert_schema("0.3", "GetTaskSuccessResponse", as03)
    assert as03["result"]["kind"] == "task" and "sessionId" not in as03["result"]
    assert as03["result"]["history"][0]["parts"] == [{"kind": "text", "text": "made in 0.3"}]


async def test_the_version_header_overrides_the_creating_dialect(http: httpx.AsyncClient, url: str) -> None:
    v01_id = uid()
    await call(http, url, rpc("tasks/send", send01("made in 0.1", v01_id, session_id="sess")))
    v03_id = (await call(http, url, rpc("message/send", send03("made in 0.3"))))["result"]["id"]

    as03 = await call(http, url, rpc("tasks/get", {"id": v01_id}), {**JSON_HEADERS, "A2A-Version": "0.3"})
    assert_schema("0.3", "GetTaskSuccessResponse", as03)
    assert as03["result"]["kind"] == "task" and as03["result"]["contextId"] == "sess"
    assert as03["result"]["artifacts"][0]["parts"] == [{"kind": "text", "text": "made in 0.1"}]

    as01 = await call(http, url, rpc("tasks/get", {"id": v03_id}), {**JSON_HEADERS, "A2A-Version": "0.1"})
    assert_schema("0.1", "GetTaskResponse", as01)
    assert_v01_task(as01["result"])
    assert as01["result"]["artifacts"][0]["parts"] == [{"type": "text", "text": "made in 0.3"}]


# ---------------------------------------------------------------------------------- tasks/cancel


async def test_cancel_stops_a_running_echo_task_promptly(http: httpx.AsyncClient, url: str) -> None:
    task_id = uid()
    body = rpc("tasks/sendSubscribe", send01("never gets echoed", task_id, delay_ms=5000), request_id="c")
    async with asyncio.timeout(10), open_stream(http, url, body) as reader:
        for _ in range(10):  # submitted, then working; the first word waits 5 s
            frame = await reader.next_event(5)
            assert frame is not None, "the stream ended before the task was working"
            if frame.result.get("status", {}).get("state") == "working":
                break
        started = time.monotonic()
        answer = await call(http, url, rpc("tasks/cancel", {"id": task_id}, request_id="x"))
        elapsed = time.monotonic() - started
        assert_schema("0.1", "CancelTaskResponse", answer)
        assert answer["result"]["id"] == task_id
        assert answer["result"]["status"]["state"] == "canceled", answer
        assert elapsed < 0.25, f"tasks/cancel of a sleeping echo task took {elapsed:.3f} s (echo stops within 100 ms)"
        # the open stream ends with a final canceled status, and no echoed word
        rest = await reader.rest(3)
    results = assert_v01_stream(rest, task_id, "c")
    assert results[-1]["status"]["state"] == "canceled"
    assert not any("artifact" in r for r in results), results
    got = await call(http, url, rpc("tasks/get", {"id": task_id}))
    assert got["result"]["status"]["state"] == "canceled"


async def test_cancel_of_a_finished_task_is_not_cancelable(http: httpx.AsyncClient, url: str) -> None:
    task_id = uid()
    await call(http, url, rpc("tasks/send", send01("done already", task_id)))
    answer = await call(http, url, rpc("tasks/cancel", {"id": task_id}, request_id=11))
    assert answer["id"] == 11 and "result" not in answer
    assert answer["error"]["code"] == -32002
    assert task_id in answer["error"]["message"] and "completed" in answer["error"]["message"]
    assert_schema("0.1", "CancelTaskResponse", answer)


async def test_cancel_of_an_unknown_task_is_task_not_found(http: httpx.AsyncClient, url: str) -> None:
    answer = await call(http, url, rpc("tasks/cancel", {"id": "missing-task"}, request_id=12))
    assert answer["id"] == 12
    assert answer["error"]["code"] == -32001
    assert "missing-task" in answer["error"]["message"]
    assert_schema("0.1", "CancelTaskResponse", answer)


# ------------------------------------------------------------------------------ tasks/resubscribe


async def test_resubscribe_to_a_running_task_continues_its_stream(http: httpx.AsyncClient, url: str) -> None:
    task_id, text = uid(), "one two three four five"
    first_body = rpc("tasks/sendSubscribe", send01(text, task_id, delay_ms=150), request_id="a")
    async with asyncio.timeout(15), open_stream(http, url, first_body) as first:
        seen = [await first.next_event(5) for _ in range(3)]  # submitted, working, "one "
        assert all(f is not None for f in seen)
        second = await read_stream(http, url, rpc("tasks/resubscribe", {"id": task_id}, request_id="b"), timeout=10)
        original = await first.rest(10)

    results = assert_v01_stream(second, task_id, "b")
    # it opens with the task's current status (not final), then the events still to come
    assert results[0]["status"]["state"] == "working" and results[0]["final"] is False
    assert results[-1]["status"]["state"] == "completed"
    # after its opening snapshot, every frame is the same event (same SSE id, same payload) as on the first stream
    by_id = {f.id: f.result for f in original.events}
    for frame in second.events[1:]:
        assert frame.id in by_id, f"event {frame.id} was never sent on the original stream"
        assert frame.result == by_id[frame.id]
    assert chunks_text(original.results) == text


async def test_resubscribe_to_a_finished_task_sends_its_final_status(http: httpx.AsyncClient, url: str) -> None:
    task_id = uid()
    await call(http, url, rpc("tasks/send", send01("all done", task_id)))
    stream = await read_stream(http, url, rpc("tasks/resubscribe", {"id": task_id}, request_id=5), timeout=5)
    results = assert_v01_stream(stream, task_id, 5)
    assert len(results) == 1 and results[0]["status"]["state"] == "completed", results


async def test_resubscribe_to_an_unknown_task_is_task_not_found(http: httpx.AsyncClient, url: str) -> None:
    # a 0.x streaming method answers even its error as SSE: one event carrying the JSON-RPC error (the 0.3 suite)
    stream = await read_stream(http, url, rpc("tasks/resubscribe", {"id": "ghost"}, request_id=1), timeout=5)
    assert stream.headers["content-type"].startswith("text/event-stream"), stream.headers
    [event] = stream.events
    assert event.json()["id"] == 1 and event.json()["error"]["code"] == -32001, event.raw


# ------------------------------------------------------------------------- push notifications


HOOK = "http://127.0.0.1:9/hook"  # allow-listed loopback, nothing listens: delivery retries, never leaves the host


async def test_push_notification_set_and_get(http: httpx.AsyncClient, url: str) -> None:
    task_id = uid()
    await call(http, url, rpc("tasks/send", send01("hooked later", task_id)))
    config = {"url": HOOK, "token": "t-1", "authentication": {"schemes": ["Bearer"], "credentials": "c"}}
    answer = await call(http, url, rpc("tasks/pushNotification/set", {"id": task_id, "pushNotificationConfig": config},
                                       request_id=21))  # fmt: skip
    assert answer["id"] == 21 and answer["result"]["id"] == task_id
    assert answer["result"]["pushNotificationConfig"] == config
    assert_schema("0.1", "SetTaskPushNotificationResponse", answer)
    got = await call(http, url, rpc("tasks/pushNotification/get", {"id": task_id}))
    assert got["result"]["pushNotificationConfig"] == config
    assert got["result"]["delivery"]["state"] in ("active", "done")
    assert_schema("0.1", "GetTaskPushNotificationResponse", got)
    missing = await call(http, url, rpc("tasks/pushNotification/get", {"id": "no-such-task"}))
    assert missing["error"]["code"] == -32001


async def test_a_send_with_a_push_notification_config(http: httpx.AsyncClient, url: str) -> None:
    params = {**send01("with a hook"), "pushNotification": {"url": HOOK}}
    answer = await call(http, url, rpc("tasks/send", params))
    assert answer["result"]["status"]["state"] == "completed"
    got = await call(http, url, rpc("tasks/pushNotification/get", {"id": params["id"]}))
    assert got["result"]["pushNotificationConfig"] == {"url": HOOK}
    refused = {**send01("hook outside the allow-list"), "pushNotification": {"url": "http://10.9.9.9/hook"}}
    error = (await call(http, url, rpc("tasks/send", refused)))["error"]
    assert error["code"] == -32602 and error["message"].startswith("Invalid params: pushNotification.url: ")
