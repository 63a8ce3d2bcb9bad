"""The official ``openai`` client drives /v1 of a real server on loopback.

The server runs the test skill ``words`` (tests/e2e/fake_models.py: models that echo the last user turn word
by word, load slowly, queue, or break) next to ``echo``; the ``model``-marked tests at the end start a second
server with the real inference skill. Each completion is an A2A task: the tests follow its
``X-A2A-Task-Id`` into tasks/get, tasks/cancel and the plain token stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from tests.conftest import ServerProcess, start_server, stop_server

# Every wait here is bounded: a server bug must fail a test, never hang CI.
TIMEOUT = 10.0
TEXT = "hello streaming world of tokens"


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


USER = user(TEXT)


@pytest.fixture(scope="module")
def words_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    skills = "tests.e2e.fake_models:WordsSkill,echo"
    srv = start_server(tmp_path_factory.mktemp("openai"), "--keepalive-seconds", "0.2", skills=skills)
    yield srv
    stop_server(srv)


@pytest.fixture
async def client(words_server: ServerProcess) -> AsyncIterator[AsyncOpenAI]:
    # no retries: a 5xx must reach the test as it is, not as a second task
    async with AsyncOpenAI(base_url=f"{words_server.url}/v1", api_key="unused", max_retries=0, timeout=TIMEOUT) as c:
        yield c


@pytest.fixture
async def http(words_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=words_server.url, timeout=TIMEOUT) as c:
        yield c


async def a2a(http: httpx.AsyncClient, method: str, task_id: str) -> dict[str, Any]:
    """tasks/get or tasks/cancel over A2A (0.3 JSON-RPC); the task."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"id": task_id}}
    answer = (await http.post("/a2a", json=body)).json()
    assert "result" in answer, answer
    result: dict[str, Any] = answer["result"]
    return result


