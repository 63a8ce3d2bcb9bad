"""The firehose, ``GET {base}/a2a/events``: every event of every task a filter matches, live.

Each SSE frame is ``id: <global cursor>`` and ``data: <one A2A 1.0 StreamResponse>`` (a
``statusUpdate``, ``artifactUpdate``, ``message`` or ``task``); ``: ping`` comments keep a quiet stream
alive. The filters are query parameters: ``contextId``, ``skill``, ``state``.

The stream has no last event, so whenever it ends it is asked for again with ``Last-Event-ID`` set to
the last cursor seen, and the server goes on exactly after it: nothing lost, nothing repeated. ::

    cannot connect on the first attempt    ClientError at once: there is nothing to resume
    HTTP 4xx (a bad filter, no firehose)   ClientError with the server's message: retrying cannot help
    HTTP 5xx, connection lost, read        reconnect after 0.5, 1, 2, 4, 8 s (bounded, as ``task watch``);
    timeout, the server ended the stream   the count starts over once a stream delivers anything, a
                                           keepalive too: a quiet firehose is a healthy one
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from a2a_client.session import ClientError, explain, key_headers
from a2a_client.sse import SSEReader
from a2a_client.target import Target
from a2a_client.wire import JSON

# what a caller hears before each reconnect: why, the attempt number, the delay in seconds
OnRetry = Callable[[str, int, float], None]


@dataclass(frozen=True)
class FirehoseEvent:
    cursor: str | None
    body: JSON  # the StreamResponse: exactly one of statusUpdate, artifactUpdate, message, task
    data: str  # the data line as the server sent it


class Firehose:
    """One follower of the firehose; ``events()`` runs until the retries are spent or the caller stops."""

    def __init__(
        self,
        target: Target,
        *,
        context: str | None = None,
        skill: str | None = None,
        state: str | None = None,
        after: str | None = None,
        timeout: float = 120.0,
        retries: int = 5,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.url = target.firehose
        filters = (("contextId", context), ("skill", skill), ("state", state))
        self.params = {name: value for name, value in filters if value}
        self.retries = retries
        self._reader = SSEReader(after)
        self._on_retry = on_retry
        self._connected = False
        # the read timeout bounds a silence: with keepalives every few seconds, a longer one is a dead link
        headers = {"Accept": "text/event-stream", **key_headers()}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=10.0))

    def __enter__(self) -> Firehose:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    @property
    def cursor(self) -> str | None:
        """The cursor of the last event delivered: where a later follower would resume."""
        return self._reader.last_event_id

    def events(self) -> Iterator[FirehoseEvent]:
        failures = 0
        while True:
            lines_before = self._reader.lines_read
            try:
                yield from self._stream()
                reason = "the server ended the stream"
            except httpx.HTTPError as exc:
                if not self._connected and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                    raise ClientError(f"cannot reach {self.url}: {explain(exc)}") from None
                reason = f"connection lost ({explain(exc)})"
            except _ServerError as exc:
                reason = str(exc)
            if self._reader.lines_read != lines_before:
                failures = 0
            failures += 1
            if failures > self.retries:
                raise ClientError(f"{reason}; gave up after {self.retries} retries")
            # exponential backoff from 0.5 s, never sooner than the server's own SSE ``retry:`` hint
            delay = max(min(0.25 * 2**failures, 8.0), (self._reader.retry_ms or 0) / 1000)
            if self._on_retry is not None:
                self._on_retry(reason, failures, delay)
            time.sleep(delay)

    def _stream(self) -> Iterator[FirehoseEvent]:
        headers = {"Last-Event-ID": self.cursor} if self.cursor else {}
        with self._http.stream("GET", self.url, params=self.params, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                message = f"HTTP {response.status_code} from {self.url}: {_error_message(response)}"
                if response.status_code >= 500:
                    raise _ServerError(message)
                raise ClientError(message)
            self._connected = True
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                raise ClientError(f"{self.url} answered {content_type or 'no content type'}, not an event stream")
            for event in self._reader.events(response):
                try:
                    body = json.loads(event.data)
                except ValueError:
                    raise ClientError(f"not JSON in the event stream: {event.data[:80]!r}") from None
                if not isinstance(body, dict):
                    raise ClientError(f"not a JSON object in the event stream: {event.data[:80]!r}")
                yield FirehoseEvent(event.id, body, event.data)


class _ServerError(Exception):
    """A 5xx answer: the server is there but not ready (restarting, overloaded); worth another try."""


def _error_message(response: httpx.Response) -> str:
    """The ``message`` (else ``error``) of a JSON error body, else the body's start, else the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    return json.dumps(body)[:200]
