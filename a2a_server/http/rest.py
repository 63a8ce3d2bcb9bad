"""The 1.0 HTTP+JSON binding under ``card.REST_BASE`` (A2A-PROTOCOL.md §5), each route also ``/{tenant}``-prefixed.

    route (methods.REST_ROUTES) ─► params: path + camelCase query + ProtoJSON body ─► the JSON-RPC method's operation
                                ─► JSON (the same ProtoJSON as JSON-RPC's ``result``), or SSE of ``StreamResponse``
    an A2AError ─► google.rpc.Status JSON with an ErrorInfo detail and the HTTP status of §5

The streams carry the same ``id: <task>:<n>`` as the JSON-RPC ones, so ``Last-Event-ID`` resumes a subscribe.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sse_starlette import ServerSentEvent
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_server import cursor
from a2a_server.card import REST_BASE
from a2a_server.dialects import V10
from a2a_server.dialects.base import error_info
from a2a_server.errors import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    PERMISSION_DENIED,
    RESOURCE_EXHAUSTED,
    UNAUTHENTICATED,
    A2AError,
    ChannelClosed,
    ChannelNotFound,
    InvalidParams,
    InvalidRequest,
    ShuttingDown,
    StoreUnavailable,
    TooManyRequests,
    VersionNotSupported,
)
from a2a_server.http.auth import caller
from a2a_server.http.jsonrpc import dumps
from a2a_server.http.sse import sse_response
from a2a_server.http.state import AppState, BadVersion, app_state, requested_version
from a2a_server.methods import REST_ROUTES, RestRoute
from a2a_server.operations import HANDLERS, Call, StreamPlan, frames

log = logging.getLogger("a2a_server.rest")

JSON = dict[str, Any]
CONTENT_TYPE_NOT_SUPPORTED = -32005

# HTTP status and google.rpc code name per A2A error code (spec 1.0 §5.4, as the 1.0 conformance suite checks)
_STATUS: dict[int, tuple[int, str]] = {
    PARSE_ERROR: (400, "INVALID_ARGUMENT"),
    INVALID_REQUEST: (400, "INVALID_ARGUMENT"),
    METHOD_NOT_FOUND: (404, "NOT_FOUND"),
    -32602: (400, "INVALID_ARGUMENT"),
    INTERNAL_ERROR: (500, "INTERNAL"),
    -32001: (404, "NOT_FOUND"),
    -32002: (400, "FAILED_PRECONDITION"),
    -32003: (400, "FAILED_PRECONDITION"),
    -32004: (400, "FAILED_PRECONDITION"),
    CONTENT_TYPE_NOT_SUPPORTED: (415, "INVALID_ARGUMENT"),  # 415 as the spec's table and the 1.0 suite say
    -32006: (500, "INTERNAL"),
    -32007: (400, "FAILED_PRECONDITION"),
    -32008: (400, "FAILED_PRECONDITION"),
    -32009: (400, "FAILED_PRECONDITION"),
    # ours (errors.py): authentication and limits, as google.rpc names them
    UNAUTHENTICATED: (401, "UNAUTHENTICATED"),
    PERMISSION_DENIED: (403, "PERMISSION_DENIED"),
    RESOURCE_EXHAUSTED: (429, "RESOURCE_EXHAUSTED"),
}
_INT_QUERY = ("historyLength", "pageSize")
_BOOL_QUERY = ("includeArtifacts",)


class _ContentTypeNotSupported(A2AError):
    code_value = CONTENT_TYPE_NOT_SUPPORTED
    http_status = 400


class _ParseError(A2AError):
    code_value = PARSE_ERROR
    http_status = 400


def status_error(exc: A2AError) -> Response:
    """``exc`` as google.rpc.Status JSON (§11.6)."""
    http, status = _STATUS.get(exc.code, (exc.http_status, "UNKNOWN"))
    if isinstance(exc, ShuttingDown | StoreUnavailable):  # ours: the server or its store is away for now
        http, status = 503, "UNAVAILABLE"
    elif isinstance(exc, ChannelNotFound):  # billing channels: a -32602 that is about a missing resource
        http, status = 404, "NOT_FOUND"
    elif isinstance(exc, ChannelClosed):
        http, status = 409, "FAILED_PRECONDITION"
    body = {
        "error": {"code": http, "status": status, "message": exc.message, "details": error_info(exc.code, exc.details)}
    }
    retry = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    return Response(dumps(body), status_code=http, media_type="application/json", headers=retry)


def _endpoint(route: RestRoute) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state = app_state(request)
        try:
            params = await _params(request, route, state.settings.max_body_bytes)
            call = Call(
                version="1.0",
                blocking_timeout=state.settings.blocking_timeout,
                last_event_id=request.headers.get("last-event-id"),
                **caller(request),
            )
            started = time.perf_counter()
            result = await HANDLERS[route.spec.op](state.service, call, V10, params)
            state.service.metrics.latency_histogram(route.spec.name).observe(time.perf_counter() - started)
        except A2AError as exc:
            return status_error(exc)
        if isinstance(result, StreamPlan):
            return sse_response(state.settings, _events(state, result))
        return Response(dumps(result), media_type="application/json")

    return endpoint


async def _params(request: Request, route: RestRoute, limit: int) -> JSON:
    """The request's params as the JSON-RPC method takes them: body, then query, then path (the path wins)."""
    try:
        version = requested_version(request)
    except BadVersion as exc:
        raise VersionNotSupported(str(exc)) from None
    if version is not None and version != "1.0":
        raise VersionNotSupported(f"A2A-Version {version} has no HTTP+JSON binding here; send 1.0 or use /a2a")
    params: JSON = await _body(request, limit) if request.method in ("POST", "PUT", "PATCH") else {}
    for key, raw in request.query_params.items():
        if key == "A2A-Version":
            continue
        params[key] = _query_value(key, raw)
    params.update(request.path_params)
    return params


