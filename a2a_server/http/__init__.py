"""The Starlette edge: routes for JSON-RPC (+ SSE), the agent cards and health probes."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from a2a_server.http import console, events, openai, rest, tokens
from a2a_server.http.jsonrpc import not_post, rpc_endpoint, stream_endpoint
from a2a_server.http.wellknown import agent_card, healthz, metrics, readyz

_RPC_PATHS = ("/a2a", "/a2a/", "/a2a/stream", "/a2a/stream/")


def routes() -> list[BaseRoute]:
    return [
        # both spellings of each endpoint: a POST must never be answered with Starlette's slash redirect
        *(Route(path, rpc_endpoint, methods=["POST"]) for path in ("/a2a", "/a2a/")),
        *(Route(path, stream_endpoint, methods=["POST"]) for path in ("/a2a/stream", "/a2a/stream/")),
        *(Route(path, not_post, methods=["GET", "PUT", "PATCH", "DELETE"]) for path in _RPC_PATHS),
        Route("/.well-known/agent-card.json", agent_card, methods=["GET", "HEAD"]),
        Route("/.well-known/agent.json", agent_card, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *events.ROUTES,
        *console.ROUTES,
        *openai.ROUTES,
        *tokens.ROUTES,
        *rest.ROUTES,
    ]


__all__ = ["routes"]
