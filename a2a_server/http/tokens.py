"""GET /a2a/tasks/{id}/stream?format=text|token|typed: a task's text as a plain token stream, for curl and ``fetch``.

``format=text`` (the default): each frame is ``data: {"text": "…"}`` (one artifact text chunk) with ``id:`` the
event's cursor (``<task id>:<n>``, see ``cursor.py``), so ``Last-Event-ID`` resumes where a dropped connection
stopped. When the task reported usage (an inference task), ``data: {"usage": {…, "cost": "<base units>"}}`` comes
next; the last frame says how the task ended: ``data: [DONE]`` after ``completed`` only; any other end is
``data: {"error": "<code>", "message": "…"}`` where the code is the final state (``canceled``, ``failed``, …).
``format=token``: the same with ``{"token": "…"}`` chunks (the shape of ``data: {"token": "Hello"}`` … ``[DONE]``).
``format=typed``: ``{"type": "token", "content": "…"}`` chunks, then ``{"type": "done", "finishReason": …,
"usage": {"promptTokens", "completionTokens", "totalTokens", "cost"}}`` after ``completed``, or
``{"type": "error", "error": "<code>", "message": "…", "usage": {…}}``; no ``[DONE]`` (``done`` is the end).
Any other format is 400 naming the three.
A task submitted earlier replays what it has generated, then follows live. A task id that does not exist yet
is waited for up to ``TASK_WAIT_SECONDS`` (the stream may be opened a moment before the task is sent), then 404.

``follow`` and ``chunk_text`` are shared with the OpenAI face (``openai.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from sse_starlette import ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_server import cursor
from a2a_server.errors import TaskNotFound
from a2a_server.http.auth import principal_of
from a2a_server.http.jsonrpc import dumps, json_response
from a2a_server.http.sse import sse_response
from a2a_server.http.state import app_state
from a2a_server.model import (
    ArtifactEvent,
    LoggedEvent,
    MessageEvent,
    StatusEvent,
    Task,
    TaskEvent,
    TaskState,
    TaskStatus,
)
from a2a_server.service import ANONYMOUS, TaskService

TASK_WAIT_SECONDS = 5.0


async def follow(
    service: TaskService, task_id: str, after: int = 0, owner: str | None = ANONYMOUS
) -> AsyncGenerator[LoggedEvent, None]:
    """The task's events after ``after`` until it settles; a slow reader catches up from the log instead of
    ending early (``TaskService.events``). ``TaskNotFound`` if there is no such task of ``owner``'s."""
    task = await service.get(task_id, owner)
    async with contextlib.aclosing(service.events(task, after)) as events:
        async for logged in events:
            yield logged


def chunk_text(event: TaskEvent) -> str:
    """The text an event adds to the answer: artifact text chunks, or a direct reply."""
    if isinstance(event, ArtifactEvent):
        return "".join(p.text or "" for p in event.artifact.parts if p.kind == "text")
    if isinstance(event, MessageEvent):
        return event.message.text
    return ""


def ending(status: TaskStatus) -> str | None:
    """The last frame's data for a settled task: ``[DONE]``, or an error object; None while it runs."""
    state = status.state
    if state == TaskState.COMPLETED:
        return "[DONE]"
    if not state.settled:
        return None
    text = status.message.text if status.message is not None else ""
    return dumps({"error": state.value.replace("-", "_"), "message": text or f"the task ended {state.value}"})


async def _appears(service: TaskService, task_id: str, owner: str | None) -> tuple[Task, int]:
    """The task's snapshot, waiting up to TASK_WAIT_SECONDS for a task that does not exist yet: a client may open
    the stream of the id it chose a moment before its ``tasks/send`` arrives (both sent at once)."""
    deadline = asyncio.get_running_loop().time() + TASK_WAIT_SECONDS
    while True:
        try:
            return await service.snapshot(task_id, owner)
        except TaskNotFound:
            if asyncio.get_running_loop().time() >= deadline:
                raise
        await asyncio.sleep(0.05)