async def _body(request: Request, limit: int) -> JSON:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InvalidRequest(f"Invalid request: the body is {declared} bytes; the limit is {limit} bytes")
    try:
        raw = await request.body()
    except ClientDisconnect:
        raise InvalidRequest("Invalid request: the client went away mid-body") from None
    if len(raw) > limit:
        raise InvalidRequest(f"Invalid request: the body is more than {limit} bytes")
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        got = content_type or "no Content-Type"
        raise _ContentTypeNotSupported(
            f"Content type not supported: send application/json or application/a2a+json, got {got}"
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _ParseError(f"Invalid JSON payload: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"Invalid request: the body must be a JSON object, got {type(body).__name__}")
    return body


def _query_value(key: str, raw: str) -> Any:
    if key in _INT_QUERY:
        try:
            return int(raw)
        except ValueError:
            raise InvalidParams(f"Invalid params: {key} must be an integer, got {raw!r}", param=key) from None
    if key in _BOOL_QUERY:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise InvalidParams(f"Invalid params: {key} must be true or false, got {raw!r}", param=key)
        return raw.lower() in ("true", "1")
    return raw


async def _events(state: AppState, plan: StreamPlan) -> AsyncIterator[bytes]:
    open_streams = state.service.metrics.streams
    open_streams.inc()
    try:
        async for batch in frames(plan):
            # each data: is a StreamResponse, without the JSON-RPC envelope
            yield b"".join(
                ServerSentEvent(data=dumps(result), id=cursor.sse_id(plan.task_id, event_id)).encode()
                for event_id, result in batch
            )
    finally:
        open_streams.dec()


async def _no_route(request: Request) -> Response:
    path = request.url.path.removeprefix(REST_BASE)
    error = A2AError(f"Method not found: no HTTP+JSON route {request.method} {path}")
    error.code = METHOD_NOT_FOUND
    return status_error(error)


def _routes() -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for prefix in ("", "/{tenant}"):
        for route in REST_ROUTES:
            out.append(Route(REST_BASE + prefix + route.path, _endpoint(route), methods=[route.http_method]))
    out.append(Route(REST_BASE + "/{rest:path}", _no_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]))
    return out


ROUTES: list[BaseRoute] = _routes()
