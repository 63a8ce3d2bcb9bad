"""Every SSE response of the server, built one way (sse-starlette).

sse-starlette bounds each send to a client (``send_timeout``: a client that stopped reading must not hold a
stream forever, sse-starlette#89, #208) with an anyio cancel scope around every send: a scope object, a timer
armed and disarmed and task lookups per event, ~8 % of the loop's samples on a stream of lone events (a model's
tokens; py-spy, issue 14). ``EventStream`` keeps the contract with one timer per stream: each send notes when it
began; the timer, armed when a send begins and none is armed, cancels the sends that have run ``send_timeout``
when it fires (they raise sse-starlette's ``SendTimeoutError``, as before) and re-arms itself for the oldest send
still running, so a send is ended ``send_timeout`` after it began, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Message, Receive, Scope, Send

from a2a_server.config import Settings

log = logging.getLogger("a2a_server.http")


class EventStream(EventSourceResponse):
    """``EventSourceResponse`` whose per-send timeout costs a dict entry per send instead of a cancel scope."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sending: dict[asyncio.Task[Any], float] = {}  # each task with a send under way: when it began
        self._overdue: set[asyncio.Task[Any]] = set()  # the tasks this response cancelled for overrunning
        self._timer: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            # the client's business, not a server error: one line instead of a traceback
            client = scope.get("client") or ("?", 0)
            log.info("closed a stream to %s:%s: it read nothing for %.0f s", client[0], client[1], self.send_timeout)
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        task = asyncio.current_task()
        limit = self.send_timeout
        if limit is None or task is None:
            await super()._send_with_timeout(send, message)
            return
        loop = asyncio.get_running_loop()
        self._sending[task] = loop.time()
        if self._timer is None:
            self._timer = loop.call_later(limit, self._look)
        try:
            await send(message)
        except asyncio.CancelledError:
            self._send_interrupted = True
            # ours if we asked for it and nobody else cancelled the task too: then it is a timeout, not a cancel
            if task in self._overdue and task.uncancel() == 0:
                raise SendTimeoutError() from None
            raise
        except BaseException:
            self._send_interrupted = True
            raise
        finally:
            del self._sending[task]
            self._overdue.discard(task)

    def _look(self) -> None:
        self._timer = None
        limit = self.send_timeout
        if not self._sending or limit is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, began in self._sending.items():
            if now - began >= limit and task not in self._overdue:
                self._overdue.add(task)
                task.cancel()
        pending = [began for task, began in self._sending.items() if task not in self._overdue]
        if pending:
            self._timer = loop.call_at(min(pending) + limit, self._look)


def load_backend() -> None:
    """Load anyio's backend for the running loop now (call it from the app's start-up). sse-starlette's first
    response would do it (its lock asks anyio for the backend, which imports it): ~20 ms of the first stream's
    time to first token (issue 14's first-request goal)."""
    anyio.Lock()


def sse_response(
    settings: Settings,
    content: AsyncIterator[ServerSentEvent] | AsyncIterator[str] | AsyncIterator[bytes],
    headers: Mapping[str, str] | None = None,
) -> EventSourceResponse:
    return EventStream(
        content,
        ping=settings.keepalive_seconds,
        # a client that stopped reading costs a bounded wait, pings included (sse-starlette#89, #208)
        send_timeout=settings.send_timeout,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
        # On SIGTERM sse-starlette would cut the stream at once; our drain (cli.py) ends every task
        # with a final event within shutdown_grace, so let the stream finish by itself until then.
        shutdown_grace_period=settings.shutdown_grace + 5,
    )
