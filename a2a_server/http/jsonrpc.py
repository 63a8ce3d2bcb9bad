"""POST /a2a and /a2a/stream (with or without a trailing slash): read the body, dispatch it, answer JSON or SSE.

Never a redirect: clients do not follow one on POST, and the 1.0 conformance suite posts to ``/a2a/``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic_core import PydanticSerializationError, to_json
from sse_starlette import ServerSentEvent
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from a2a_server import cursor
from a2a_server.dialects import V03, V10, Dialect
from a2a_server.errors import INVALID_REQUEST, METHOD_NOT_FOUND, RESOURCE_EXHAUSTED
from a2a_server.http.auth import caller
from a2a_server.http.sse import sse_response
from a2a_server.http.state import AppState, BadVersion, app_state, requested_version
from a2a_server.operations import Call, frames
from a2a_server.rpc import Streamed, error_response

_JSON_TYPES = ("application/json", "application/json-rpc", "application/jsonrequest")
CONTENT_TYPE_NOT_SUPPORTED = -32005


def dumps(obj: Any) -> str:
    """Compact JSON, UTF-8 text as is. pydantic-core's serializer (~4x the stdlib's speed on an event; every SSE
    event and JSON answer goes through here). NaN/Infinity are not JSON: the parser refuses them, so none can come
    back from a client; one a skill computed is written as null. A lone surrogate (valid in a JSON escape, not in
    UTF-8) takes the stdlib's path, as before."""
    try:
        return to_json(obj, inf_nan_mode="null").decode()
    except PydanticSerializationError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type="application/json")


async def rpc_endpoint(request: Request) -> Response:
    return await _handle(request, stream_path=False)


async def stream_endpoint(request: Request) -> Response:
    return await _handle(request, stream_path=True)


async def not_post(request: Request) -> Response:
    """GET (or any other method) on a JSON-RPC endpoint: say what to do instead of a plain-text 405."""
    message = f"Method not allowed: {request.method} {request.url.path}; POST a JSON-RPC 2.0 request here"
    answer = error_response(V03, METHOD_NOT_FOUND, message)
    return Response(dumps(answer), status_code=405, media_type="application/json", headers={"Allow": "POST"})


async def _handle(request: Request, stream_path: bool) -> Response:
    state = app_state(request)
    version_error = None
    try:
        version = requested_version(request)
    except BadVersion as exc:  # answered per request by the dispatcher, so each error carries its id
        version, version_error = None, str(exc)
    dialect = V10 if version == "1.0" or version_error else V03
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        got = content_type or "no Content-Type"
        message = f"Content type not supported: Content-Type must be application/json, got {got}"
        return json_response(error_response(dialect, CONTENT_TYPE_NOT_SUPPORTED, message), 415)
    body = await _read_body(request, state.settings.max_body_bytes, dialect)
    if isinstance(body, Response):
        return body
    call = Call(
        version=version,
        stream_path=stream_path or _asks_for_sse(request),
        blocking_timeout=state.settings.blocking_timeout,
        last_event_id=request.headers.get("last-event-id"),
        version_error=version_error,
        **caller(request),
    )
    answer = await state.dispatcher.handle(body, call)
    if answer is None:
        return Response(status_code=204)
    if isinstance(answer, Streamed):
        return _limited(answer.error) or _sse(state, answer)
    return _limited(answer) or json_response(answer)


def _limited(answer: Any) -> Response | None:
    """A single request refused by a limit (errors.TooManyRequests) is an HTTP 429 with Retry-After, so that
    clients and proxies back off; in a batch it stays one member's error."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict) or error.get("code") != RESOURCE_EXHAUSTED:
        return None
    return Response(dumps(answer), status_code=429, media_type="application/json", headers={"Retry-After": "1"})


def _asks_for_sse(request: Request) -> bool:
    """A job-style streaming request: ``Accept`` names text/event-stream and not application/json (a client that
    takes either, as many send by habit, keeps the JSON answer)."""
    accept = request.headers.get("accept", "").lower()
    return "text/event-stream" in accept and "application/json" not in accept


async def _read_body(request: Request, limit: int, dialect: Dialect) -> bytes | Response:
    def too_large(size: str) -> Response:
        message = f"Invalid request: the body is {size} bytes; the limit is {limit} bytes"
        return json_response(error_response(dialect, INVALID_REQUEST, message), 413)

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return too_large(declared)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return too_large(f"more than {limit}")
            chunks.append(chunk)
    except ClientDisconnect:
        return Response(status_code=400)
    return b"".join(chunks)


def _sse(state: AppState, answer: Streamed) -> Response:
    return sse_response(state.settings, _events(state, answer))


async def _events(state: AppState, answer: Streamed) -> AsyncIterator[bytes]:
    request_id = answer.request_id
    if answer.plan is None:  # a streaming method's error, as the one event of its stream (0.x clients)
        yield ServerSentEvent(data=dumps(answer.error)).encode()
        return
    task_id = answer.plan.task_id
    open_streams = state.service.metrics.streams
    open_streams.inc()
    try:
        async for batch in frames(answer.plan):
            # the events that are ready go out in one write (sse-starlette passes bytes through as they are)
            yield b"".join(
                ServerSentEvent(
                    data=dumps({"jsonrpc": "2.0", "id": request_id, "result": result}),
                    id=cursor.sse_id(task_id, event_id),
                ).encode()
                for event_id, result in batch
            )
    finally:
        open_streams.dec()
