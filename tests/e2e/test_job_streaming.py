"""Job-style streaming requests (issue 9): a task-creating method on /a2a streams when the request asks for SSE
(``Accept: text/event-stream``) or says ``"stream": true``; the token stream waits briefly for a task id to exist."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.e2e.wire import JSON, JSON_HEADERS, V10_HEADERS, call, open_stream, read_stream, rpc, send01, send03, send10

SSE = {"Accept": "text/event-stream"}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as c:
        yield c


@pytest.fixture
def url(server: ServerProcess) -> str:
    return f"{server.url}/a2a"


def _streamed(params: JSON) -> JSON:
    return {**params, "stream": True}


@pytest.mark.parametrize(
    ("method", "params", "headers"),
    [
        ("tasks/send", send01("a b c", skill="echo"), {**JSON_HEADERS, **SSE}),
        ("message/send", send03("a b c", skill="echo"), {**JSON_HEADERS, **SSE}),
        ("SendMessage", send10("a b c", skill="echo"), {**V10_HEADERS, **SSE}),
        ("tasks/send", _streamed(send01("a b c", skill="echo")), JSON_HEADERS),
        ("message/send", _streamed(send03("a b c", skill="echo")), JSON_HEADERS),
        ("SendMessage", _streamed(send10("a b c", skill="echo")), V10_HEADERS),
    ],
    ids=["0.1 accept", "0.3 accept", "1.0 accept", "0.1 stream:true", "0.3 stream:true", "1.0 stream:true"],
)
async def test_a_send_that_asks_for_sse_is_answered_with_its_stream(
    http: httpx.AsyncClient, url: str, method: str, params: JSON, headers: dict[str, str]
) -> None:
    stream = await read_stream(http, url, rpc(method, params), headers)
    assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream"), stream.status
    results = stream.results
    assert len(results) >= 3, results  # the task, its chunks, the final status
    text = "".join(
        p.get("text", "")
        for r in results
        for p in (r.get("artifact") or r.get("artifactUpdate", {}).get("artifact") or {}).get("parts", [])
    )
    assert text.replace(" ", "") == "abc", results
    last = results[-1]
    state = last["statusUpdate"]["status"]["state"] if "statusUpdate" in last else last["status"]["state"]
    assert state in ("completed", "TASK_STATE_COMPLETED"), last


async def test_accepting_json_and_sse_keeps_the_json_answer(http: httpx.AsyncClient, url: str) -> None:
    headers = {**JSON_HEADERS, "Accept": "application/json, text/event-stream"}
    answer = await call(http, url, rpc("message/send", send03("plain", skill="echo")), headers)
    assert answer["result"]["status"]["state"] == "completed", answer


async def test_the_token_stream_waits_for_a_task_that_is_sent_after_it(
    http: httpx.AsyncClient, server: ServerProcess, url: str
) -> None:
    """Bug: the README's example raced (the stream asked before the task existed: task_not_found).
    Fix: the stream of an unknown id waits a few seconds for the task to be created."""
    params = send01("hello streaming world", skill="echo", delay_ms=20)
    request = http.build_request("GET", f"{server.url}/a2a/tasks/{params['id']}/stream")
    streaming = asyncio.ensure_future(http.send(request, stream=True))
    await asyncio.sleep(0.2)  # the stream request is in first (ordering only; the test does not depend on speed)
    assert not streaming.done()
    await call(http, url, rpc("tasks/send", params))
    response = await asyncio.wait_for(streaming, 10)
    try:
        body = (await asyncio.wait_for(response.aread(), 10)).decode()
    finally:
        await response.aclose()
    assert response.status_code == 200, body
    assert "hello" in body and body.rstrip().endswith("data: [DONE]"), body


async def test_the_token_stream_of_an_id_that_never_appears_is_404(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    response = await http.get(f"{server.url}/a2a/tasks/never-{id(http)}/stream", timeout=15)
    assert response.status_code == 404 and response.json()["error"] == "task_not_found"


async def test_a_job_style_stream_opened_with_open_stream_reads_to_the_end(http: httpx.AsyncClient, url: str) -> None:
    async with open_stream(http, url, rpc("message/send", _streamed(send03("x y", skill="echo")))) as reader:
        rest = await reader.rest(10)
    assert rest.results[-1]["final"] is True
