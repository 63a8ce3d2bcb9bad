"""uvicorn's httptools protocol with a bound on a request's head, which h11 has and httptools lacks.

httptools (llhttp, C) parses a request for a fraction of h11's CPU, which matters most where the server writes
lone SSE events (a model's tokens: bench/README.md, issue 14). But it buffers a head of any size: a client that
sends headers without end grows the server's memory without bound. h11 refuses a head past
``h11_max_incomplete_event_size``; this protocol does the same for httptools: once a request has begun, bytes
received while its head is still incomplete are counted, and past ``HEAD_LIMIT`` the connection gets uvicorn's
own 400 and is closed (as h11's refusal does). Headers that complete inside a chunk are never counted, so a head
followed by a large body in the same read is not mistaken for a large head.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from a2a_server.config import HEAD_LIMIT


class BoundedHttpTools(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False  # between a request's first byte and the end of its head
        self._head_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_LIMIT:
                self._in_head = False
                self.send_400_response(f"Request head larger than {HEAD_LIMIT} bytes")
