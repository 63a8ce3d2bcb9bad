"""Agent cards (per generation, with ETag and Cache-Control) and the health probes."""

from __future__ import annotations

import hashlib
from email.utils import format_datetime

from starlette.requests import Request
from starlette.responses import Response

from a2a_server import card
from a2a_server.http.jsonrpc import dumps, json_response
from a2a_server.http.state import BadVersion, app_state, requested_version
from a2a_server.metrics import CONTENT_TYPE


async def agent_card(request: Request) -> Response:
    state = app_state(request)
    try:
        version = requested_version(request)
    except BadVersion as exc:
        return json_response({"error": str(exc)}, 400)
    if version is None and request.url.path.endswith("agent-card.json") and state.settings.card_default == "1.0":
        version = "1.0"  # the operator's choice for header-less requests (agent.json stays the 0.x card)
    base_url = state.settings.public_url or str(request.base_url)
    secured = state.keyring is not None
    body = dumps(card.build(state.static_card, state.skills, base_url, version, secured=secured, push=state.pushes))
    etag = 'W/"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={state.settings.card_max_age}",
        "Last-Modified": format_datetime(state.started, usegmt=True),
        "Vary": "A2A-Version",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


async def metrics(request: Request) -> Response:
    registry = app_state(request).service.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = app_state(request)
    reasons = {s.name: why for s in state.skills if (why := s.ready()) is not None}
    if state.settings.role == "api":
        reasons = {}  # the skills run on the workers; this replica is ready when its store is
    if state.store_health is not None and (why := await state.store_health()) is not None:
        reasons["store"] = why
    if reasons:
        return json_response({"ready": False, "reasons": reasons}, 503)
    return json_response({"ready": True})
