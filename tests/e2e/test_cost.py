"""``usage.cost`` on every face, and the plain stream's three shapes (``?format=text|token|typed``), on a real server.

The ``words`` fake follows the inference skill's contract and prices its runs (``PRICE_PROMPT`` per prompt word,
``PRICE_COMPLETION`` per completion word), so each expected cost below is computed from the words sent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, start_server, stop_server
from tests.e2e.cli_harness import run_cli
from tests.e2e.fake_models import PRICE_COMPLETION, PRICE_PROMPT

TIMEOUT = 15.0
TEXT = "one two three four"
COST = str(4 * PRICE_PROMPT + 4 * PRICE_COMPLETION)


@pytest.fixture(scope="module")
def priced_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("cost"), skills="tests.e2e.fake_models:WordsSkill,echo")
    yield srv
    stop_server(srv)


@pytest.fixture
async def http(priced_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=priced_server.url, timeout=TIMEOUT) as c:
        yield c


async def rpc(http: httpx.AsyncClient, method: str, params: dict[str, Any], version: str | None = None) -> Any:
    headers = {"A2A-Version": version} if version else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = (await http.post("/a2a", json=body, headers=headers)).json()
    assert "result" in reply, reply
    return reply["result"]


async def send_words(http: httpx.AsyncClient, text: str = TEXT) -> str:
    """A finished ``words`` task (0.1 short form, blocking); its id."""
    task_id = uuid.uuid4().hex
    task = {"skill": "words", "id": task_id, "input": text}
    result = await rpc(http, "tasks/send", {"task": task})
    assert result["status"]["state"] == "completed", result
    return task_id


async def data_frames(http: httpx.AsyncClient, url: str) -> list[str]:
    frames = []
    async with http.stream("GET", url) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                frames.append(line.removeprefix("data: "))
    return frames


async def test_tasks_get_shows_the_cost_in_every_dialect(http: httpx.AsyncClient) -> None:
    task_id = await send_words(http)
    v01 = await rpc(http, "tasks/get", {"id": task_id}, "0.1")
    v03 = await rpc(http, "tasks/get", {"id": task_id}, "0.3")
    v10 = await rpc(http, "GetTask", {"id": task_id})
    rest = (await http.get(f"/a2a/rest/tasks/{task_id}", headers={"A2A-Version": "1.0"})).json()
    for shown in (v01, v03, v10, rest):
        usage = shown["metadata"]["usage"]
        assert usage["cost"] == COST and isinstance(usage["cost"], str), shown
        assert usage["completion_tokens"] == 4


async def test_the_openai_usage_object_carries_the_cost(http: httpx.AsyncClient) -> None:
    body = {"model": "words", "messages": [{"role": "user", "content": TEXT}]}
    whole = (await http.post("/v1/chat/completions", json=body)).json()
    assert whole["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8, "cost": COST}
    streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
    frames = []
    async with http.stream("POST", "/v1/chat/completions", json=streamed) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                frames.append(line.removeprefix("data: "))
    assert frames[-1] == "[DONE]"
    assert json.loads(frames[-2])["usage"]["cost"] == COST


async def test_metrics_count_the_cost_by_model(http: httpx.AsyncClient) -> None:
    def counted(text: str) -> float:
        line = next((x for x in text.splitlines() if x.startswith('a2a_cost_total{model="words"}')), None)
        return 0.0 if line is None else float(line.split()[-1])

    before = counted((await http.get("/metrics")).text)
    await send_words(http)
    after = counted((await http.get("/metrics")).text)
    assert after - before == int(COST)


async def test_text_stream_ends_with_usage_then_done(http: httpx.AsyncClient) -> None:
    task_id = await send_words(http)
    frames = await data_frames(http, f"/a2a/tasks/{task_id}/stream")
    assert frames[-1] == "[DONE]"
    assert json.loads(frames[-2])["usage"]["cost"] == COST
    assert "".join(json.loads(f)["text"] for f in frames[:-2]) == TEXT


async def test_token_format_is_the_seeds_curl_shape(http: httpx.AsyncClient) -> None:
    task_id = await send_words(http)
    frames = await data_frames(http, f"/a2a/tasks/{task_id}/stream?format=token")
    assert frames[-1] == "[DONE]"
    assert json.loads(frames[-2]) == {
        "usage": {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8, "finish_reason": "stop", "cost": COST}
    }
    assert [json.loads(f) for f in frames[:-2]] == [{"token": w} for w in ("one", " two", " three", " four")]


async def test_typed_format_ends_with_done_and_usage(http: httpx.AsyncClient) -> None:
    task_id = await send_words(http)
    frames = [json.loads(f) for f in await data_frames(http, f"/a2a/tasks/{task_id}/stream?format=typed")]
    assert frames[:-1] == [{"type": "token", "content": w} for w in ("one", " two", " three", " four")]
    assert frames[-1] == {
        "type": "done",
        "finishReason": "stop",
        "usage": {"promptTokens": 4, "completionTokens": 4, "totalTokens": 8, "cost": COST},
    }


async def test_typed_format_of_a_canceled_task_is_an_error_event(http: httpx.AsyncClient) -> None:
    message = {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "a b c d e f g h"}],
               "metadata": {"skill": "echo", "delay_ms": 300}}  # fmt: skip
    sent = await rpc(http, "SendMessage", {"message": message, "configuration": {"returnImmediately": True}})
    task_id = sent["task"]["id"]
    await rpc(http, "CancelTask", {"id": task_id})
    frames = [json.loads(f) for f in await data_frames(http, f"/a2a/tasks/{task_id}/stream?format=typed")]
    assert frames[-1]["type"] == "error" and frames[-1]["error"] == "canceled"
    assert frames[-1]["usage"]["cost"] == "0"


async def test_unknown_format_is_400_naming_the_three(http: httpx.AsyncClient) -> None:
    task_id = await send_words(http)
    response = await http.get(f"/a2a/tasks/{task_id}/stream?format=xml")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_format"
    assert all(name in body["message"] for name in ("text", "token", "typed")) and "xml" in body["message"]


def test_the_cli_final_line_shows_the_cost(priced_server: ServerProcess) -> None:
    for flags in ([], ["--stream"]):
        r = run_cli("send", priced_server.url, TEXT, "--skill", "words", "--plain", *flags)
        assert r.returncode == 0, r.stderr
        last = r.stdout.splitlines()[-1]
        assert last.startswith("usage: ") and f"cost={COST}" in last, r.stdout


async def test_an_openai_completion_on_a_billing_channel_costs_its_tokens(http: httpx.AsyncClient) -> None:
    channel = await rpc(http, "OpenChannel", {"deposit": "30", "tokenRate": "10"})
    body = {"model": "words", "messages": [{"role": "user", "content": TEXT}], "metadata": {"channel": channel["id"]}}
    whole = (await http.post("/v1/chat/completions", json=body)).json()
    # four words, but the channel pays for three: the answer is cut short like max_tokens would
    assert whole["usage"]["completion_tokens"] == 3 and whole["usage"]["cost"] == "30"
    assert whole["choices"][0]["finish_reason"] == "length"
    refused = await http.post("/v1/chat/completions", json=body)  # nothing left for one more token
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "metadata.channel"
