"""One conversation with one agent: find its JSON-RPC endpoint, call methods, follow task streams.

Errors the user can act on become a :class:`ClientError` with a one-line message; nothing else
escapes as a traceback. ::

    ClientError              cannot connect, HTTP error, not JSON-RPC, stream gave up
    └── RpcError             the server answered with a JSON-RPC error object (code, message)

A stream that ends before its final event (connection dropped, read timeout, server closed early)
is resumed with the subscribe method of the dialect and ``Last-Event-ID``: bounded retries, with
exponential backoff (0.5, 1, 2, 4, 8 s; the count starts over once a resumed stream makes progress).
A server that cannot resubscribe (the task finished meanwhile: -32004) is asked for the task
instead, so the caller still sees how it ended.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx

from a2a_client.sse import SSEReader
from a2a_client.target import Target
from a2a_client.wire import JSON, Dialect, Update, parse_result

UNSUPPORTED_OPERATION = -32004


class ClientError(Exception):
    """Something the user should read: one line, no traceback."""


class RpcError(ClientError):
    def __init__(self, code: int, message: str) -> None:
        # a server with API keys refused the call (-32040 / -32041): say where this client takes its key from
        hint = " (this client sends the key in $A2A_API_KEY)" if code in (-32040, -32041) else ""
        super().__init__(f"JSON-RPC error {code}: {message}{hint}")
        self.code = code


def key_headers() -> dict[str, str]:
    """``A2A_API_KEY``, for a server with API keys: an environment variable, never a flag (``ps`` shows flags)."""
    key = os.environ.get("A2A_API_KEY", "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


class Session:
    def __init__(self, target: Target, dialect: Dialect, *, timeout: float = 120.0, retries: int = 5) -> None:
        self.target = target
        self.dialect = dialect
        self.retries = retries
        self._ids = itertools.count(1)
        self._endpoint: str | None = None
        headers = {"Accept": "application/json, text/event-stream", **dialect.headers, **key_headers()}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=10.0))

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    @property
    def endpoint(self) -> str:
        """The card's JSON-RPC URL for our dialect; ``URL/a2a`` when there is no usable card."""
        if self._endpoint is None:
            self._endpoint = self._discover() or self.target.endpoint
        return self._endpoint

    def _discover(self) -> str | None:
        for url in self.target.card_urls:
            try:
                response = self._http.get(url)
            except httpx.HTTPError as exc:
                raise ClientError(f"cannot reach {self.target.base}: {explain(exc)}") from None
            if response.status_code == 200:
                try:
                    card = response.json()
                except ValueError:
                    continue
                if isinstance(card, dict):
                    return self.dialect.endpoint(card)
        return None

    def call(self, operation: str, params: JSON) -> Update:
        """A non-streaming method; its result parsed."""
        return _parse(self.raw(operation, params))

    def raw(self, operation: str, params: JSON) -> Any:
        """A non-streaming method; its result as the server sent it."""
        try:
            response = self._http.post(self.endpoint, json=self._request(operation, params))
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.endpoint}: {explain(exc)}") from None
        return _result(response, self.endpoint)

    def follow(self, operation: str, params: JSON, task_id: str | None = None) -> Iterator[Update]:
        """Stream ``operation`` until the final event, resuming dropped connections (see module doc)."""
        reader = SSEReader()
        failures = 0
        while True:
            seen = reader.last_event_id
            try:
                for update in self._stream(operation, params, reader):
                    task_id = update.task_id or task_id
                    yield update
                    if update.final:
                        return
                reason = "the server closed the stream before the task finished"
            except RpcError as exc:
                if exc.code != UNSUPPORTED_OPERATION or operation != "subscribe" or task_id is None:
                    raise
                yield self.call("get", self.dialect.task_params(task_id))
                return
            except httpx.HTTPError as exc:
                if failures == 0 and seen is None and isinstance(exc, httpx.ConnectError):
                    raise ClientError(f"cannot reach {self.endpoint}: {explain(exc)}") from None
                reason = f"connection lost ({explain(exc)})"
            if reader.last_event_id != seen:
                failures = 0  # it made progress: the budget is per silent stretch, not per task
            failures += 1
            if task_id is None:
                raise ClientError(f"{reason}, before it named the task; nothing to resume")
            if failures > self.retries:
                raise ClientError(f"{reason}; gave up after {self.retries} retries")
            # exponential backoff from 0.5 s, never sooner than the server's own SSE ``retry:`` hint
            time.sleep(max(min(0.25 * 2**failures, 8.0), (reader.retry_ms or 0) / 1000))
            operation, params = "subscribe", self.dialect.task_params(task_id)

    def _stream(self, operation: str, params: JSON, reader: SSEReader) -> Iterator[Update]:
        headers = {"Last-Event-ID": reader.last_event_id} if reader.last_event_id else {}
        request = self._request(operation, params)
        with self._http.stream("POST", self.endpoint, json=request, headers=headers) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                response.read()  # an error before the first event comes back as plain JSON
                yield _parse(_result(response, self.endpoint))
                return
            for event in reader.events(response):
                try:
                    envelope = json.loads(event.data)
                except ValueError:
                    raise ClientError(f"not JSON in the event stream: {event.data[:80]!r}") from None
                yield _parse(_unwrap(envelope))

    def _request(self, operation: str, params: JSON) -> JSON:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": self.dialect.methods[operation], "params": params}


def _result(response: httpx.Response, url: str) -> Any:
    try:
        envelope = response.json()
    except ValueError:
        raise ClientError(f"HTTP {response.status_code} from {url}: not a JSON-RPC response") from None
    if not isinstance(envelope, dict) or ("result" not in envelope and "error" not in envelope):
        raise ClientError(f"HTTP {response.status_code} from {url}: not a JSON-RPC response")
    return _unwrap(envelope)


def _unwrap(envelope: Any) -> Any:
    if not isinstance(envelope, dict):
        raise ClientError("not a JSON-RPC response object")
    error = envelope.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        raise RpcError(code if isinstance(code, int) else 0, str(error.get("message", "(no message)")))
    if "result" not in envelope:
        raise ClientError("a JSON-RPC response with neither result nor error")
    return envelope["result"]


def _parse(result: Any) -> Update:
    try:
        return parse_result(result)
    except ValueError as exc:
        raise ClientError(f"unexpected result: {exc}") from None


def explain(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__
