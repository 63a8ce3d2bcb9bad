"""Server-Sent Events read from an httpx streaming response, the way a browser's EventSource does.

The reader outlives a response: it keeps the id of the last event it *dispatched*, so a client that
lost the connection can ask for the rest with ``Last-Event-ID`` on the next request. An id line of
a frame cut off by the drop is not committed (the HTML spec sets the last event id on dispatch), so
the event it belonged to is asked for again rather than lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class ServerEvent:
    data: str
    id: str | None
    event: str = "message"


class SSEReader:
    def __init__(self, last_event_id: str | None = None) -> None:
        self.last_event_id = last_event_id
        self.retry_ms: int | None = None
        self.lines_read = 0  # keepalive comments included: a quiet stream that is alive still makes progress

    def events(self, response: httpx.Response) -> Iterator[ServerEvent]:
        """Yield each complete event of ``response``; an unfinished frame at the end is dropped."""
        data: list[str] = []
        event_type = ""
        pending_id = self.last_event_id
        # httpx splits on \r\n, \r and \n, as the SSE grammar asks
        for line in response.iter_lines():
            self.lines_read += 1
            if not line:
                self.last_event_id = pending_id
                if data:
                    yield ServerEvent("\n".join(data), pending_id, event_type or "message")
                data, event_type = [], ""
                continue
            if line.startswith(":"):
                continue  # a comment: keepalive pings
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                event_type = value
            elif name == "id" and "\0" not in value:
                pending_id = value or None
            elif name == "retry" and value.isdigit():
                self.retry_ms = int(value)
