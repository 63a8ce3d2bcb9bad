"""GET /a2a/tasks/{id}/stream on a real server, with raw httpx: what ``curl -N`` sees.

Tasks are submitted the way the README shows: ``tasks/send`` in the 0.1 short form
(``{"task": {"skill": "echo", "id": …, "input": …, "metadata": {"delay_ms": …}}}``); echo streams the input
back one word per artifact chunk, so the texts of a clean stream concatenate to the input exactly.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from a2a_server import Message, Part, Role, Settings, TaskState, create_app
from a2a_server.dialects.base import SendRequest
from a2a_server.http.tokens import chunk_text, follow
from a2a_server.service import TaskService
from tests.conftest import ServerProcess, start_server, stop_server

# Every wait here is bounded: a server bug must fail a test, never hang CI.
TIMEOUT = 10.0
TEXT = "the quick brown fox jumps over the lazy dog"


@pytest.fixture(scope="module")
def stream_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    skills = "echo,tests.e2e.fake_models:WordsSkill"
    srv = start_server(tmp_path_factory.mktemp("tokens"), "--keepalive-seconds", "0.2", skills=skills)
    yield srv
    stop_server(srv)


@pytest.fixture
async def http(stream_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stream_server.url, timeout=TIMEOUT) as c:
        yield c


@dataclass
class Frame:
    id: str | None
    data: str | None  # None: a comment (keepalive)

    @property
    def text(self) -> str | None:
        if self.data is None or self.data == "[DONE]":
            return None
        text = json.loads(self.data).get("text")
        return text if isinstance(text, str) else None


class Reader:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.frames: list[Frame] = []

    async def next(self) -> Frame | None:
        """The next frame (data or comment); None once the server closed the stream."""
        event_id, data, comment = None, None, False
        async for line in self._lines:
            if line:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if not name:
                    comment = True
                elif name == "id":
                    event_id = value
                elif name == "data":
                    data = value if data is None else f"{data}\n{value}"
                continue
            if data is not None or event_id is not None or comment:
                self.frames.append(Frame(event_id, data))
                return self.frames[-1]
        return None

    async def next_data(self) -> Frame | None:
        while (frame := await self.next()) is not None and frame.data is None:
            pass
        return frame

    async def rest(self) -> list[Frame]:
        while await self.next() is not None:
            pass
        return [f for f in self.frames if f.data is not None]


@asynccontextmanager
async def token_stream(
    http: httpx.AsyncClient, task_id: str, last_event_id: str | None = None
) -> AsyncIterator[Reader]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with asyncio.timeout(TIMEOUT), http.stream("GET", f"/a2a/tasks/{task_id}/stream", headers=headers) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["X-A2A-Task-Id"] == task_id
        yield Reader(r)


async def rpc(http: httpx.AsyncClient, method: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = (await http.post("/a2a", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})).json()
    assert "result" in answer, answer
    result: dict[str, Any] = answer["result"]
    return result


def send(task_id: str, text: str = TEXT, skill: str = "echo", **metadata: Any) -> dict[str, Any]:
    """tasks/send params in the 0.1 short form."""
    return {"task": {"skill": skill, "id": task_id, "input": text, "metadata": metadata}}


async def started(http: httpx.AsyncClient, params: dict[str, Any]) -> asyncio.Task[dict[str, Any]]:
    """Run a blocking tasks/send in the background; return once the task exists (its id is the client's)."""
    sending = asyncio.create_task(rpc(http, "tasks/send", params))
    task_id = params["task"]["id"]
    probe = {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": task_id}}
    deadline = time.monotonic() + TIMEOUT
    while "result" not in (await http.post("/a2a", json=probe)).json():
        assert time.monotonic() < deadline and not sending.done(), "the task never appeared"
        await asyncio.sleep(0.02)
    return sending


def texts(frames: list[Frame]) -> list[str]:
    return [t for f in frames if (t := f.text) is not None]


# --------------------------------------------------------------------------- clean finish


async def test_running_task_replays_then_follows_live(http: httpx.AsyncClient) -> None:
    task_id = uuid.uuid4().hex
    sending = await started(http, send(task_id, delay_ms=100))
    async with token_stream(http, task_id) as reader:
        first = await reader.next_data()
        assert first is not None and first.text is not None
        assert not sending.done()  # the first word came while the task was still running
        frames = await reader.rest()
    assert "".join(texts(frames)) == TEXT
    assert frames[-1].data == "[DONE]" and [f.data for f in frames].count("[DONE]") == 1
    ids = [int(str(f.id).rpartition(":")[2]) for f in frames]
    assert all(str(f.id).startswith(f"{task_id}:") for f in frames)
    assert ids == sorted(ids) and len(set(ids[:-1])) == len(ids) - 1
    assert (await asyncio.wait_for(sending, TIMEOUT))["status"]["state"] == "completed"


async def test_finished_task_replays_everything(http: httpx.AsyncClient) -> None:
    task = await rpc(http, "tasks/send", send(uuid.uuid4().hex))
    assert task["status"]["state"] == "completed"
    async with token_stream(http, task["id"]) as reader:
        frames = await reader.rest()
    assert texts(frames) == ["the ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog"]
    assert frames[-1].data == "[DONE]"


async def test_keepalive_comments_while_the_task_waits(http: httpx.AsyncClient) -> None:
    """words-slow says "loading model" for 0.6 s before its first word; the 0.2 s keepalive fills the silence."""
    task_id = uuid.uuid4().hex
    sending = await started(http, send(task_id, "a b", skill="words", model="words-slow"))
    async with token_stream(http, task_id) as reader:
        frames = await reader.rest()
    assert texts(frames) == ["a", " b"] and frames[-1].data == "[DONE]"
    first_text = next(i for i, f in enumerate(reader.frames) if f.text)
    assert any(f.data is None for f in reader.frames[:first_text]), reader.frames
    await asyncio.wait_for(sending, TIMEOUT)


# --------------------------------------------------------------------------- no [DONE] unless completed


async def test_canceled_task_ends_with_an_error_and_no_done(http: httpx.AsyncClient) -> None:
    task_id = uuid.uuid4().hex
    sending = await started(http, send(task_id, delay_ms=200))
    async with token_stream(http, task_id) as reader:
        assert await reader.next_data() is not None
        assert (await rpc(http, "tasks/cancel", {"id": task_id}))["status"]["state"] == "canceled"
        frames = await reader.rest()
    assert "[DONE]" not in [f.data for f in frames]
    assert TEXT.startswith("".join(texts(frames))) and len("".join(texts(frames))) < len(TEXT)
    last = json.loads(str(frames[-1].data))
    assert last["error"] == "canceled" and last["message"]
    await asyncio.wait_for(sending, TIMEOUT)


async def test_failed_task_ends_with_its_error(http: httpx.AsyncClient) -> None:
    task = await rpc(http, "tasks/send", send(uuid.uuid4().hex, "a b c", skill="words", model="words-broken"))
    async with token_stream(http, task["id"]) as reader:
        frames = await reader.rest()
    assert texts(frames) == ["a"]
    assert json.loads(str(frames[-1].data)) == {
        "error": "failed",
        "message": "RuntimeError: words-broken broke after 1 word",
    }


# --------------------------------------------------------------------------- resume


async def test_last_event_id_resumes_after_that_event(http: httpx.AsyncClient) -> None:
    task = await rpc(http, "tasks/send", send(uuid.uuid4().hex))
    async with token_stream(http, task["id"]) as reader:
        whole = await reader.rest()
    for cursor in (str(whole[1].id), str(whole[1].id).rpartition(":")[2]):  # "<task>:<n>", or a bare n
        async with token_stream(http, task["id"], cursor) as reader:
            rest = await reader.rest()
        assert texts(rest) == texts(whole)[2:] and rest[-1].data == "[DONE]"
    async with token_stream(http, task["id"], str(whole[-1].id)) as reader:
        assert [f.data for f in await reader.rest()] == ["[DONE]"]  # after the end: only how it ended


async def test_dropped_stream_resumes_live(http: httpx.AsyncClient) -> None:
    task_id = uuid.uuid4().hex
    sending = await started(http, send(task_id, delay_ms=100))
    async with token_stream(http, task_id) as reader:
        seen = [await reader.next_data(), await reader.next_data()]
    last_id = str(seen[-1].id if seen[-1] is not None else None)
    async with token_stream(http, task_id, last_id) as reader:
        rest = await reader.rest()
    assert "".join(texts([f for f in seen if f is not None]) + texts(rest)) == TEXT
    assert rest[-1].data == "[DONE]"
    await asyncio.wait_for(sending, TIMEOUT)


# --------------------------------------------------------------------------- errors


async def test_unknown_task_is_404_json(http: httpx.AsyncClient) -> None:
    r = await http.get("/a2a/tasks/no-such-task/stream", headers={"Accept": "text/event-stream"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    assert r.json() == {"error": "task_not_found", "message": "Task not found: no-such-task"}


@pytest.mark.parametrize("cursor", ["x", "-1", "999", "other-task:1"])
async def test_bad_last_event_id_is_400(http: httpx.AsyncClient, cursor: str) -> None:
    task = await rpc(http, "tasks/send", send(uuid.uuid4().hex))
    r = await http.get(f"/a2a/tasks/{task['id']}/stream", headers={"Last-Event-ID": cursor})
    assert r.status_code == 400 and r.json()["error"] == "invalid_last_event_id", r.text


# --------------------------------------------------------------------------- a slow reader


async def test_follow_outlasts_a_dropped_subscription() -> None:
    """Bug: ``Engine.events`` ends early when a reader falls a bus buffer behind, so a slow curl lost the end
    (and a reader dropped before its first event, of a task that then finished, got nothing at all).
    Fix: ``follow`` (``TaskService.events``) follows again from the log after the last event it delivered."""
    app = create_app(Settings(skills=["echo"], subscriber_buffer=2, store="memory"))
    async with app.router.lifespan_context(app):
        service: TaskService = app.state.a2a.service
        message = Message(role=Role.USER, parts=[Part.of_text(TEXT)])
        task = (await service.submit(SendRequest(message, skill="echo"), "0.3")).task
        events = follow(service, task.id)
        first = await anext(events)  # subscribed; now fall behind while the whole task runs
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while (await service.get(task.id)).status.state != TaskState.COMPLETED:
            assert asyncio.get_running_loop().time() < deadline, "the task did not complete"
            await asyncio.sleep(0.01)
        rest = [logged async for logged in events]
    logged = [first, *rest]
    assert "".join(chunk_text(e.event) for e in logged) == TEXT
    assert [e.id for e in logged] == list(range(1, len(logged) + 1)) and logged[-1].event.settles
