"""A real webhook receiver for the push tests: a Starlette app served by uvicorn on a free loopback port.

It verifies every notification's signature (X-A2A-Timestamp + X-A2A-Signature, HMAC-SHA256 with one of the
secrets it knows) and records every request in order. ``fail_next`` answers 500 that many times; ``accept_only``
accepts that many notifications and answers 503 after; ``stop()`` / ``start()`` take it off the network and back
on the same port (connection refused in between).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import free_port

# the signing secret the tests' configs give (signingSecret), so that the receiver can verify from the start
SECRET = "0123456789abcdef-test-secret"


@dataclass
class Hit:
    event_id: str
    status: int
    verified: bool
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    secrets: set[str] = field(default_factory=set)
    hits: list[Hit] = field(default_factory=list)
    fail_next: int = 0
    strict: bool = True  # answer 401 to a notification whose signature does not verify
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # answers (status, headers) to give first
    hold: asyncio.Event | None = None  # when set: each answer waits for this event
    tls: tuple[str, str] | None = None  # (certificate file, key file): serve https
    accept_only: int | None = None
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hook"

    @property
    def accepted(self) -> list[Hit]:
        return [h for h in self.hits if h.status == 200]

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        timestamp, signature = headers.get("x-a2a-timestamp", ""), headers.get("x-a2a-signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        for secret in self.secrets:
            expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            if hmac.compare_digest(signature, f"sha256={expected}"):
                return True
        return False

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        verified = self.verify(headers, body)
        extra: dict[str, str] = {}
        if self.hold is not None:
            await self.hold.wait()
        if self.script:
            status, extra = self.script.pop(0)
        elif self.strict and not verified:
            status = 401
        elif self.fail_next > 0:
            self.fail_next -= 1
            status = 500
        elif self.accept_only is not None and len(self.accepted) >= self.accept_only:
            status = 503
        else:
            status = 200
        self.hits.append(Hit(headers.get("x-a2a-event-id", ""), status, verified, headers, json.loads(body), body))
        return Response(status_code=status, headers=extra)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        certfile, keyfile = self.tls or (None, None)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
                                ws="none", http="h11", ssl_certfile=certfile, ssl_keyfile=keyfile)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(10):
            while not self._server.started:
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None


async def until(check: Any, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``check()`` (sync or async) every 20 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
