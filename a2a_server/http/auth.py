"""The gate every request passes first: who is calling, may they, and have they asked for too much.

    request ─► public path (card, health, metrics, console page, /v1/models, CORS preflight)? ─► through
            ─► key (``Authorization: Bearer`` or ``X-API-Key``) ─► Keyring.lookup ─► none/unknown: 401
            ─► the scope the route needs (JSON-RPC: each method of the body) ─► missing: 403
            ─► the caller's token bucket ─► empty: 429 + Retry-After
            ─► a stream while the caller holds max_streams open ─► 429
            ─► the app, with ``scope["a2a.principal"]``: every endpoint takes the owner from there

With auth off (no keys file) every caller is the principal ``anonymous`` with send and read, rate-limited per
client address (not loopback: the local user, or a proxy whose clients cannot be told apart). Each refusal is
written in the dialect of the endpoint it was meant for: JSON-RPC (0.3 or 1.0 by ``A2A-Version``), the REST
binding's google.rpc.Status, the OpenAI error, or the plain ``{"error", "message"}`` of the other streams.
A key is never logged, counted or echoed: messages name the principal at most.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from a2a_server import card
from a2a_server.card import REST_BASE
from a2a_server.errors import A2AError, PermissionDenied, TooManyRequests, Unauthenticated
from a2a_server.http.refusal import Face, count, deny, face_of
from a2a_server.http.state import app_state
from a2a_server.keys import Keyring, Principal
from a2a_server.limits import Buckets, Limits, Streams
from a2a_server.methods import METHODS, REST_ROUTES, Op
from a2a_server.service import ANONYMOUS

PRINCIPAL = "a2a.principal"
ANONYMOUS_PRINCIPAL = Principal(ANONYMOUS, frozenset({"send", "read"}))
# what each operation needs (tests/test_gate.py checks that every Op is here)
SCOPE_OF: dict[Op, str] = {
    Op.SEND: "send", Op.STREAM: "send", Op.CANCEL: "send", Op.PUSH_SET: "send", Op.PUSH_DELETE: "send",
    Op.CHANNEL_OPEN: "send", Op.CHANNEL_CLOSE: "send",
    Op.GET: "read", Op.LIST: "read", Op.RESUBSCRIBE: "read", Op.EXTENDED_CARD: "read", Op.PUSH_GET: "read",
    Op.PUSH_LIST: "read", Op.CHANNEL_GET: "read", Op.CHANNEL_LIST: "read",
}  # fmt: skip


def _rest_pattern(path: str) -> re.Pattern[str]:
    body = re.sub(r"\\\{[A-Za-z]+\\\}", "[^/]+", re.escape(path))
    return re.compile(rf"^{re.escape(REST_BASE)}(?:/[^/]+)?{body}$")


_REST = [(r.http_method, _rest_pattern(r.path), r.spec.op) for r in REST_ROUTES]


def principal_of(request: Request) -> Principal:
    """The caller the gate let in (``anonymous`` when auth is off)."""
    found = request.scope.get(PRINCIPAL)
    return found if isinstance(found, Principal) else ANONYMOUS_PRINCIPAL


def caller(request: Request) -> dict[str, Any]:
    """The ``Call`` fields the gate decided: owner, admin, and the extended card (only with keys on)."""
    principal, state = principal_of(request), app_state(request)
    if state.keyring is None:
        return {"owner": principal.name, "admin": principal.admin}
    base = state.settings.public_url or str(request.base_url)

    def extended(version: str) -> dict[str, Any]:
        return card.build(state.static_card, state.skills, base, version, secured=True, push=state.pushes)

    return {"owner": principal.name, "admin": principal.admin, "card": extended}


def credential(headers: Headers) -> str | None:
    """The presented key: ``Authorization: Bearer``, else ``X-API-Key`` (beside a proxy's Basic credentials, say);
    "" when only an Authorization header of another scheme came (a clear 401 rather than 'missing')."""
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() == "bearer":
            return token.strip()
    key = headers.get("x-api-key")
    if key is not None:
        return key.strip()
    return "" if auth is not None else None


class Gate:
    """Pure ASGI middleware (no BaseHTTPMiddleware: a stream's body passes through untouched)."""

    def __init__(self, app: ASGIApp, keyring: Keyring | None, limits: Limits, max_body_bytes: int) -> None:
        self.app = app
        self.keyring = keyring
        self.limits = limits
        self.buckets = Buckets(limits.rate, limits.burst)
        self.streams = Streams(limits.streams)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        face = face_of(method, path)
        if face is Face.PUBLIC:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            principal = self._authenticate(headers)
            who = self._limit_key(principal, scope)
            if who is not None and (wait := await self._take(scope, who)) > 0:
                rate, burst = self.limits.rate, self.limits.burst
                message = f"Too many requests: the limit is {rate:g} per second, bursts of {burst} (rate_limit)"
                raise TooManyRequests(message, wait, cause="rate_limited")
            at_cap = who is not None and self.streams.full(who)
            needs, streams, receive = await self._needs(face, method, path, headers, receive, principal, at_cap)
            for scope_name in needs:
                if not principal.may(scope_name):
                    has = ",".join(sorted(principal.scopes))
                    message = (
                        f"Permission denied: the key of {principal.name!r} has scopes {has}; this needs {scope_name!r}"
                    )
                    raise PermissionDenied(message, cause="missing_scope")
            if streams and at_cap:
                cap, caller_name = self.limits.streams, repr(principal.name) if self.keyring else "this client"
                message = f"Too many streams: {caller_name} has {cap} open, the limit (max_streams); close one"
                raise TooManyRequests(message, 5, cause="too_many_streams")
        except A2AError as exc:
            count(scope, exc.cause or exc.reason.lower())
            await deny(face, exc, headers)(scope, receive, send)
            return
        scope[PRINCIPAL] = principal
        await self._run(scope, receive, send, who)

    def _authenticate(self, headers: Headers) -> Principal:
        if self.keyring is None:
            return ANONYMOUS_PRINCIPAL
        key = credential(headers)
        if key is None:
            raise Unauthenticated("Unauthenticated: this server needs an API key; send 'Authorization: Bearer "
                                  "<key>' or 'X-API-Key: <key>'", cause="missing_key")  # fmt: skip
        if not key:
            raise Unauthenticated("Unauthenticated: the Authorization header must be 'Bearer <key>'",
                                  cause="invalid_key")  # fmt: skip
        principal = self.keyring.lookup(key)
        if principal is None:
            raise Unauthenticated("Unauthenticated: the API key is not valid (unknown or revoked)", cause="invalid_key")
        return principal

    async def _take(self, scope: Scope, who: str) -> float:
        """A token of ``who``'s bucket: the fleet's (Redis, in the app's state once it started), else this gate's."""
        shared = getattr(getattr(getattr(scope.get("app"), "state", None), "a2a", None), "rate", None)
        return await shared.take(who) if shared is not None else self.buckets.take(who)

    def _limit_key(self, principal: Principal, scope: Scope) -> str | None:
        """Whose limits a request counts against: the key's principal; without keys the client address, and
        nobody's for a loopback client (the local user, or a proxy whose clients all look alike)."""
        if self.keyring is not None:
            return "key:" + principal.name
        client = scope.get("client")
        host = client[0] if client else ""
        try:
            if ipaddress.ip_address(host).is_loopback:
                return None
        except ValueError:
            pass
        return "addr:" + host

    async def _needs(
        self,
        face: Face,
        method: str,
        path: str,
        headers: Headers,
        receive: Receive,
        principal: Principal,
        at_cap: bool,
    ) -> tuple[set[str], bool, Receive]:
        """The scopes the request needs, whether it may open a stream, and the ``receive`` to pass on (the body is
        read ahead, then replayed, only when its methods decide: a key with fewer scopes, or streams at the cap)."""
        accept_sse = "text/event-stream" in headers.get("accept", "").lower()
        if face is Face.PLAIN:
            return {"read"}, method == "GET", receive
        if face is Face.REST:
            op = next((op for verb, pattern, op in _REST if verb == method and pattern.match(path)), Op.GET)
            return {SCOPE_OF.get(op, "send")}, op in (Op.STREAM, Op.RESUBSCRIBE), receive
        if face is Face.OPENAI:
            streams = accept_sse
            if at_cap:
                body, receive = await _read_ahead(receive, self.max_body_bytes)
                streams = streams or (isinstance(body, dict) and body.get("stream") is True)
            return {"send"}, streams, receive
        streams = path.startswith("/a2a/stream") or accept_sse
        restricted = not (principal.may("send") and principal.may("read"))
        if not restricted and not at_cap:
            return set(), streams, receive
        body, receive = await _read_ahead(receive, self.max_body_bytes)
        needs: set[str] = set()
        for item in body if isinstance(body, list) else [body]:
            name = item.get("method") if isinstance(item, dict) else None
            spec = METHODS.get(name) if isinstance(name, str) else None
            if spec is None:
                continue
            needs.add(SCOPE_OF.get(spec.op, "send"))
            params = item.get("params")
            streams = streams or spec.streaming or (isinstance(params, dict) and params.get("stream") is True)
        return needs, streams, receive

    async def _run(self, scope: Scope, receive: Receive, send: Send, who: str | None) -> None:
        if who is None:  # nobody's limits (a loopback client without keys): no stream to count, no wrapper per send
            await self.app(scope, receive, send)
            return
        opened = False

        async def counting_send(message: Message) -> None:
            nonlocal opened
            if message["type"] == "http.response.start" and not opened:
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                if content_type.startswith("text/event-stream"):
                    opened = True
                    self.streams.open(who)
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if opened:
                self.streams.close(who)


async def _read_ahead(receive: Receive, limit: int) -> tuple[Any, Receive]:
    """The JSON body (None when it is not JSON or too large: the endpoint says why), and a ``receive`` that
    replays it."""
    chunks: list[bytes] = []
    size, more = 0, True
    messages: list[Message] = []
    while more:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        more = message.get("more_body", False)
        if size > limit:
            break
    body: Any = None
    if not more and size <= limit:
        try:
            body = json.loads(b"".join(chunks))
        except (ValueError, RecursionError):
            body = None
    replay = iter(messages)

    async def replaying() -> Message:
        for message in replay:
            return message
        return await receive()

    return body, replaying