def _error(code: str, message: str, status: int) -> Response:
    return json_response({"error": code, "message": message}, status)


FORMATS = ("text", "token", "typed")


async def task_stream(request: Request) -> Response:
    state = app_state(request)
    service = state.service
    task_id = request.path_params["task_id"]
    owner = principal_of(request).reader
    shape = request.query_params.get("format", "text")
    if shape not in FORMATS:
        return _error("invalid_format", f"format must be one of {', '.join(FORMATS)}; got {shape!r}", 400)
    try:
        _, last = await _appears(service, task_id, owner)
    except TaskNotFound:
        return _error("task_not_found", f"Task not found: {task_id}", 404)
    after = 0
    if (raw := request.headers.get("last-event-id")) is not None:
        try:
            after = cursor.parse(raw, task_id, await service.resumable_after(task_id, last))
        except cursor.BadCursor as exc:
            return _error("invalid_last_event_id", str(exc), 400)
    frames = _frames(service, task_id, after, shape, owner)
    return sse_response(state.settings, frames, {"X-A2A-Task-Id": task_id})


def _chunk(shape: str, text: str) -> str:
    if shape == "typed":
        return dumps({"type": "token", "content": text})
    return dumps({shape: text})


def usage_of(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``usage`` a skill reported in its final status metadata, if any."""
    usage = (metadata or {}).get("usage")
    return usage if isinstance(usage, dict) else None


def _typed_usage(usage: dict[str, Any] | None, chunks: int) -> dict[str, Any]:
    usage = usage or {}
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", chunks)
    total = usage.get("total_tokens", prompt + completion)
    return {"promptTokens": prompt, "completionTokens": completion, "totalTokens": total,
            "cost": str(usage.get("cost", "0"))}  # fmt: skip


def _endings(shape: str, status: TaskStatus | None, usage: dict[str, Any] | None, chunks: int) -> list[str]:
    """The closing frames for a task that ended with ``status`` (None: the stream ended before the task)."""
    final = ending(status) if status is not None else None
    if final is None:
        final = dumps(
            {"error": "interrupted", "message": "the stream ended before the task; reconnect with Last-Event-ID"}
        )
    if shape != "typed":
        return ([dumps({"usage": usage})] if usage else []) + [final]
    if final == "[DONE]":
        reason = (usage or {}).get("finish_reason", "stop")
        return [dumps({"type": "done", "finishReason": reason, "usage": _typed_usage(usage, chunks)})]
    error = json.loads(final)
    return [dumps({"type": "error", **error, "usage": _typed_usage(usage, chunks)})]


async def _frames(
    service: TaskService, task_id: str, after: int, shape: str, owner: str | None
) -> AsyncIterator[ServerSentEvent]:
    last_id, status, usage, chunks = after, None, None, 0
    service.metrics.streams.inc()
    try:
        async with contextlib.aclosing(follow(service, task_id, after, owner)) as events:
            async for logged in events:
                last_id, event = logged.id, logged.event
                if text := chunk_text(event):
                    chunks += 1
                    yield ServerSentEvent(data=_chunk(shape, text), id=cursor.sse_id(task_id, logged.id))
                if isinstance(event, MessageEvent):
                    status = TaskStatus(state=TaskState.COMPLETED)
                elif isinstance(event, StatusEvent) and event.status.state.settled:
                    status, usage = event.status, usage_of(event.metadata)
        if status is None:
            # resumed after the settling event, or the server is shutting down: the stored task says how it ended
            task = await service.get(task_id, owner)
            if task.status.state.settled:
                status, usage = task.status, usage_of(task.metadata)
        for data in _endings(shape, status, usage, chunks):
            yield ServerSentEvent(data=data, id=cursor.sse_id(task_id, last_id))
    finally:
        service.metrics.streams.dec()


ROUTES: list[BaseRoute] = [Route("/a2a/tasks/{task_id}/stream", task_stream, methods=["GET"])]
