"""Every SSE response of the server, built one way (sse-starlette)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from sse_starlette import EventSourceResponse, ServerSentEvent

from a2a_server.config import Settings


def sse_response(
    settings: Settings,
    content: AsyncIterator[ServerSentEvent] | AsyncIterator[str] | AsyncIterator[bytes],
    headers: Mapping[str, str] | None = None,
) -> EventSourceResponse:
    return EventSourceResponse(
        content,
        ping=settings.keepalive_seconds,
        # a client that stopped reading costs a bounded wait, pings included (sse-starlette#89, #208)
        send_timeout=settings.send_timeout,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
        # On SIGTERM sse-starlette would cut the stream at once; our drain (cli.py) ends every task
        # with a final event within shutdown_grace, so let the stream finish by itself until then.
        shutdown_grace_period=settings.shutdown_grace + 5,
    )
