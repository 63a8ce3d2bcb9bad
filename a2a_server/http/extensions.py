"""``A2A-Extensions``: a response echoes the offered extensions its request activated (A2A-PROTOCOL.md §7), and
those it used without activating them (a send that named a billing channel).

Pure ASGI, so that streamed responses pass through untouched.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from a2a_server.extensions import activated, track


class ExtensionsEcho:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        uris = activated(Headers(scope=scope).get("a2a-extensions"))
        in_use = track()  # the handler runs in this task: what it records is seen here before the response starts

        async def echo(message: Message) -> None:
            if message["type"] == "http.response.start":
                echoed = uris + sorted(in_use - set(uris))
                if echoed:
                    MutableHeaders(scope=message)["A2A-Extensions"] = ", ".join(echoed)
            await send(message)

        await self.app(scope, receive, echo)
