"""A stand-in for the server's firehose, ``GET /a2a/events``, for tests/a2a_client/test_events.py.

It serves the contract the real endpoint is built to (text/event-stream; ``id: <global cursor>``;
``data: <one A2A 1.0 StreamResponse>``; ``: ping`` keepalives; ``Last-Event-ID`` resumes exactly after
that cursor; the filters ``contextId``, ``skill``, ``state``; HTTP 400 with ``{"error", "message"}``
for an unknown state) over a fixed log of events, on a real uvicorn on 127.0.0.1 in a thread. It
records every request, and can hang up on the first streams to prove that the client resumes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import free_port

STATES = [
    "TASK_STATE_SUBMITTED",
    "TASK_STATE_WORKING",
    "TASK_STATE_INPUT_REQUIRED",
    "TASK_STATE_AUTH_REQUIRED",
    "TASK_STATE_COMPLETED",
    "TASK_STATE_CANCELED",
    "TASK_STATE_FAILED",
    "TASK_STATE_REJECTED",
]


@dataclass(frozen=True)
class Logged:
    """One event of the log: its cursor, what the filters look at, and the StreamResponse itself."""

    cursor: int
    context: str
    skill: str
    state: str  # the task's state once this event happened
    body: dict[str, Any]


def _status(task: str, ctx: str, state: str, text: str | None = None, **extra: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"state": state, "timestamp": "2026-01-01T00:00:00Z"}
    if text:
        status["message"] = {"messageId": f"m-{task}", "role": "ROLE_AGENT", "parts": [{"text": text}]}
    return {"statusUpdate": {"taskId": task, "contextId": ctx, "status": status, **extra}}


def _chunk(task: str, ctx: str, text: str, *, append: bool, last: bool = False) -> dict[str, Any]:
    artifact = {"artifactId": f"a-{task}", "name": "answer", "parts": [{"text": text}]}
    update = {"taskId": task, "contextId": ctx, "artifact": artifact, "append": append, "lastChunk": last}
    return {"artifactUpdate": update}


# two tasks in two contexts, interleaved; the cursors are global, so a filtered stream skips some
LOG = [
    Logged(3, "c1", "echo", "TASK_STATE_SUBMITTED", {"message": {
        "messageId": "u1", "taskId": "t1", "contextId": "c1", "role": "ROLE_USER", "parts": [{"text": "What is 2+2?"}]
    }}),
    Logged(4, "c1", "echo", "TASK_STATE_WORKING", _status("t1", "c1", "TASK_STATE_WORKING")),
    Logged(5, "c1", "echo", "TASK_STATE_WORKING", _chunk("t1", "c1", "The answer", append=False)),
    Logged(7, "c2", "inference", "TASK_STATE_SUBMITTED", _status("t2", "c2", "TASK_STATE_SUBMITTED")),
    Logged(8, "c1", "echo", "TASK_STATE_WORKING", _chunk("t1", "c1", " is 4\n", append=True, last=True)),
    Logged(9, "c1", "echo", "TASK_STATE_COMPLETED", _status(
        "t1", "c1", "TASK_STATE_COMPLETED", metadata={"usage": {"tokens": 7}}
    )),
    Logged(12, "c2", "inference", "TASK_STATE_FAILED", {"task": {
        "id": "t2", "contextId": "c2", "artifacts": [],
        "status": {"state": "TASK_STATE_FAILED", "message": {
            "messageId": "m2", "role": "ROLE_AGENT", "parts": [{"text": "model not installed"}]
        }},
    }}),
]  # fmt: skip

# what ``a2a-server events`` prints for LOG in plain mode, one line per event
LINES = [
    't1  user "What is 2+2?"',
    "t1  working",
    't1  text "The answer"',
    "t2  submitted",
    't1  text " is 4\\n"',
    "t1  completed  usage: tokens=7",
    "t2  task failed: model not installed",
]


@dataclass(frozen=True)
class Seen:
    path: str
    query: dict[str, str]
    last_event_id: str | None


@dataclass
class FirehoseServer:
    """``hang_ups``: how many streams end early, after ``hang_up_after`` events, by ``hang_up``.

    ``"end"`` finishes the response cleanly (a server restarting); ``"abort"`` breaks the
    connection mid-response (uvicorn closes the socket when the app raises once streaming).
    """

    hang_ups: int = 0
    hang_up_after: int = 3
    hang_up: Literal["end", "abort"] = "end"
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        app = Starlette(routes=[Route("/a2a/events", self._events)])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off", ws="none", http="h11"
        )
        config.timeout_graceful_shutdown = 1
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> FirehoseServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline and self._thread.is_alive(), "the firehose stand-in did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    async def _events(self, request: Request) -> Response:
        last = request.headers.get("last-event-id")
        self.seen.append(Seen(request.url.path, dict(request.query_params), last))
        state = request.query_params.get("state")
        if state is not None and state not in STATES:
            error = {"error": "invalid_state", "message": f"unknown state {state!r}; one of {', '.join(STATES)}"}
            return JSONResponse(error, status_code=400)
        after = int(last) if last else 0
        wanted = [
            e
            for e in LOG
            if e.cursor > after
            and request.query_params.get("contextId", e.context) == e.context
            and request.query_params.get("skill", e.skill) == e.skill
            and (state or e.state) == e.state
        ]
        cut = len(self.seen) <= self.hang_ups
        return EventSourceResponse(
            self._frames(wanted, cut), ping=0.5, ping_message_factory=lambda: ServerSentEvent(comment="ping")
        )

    async def _frames(self, events: list[Logged], cut: bool) -> AsyncIterator[dict[str, str]]:
        for sent, event in enumerate(events):
            if cut and sent == self.hang_up_after:
                if self.hang_up == "abort":
                    raise ConnectionAbortedError("the stand-in hangs up mid-stream")
                return
            yield {"id": str(event.cursor), "data": json.dumps(event.body)}
            await asyncio.sleep(0.02)  # one frame per write, as a live server sends them
        if cut and len(events) <= self.hang_up_after:
            return
        while True:  # a live firehose: quiet now, kept open by the pings
            await asyncio.sleep(3600)
