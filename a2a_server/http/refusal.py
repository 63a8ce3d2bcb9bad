"""How the gate says no: in the dialect of the endpoint the request was meant for, with the status and headers
that make clients and proxies do the right thing, counted in ``a2a_refusals_total{reason}``.

    /a2a, /a2a/stream   JSON-RPC error (0.3 shape, or 1.0 with ErrorInfo when A2A-Version says 1.x), id null
    /a2a/rest/…         google.rpc.Status (rest.status_error)
    /v1/…               the OpenAI error object
    anything else       {"error": "<cause>", "message": "…"} (the token stream's and the firehose's shape)
    401 + WWW-Authenticate: Bearer (error="invalid_token" for a wrong key); 429 + Retry-After
"""

from __future__ import annotations

from collections.abc import MutableMapping
from enum import Enum

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Scope

from a2a_server.card import REST_BASE
from a2a_server.dialects import V03, V10
from a2a_server.errors import A2AError, TooManyRequests, Unauthenticated

_PUBLIC = {"/", "/favicon.ico", "/healthz", "/readyz", "/metrics", "/.well-known/agent-card.json",
           "/.well-known/agent.json", "/v1/models"}  # fmt: skip
_PUBLIC_PREFIXES = ("/static/", "/v1/models/")
_RPC_PATHS = {"/a2a", "/a2a/", "/a2a/stream", "/a2a/stream/"}


class Face(Enum):
    """Which error dialect a path answers in."""

    PUBLIC = "public"
    JSONRPC = "jsonrpc"
    REST = "rest"
    OPENAI = "openai"
    PLAIN = "plain"


def face_of(method: str, path: str) -> Face:
    if method == "OPTIONS" or path in _PUBLIC or path.startswith(_PUBLIC_PREFIXES):
        return Face.PUBLIC
    if path in _RPC_PATHS:
        return Face.JSONRPC
    if path.startswith(REST_BASE + "/"):
        return Face.REST
    if path.startswith("/v1/"):
        return Face.OPENAI
    return Face.PLAIN


def count(scope: Scope, reason: str) -> None:
    state = getattr(getattr(scope.get("app"), "state", None), "a2a", None)  # None before start-up
    if state is not None:
        state.service.metrics.refusals.labels(reason).inc()


def deny(face: Face, exc: A2AError, headers: Headers) -> Response:
    """``exc`` as the endpoint's own dialect would answer it, with the HTTP status and headers it calls for."""
    extra: MutableMapping[str, str] = {}
    if isinstance(exc, Unauthenticated):
        invalid = ', error="invalid_token"' if exc.cause == "invalid_key" else ""
        extra["WWW-Authenticate"] = f'Bearer realm="a2a-server"{invalid}'
    if isinstance(exc, TooManyRequests):
        extra["Retry-After"] = str(exc.retry_after)
    response = _render(face, exc, headers)
    response.headers.update(extra)
    return response


def _render(face: Face, exc: A2AError, headers: Headers) -> Response:
    from a2a_server.http.jsonrpc import dumps, json_response
    from a2a_server.http.openai import ApiError
    from a2a_server.http.rest import status_error
    from a2a_server.rpc import error_response

    if face is Face.JSONRPC:
        dialect = V10 if (headers.get("a2a-version") or "").strip().startswith("1") else V03
        return json_response(error_response(dialect, exc.code, exc.message, None, exc.details), exc.http_status)
    if face is Face.REST:
        return status_error(exc)
    if face is Face.OPENAI:
        code = {"missing_key": "missing_api_key", "invalid_key": "invalid_api_key"}.get(exc.cause or "", exc.cause)
        kind = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}[exc.http_status]
        return ApiError(exc.http_status, exc.message, None, code, kind).response()
    body = {"error": exc.cause or exc.reason.lower(), "message": exc.message}
    return Response(dumps(body), exc.http_status, media_type="application/json")