async def wait_state(http: httpx.AsyncClient, task_id: str, *states: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        task = await a2a(http, "tasks/get", task_id)
        if task["status"]["state"] in states:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never reached {states}: {task}")


def artifact_text(task: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for a in task.get("artifacts", []) for p in a["parts"])


async def sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data:`` of each SSE frame; ``:`` comments come through as ``": <comment>"``."""
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield line.removeprefix("data: ")
        elif line.startswith(":"):
            yield ": " + line[1:].strip()


# --------------------------------------------------------------------------- models


async def test_models_lists_what_the_skills_serve(client: AsyncOpenAI) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == ["words", "words-slow", "words-queue", "words-broken"]
    assert {m.object for m in models.data} == {"model"} and {m.owned_by for m in models.data} == {"tests"}
    assert (await client.models.retrieve("words-slow")).id == "words-slow"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("gpt-4o")


# --------------------------------------------------------------------------- completions


async def test_completion_answers_with_usage(client: AsyncOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": "be brief"}, *USER]
    completion = await client.chat.completions.create(model="words", messages=messages, temperature=0, seed=7)
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == TEXT
    assert choice.finish_reason == "stop" and completion.model == "words"
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        7,
        5,
        12,
    )


async def test_max_completion_tokens_ends_with_length(client: AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="words", messages=USER, max_completion_tokens=2)
    assert completion.choices[0].message.content == "hello streaming"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 2


async def test_stream_with_usage(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="words-slow",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks: list[ChatCompletionChunk] = []
    async with asyncio.timeout(TIMEOUT):
        async for chunk in stream:
            chunks.append(chunk)
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    first, *middle, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in middle) == TEXT
    assert len(middle) == 5  # one chunk per word, as the skill yields them
    assert [c.choices[0].finish_reason for c in [first, *middle]] == [None] * 6
    assert finish.choices[0].finish_reason == "stop" and finish.choices[0].delta.content is None
    assert usage.choices == [] and usage.usage is not None and usage.usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_without_usage_has_no_usage_chunk(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="words", messages=USER, stream=True)
    async with asyncio.timeout(TIMEOUT):
        chunks = [c async for c in stream]
    assert all(c.choices for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT


async def test_accept_header_streams_with_keepalives_then_done(http: httpx.AsyncClient) -> None:
    """No "stream" in the body: Accept picks SSE. words-slow loads for 0.6 s; keepalives (0.2 s) fill the wait."""
    body = {"model": "words-slow", "messages": USER}
    headers = {"Accept": "text/event-stream"}
    async with asyncio.timeout(TIMEOUT), http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        frames = [d async for d in sse_data(r)]
    first_content = next(i for i, d in enumerate(frames) if '"content":"hello"' in d)
    assert any(d.startswith(": ") for d in frames[:first_content]), frames  # keepalive comments while loading
    data = [d for d in frames if not d.startswith(": ")]
    assert data[-1] == "[DONE]" and data.count("[DONE]") == 1
    chunks = [json.loads(d) for d in data[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == TEXT


# --------------------------------------------------------------------------- errors


async def test_unknown_model_is_404(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert caught.value.status_code == 404
    assert caught.value.body == {
        "message": "The model 'gpt-4o' does not exist here; models: words, words-slow, words-queue, words-broken",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"temperature": 5}, "temperature"),  # the skill's own validation (-32602), named by its OpenAI name
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"n": 2}, "n"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content",
        ),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ],
)
async def test_bad_parameter_is_400_naming_it(client: AsyncOpenAI, params: dict[str, Any], param: str) -> None:
    request: dict[str, Any] = {"model": "words", "messages": USER, **params}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(**request)
    assert caught.value.status_code == 400
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == param, caught.value.body
    assert caught.value.body["type"] == "invalid_request_error" and caught.value.body["message"]


async def test_queue_full_is_503_with_retry_after(client: AsyncOpenAI, http: httpx.AsyncClient) -> None:
    """words-queue has one slot and one waiting place: with both taken, the next task is rejected "queue full"."""
    create = client.chat.completions.with_raw_response.create
    running = await create(model="words-queue", messages=user("word " * 40), stream=True)
    waiting = await create(model="words-queue", messages=user("word " * 40), stream=True)
    ids = [r.headers["X-A2A-Task-Id"] for r in (running, waiting)]
    try:
        deadline = time.monotonic() + TIMEOUT
        while "queued" not in json.dumps((await a2a(http, "tasks/get", ids[1]))["status"]):
            assert time.monotonic() < deadline, "the second task never queued"
            await asyncio.sleep(0.05)
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model="words-queue", messages=USER)
        assert caught.value.status_code == 503 and caught.value.response.headers["Retry-After"] == "1"
        assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "queue_full"
        assert caught.value.body["message"].startswith("queue full")
        rejected = caught.value.response.headers["X-A2A-Task-Id"]
        assert (await a2a(http, "tasks/get", rejected))["status"]["state"] == "rejected"
        # streaming: the rejection comes before the first word, so it still gets its HTTP status
        with pytest.raises(openai.InternalServerError) as streamed:
            await client.chat.completions.create(model="words-queue", messages=USER, stream=True)
        assert streamed.value.status_code == 503
        assert isinstance(streamed.value.body, dict) and streamed.value.body["code"] == "queue_full"
    finally:
        for task_id in ids:  # no assertion here: a failure above must not be hidden by the cleanup
            await http.post(
                "/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "tasks/cancel", "params": {"id": task_id}}
            )
        for raw in (running, waiting):
            await raw.http_response.aclose()


async def test_failure_mid_stream_is_an_error_event(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="words-broken", messages=USER, stream=True)
    texts: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        async with asyncio.timeout(TIMEOUT):
            async for chunk in stream:
                texts.append(chunk.choices[0].delta.content or "")
    assert "".join(texts) == "hello"
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "task_failed"
    assert "RuntimeError: words-broken broke after 1 word" in caught.value.body["message"]
    with pytest.raises(openai.InternalServerError) as whole:
        await client.chat.completions.create(model="words-broken", messages=USER)
    assert whole.value.status_code == 500 and whole.value.response.headers["x-should-retry"] == "false"


# --------------------------------------------------------------------------- the same work over A2A


async def test_task_id_header_leads_to_the_completed_task(client: AsyncOpenAI, http: httpx.AsyncClient) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="words", messages=USER)
    completion = raw.parse()
    task_id = raw.headers["X-A2A-Task-Id"]
    assert completion.id == f"chatcmpl-{task_id}"
    task = await a2a(http, "tasks/get", task_id)
    assert task["id"] == task_id and task["status"]["state"] == "completed"
    assert artifact_text(task) == completion.choices[0].message.content == TEXT
    assert task["metadata"]["usage"]["completion_tokens"] == 5
    # and the plain token stream replays the same text
    async with asyncio.timeout(TIMEOUT), http.stream("GET", f"/a2a/tasks/{task_id}/stream") as r:
        data = [d async for d in sse_data(r) if not d.startswith(": ")]
    assert "".join(json.loads(d)["text"] for d in data[:-2]) == TEXT and data[-1] == "[DONE]"
    assert json.loads(data[-2])["usage"] == task["metadata"]["usage"]  # the usage, cost included, before [DONE]


async def test_cancel_over_a2a_ends_the_stream_with_an_error(client: AsyncOpenAI, http: httpx.AsyncClient) -> None:
    create = client.chat.completions.with_raw_response.create
    raw = await create(model="words-slow", messages=user("word " * 40), stream=True)
    task_id = raw.headers["X-A2A-Task-Id"]
    texts: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        async with asyncio.timeout(TIMEOUT):
            async for chunk in raw.parse():
                texts.append(chunk.choices[0].delta.content or "")
                if len(texts) == 3:  # the role chunk and two words
                    assert (await a2a(http, "tasks/cancel", task_id))["status"]["state"] == "canceled"
    assert "".join(texts).split() == ["word"] * (len(texts) - 1)
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "task_canceled"


async def test_client_disconnect_does_not_cancel_the_task(http: httpx.AsyncClient) -> None:
    body = {"model": "words-slow", "messages": USER, "stream": True}
    async with asyncio.timeout(TIMEOUT), http.stream("POST", "/v1/chat/completions", json=body) as r:
        task_id = r.headers["X-A2A-Task-Id"]
        async for data in sse_data(r):
            if '"content":"hello"' in data:
                break  # leave with the rest unread: the response closes, the connection drops
    task = await wait_state(http, task_id, "completed", "canceled", "failed")
    assert task["status"]["state"] == "completed" and artifact_text(task) == TEXT


# --------------------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("openai-model"), skills="inference", env={"A2A_INFERENCE_POOL": "1"})
    try:
        deadline = time.monotonic() + 120
        while httpx.get(f"{srv.url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, f"the model did not load within 120 s:\n{srv.log()}"
            time.sleep(0.2)
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture
async def model_client(model_server: ServerProcess) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=f"{model_server.url}/v1", api_key="unused", max_retries=0, timeout=60) as c:
        yield c


PARIS = user("What is the capital of France? Answer in one sentence.")


@pytest.mark.model
async def test_real_model_completion(model_client: AsyncOpenAI) -> None:
    ids = [m.id for m in (await model_client.models.list()).data]
    assert "smollm2-135m" in ids
    completion = await model_client.chat.completions.create(
        model="smollm2-135m",
        messages=PARIS,
        temperature=0,
        max_tokens=48,
    )
    assert "Paris" in (completion.choices[0].message.content or ""), completion
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens > 20


@pytest.mark.model
async def test_real_model_stream_with_usage_and_length(model_client: AsyncOpenAI) -> None:
    stream = await model_client.chat.completions.create(
        model="smollm2-135m", messages=PARIS, temperature=0, max_completion_tokens=4, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    async with asyncio.timeout(60):
        chunks = [c async for c in stream]
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()


@pytest.mark.model
async def test_real_model_bad_parameter(model_client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await model_client.chat.completions.create(model="smollm2-135m", messages=PARIS, top_p=0)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "top_p"
