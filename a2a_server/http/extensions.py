"""``A2A-Extensions``: a response echoes the offered extensions its request activated (A2A-PROTOCOL.md §7).

Pure ASGI, so that streamed responses pass through untouched.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from a2a_server.extensions import activated


class ExtensionsEcho:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        uris = activated(Headers(scope=scope).get("a2a-extensions"))
        if not uris:
            await self.app(scope, receive, send)
            return

        async def echo(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["A2A-Extensions"] = ", ".join(uris)
            await send(message)

        await self.app(scope, receive, echo)
