"""The Starlette edge: routes for JSON-RPC (+ SSE), the agent cards and health probes."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from a2a_server.http import console, events, openai, tokens
from a2a_server.http.jsonrpc import rpc_endpoint, stream_endpoint
from a2a_server.http.wellknown import agent_card, healthz, metrics, readyz


def routes() -> list[BaseRoute]:
    return [
        Route("/a2a", rpc_endpoint, methods=["POST"]),
        Route("/a2a/stream", stream_endpoint, methods=["POST"]),
        Route("/.well-known/agent-card.json", agent_card, methods=["GET", "HEAD"]),
        Route("/.well-known/agent.json", agent_card, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *events.ROUTES,
        *console.ROUTES,
        *openai.ROUTES,
        *tokens.ROUTES,
    ]


__all__ = ["routes"]
