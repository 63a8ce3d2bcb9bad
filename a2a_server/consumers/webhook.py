"""One webhook call: the POST of one notification, signed, bounded, and judged (deliver, retry or give up).

Headers a receiver gets (README "Push notifications" shows how to verify them):

    Content-Type               application/json (0.x) or application/a2a+json (1.0)
    X-A2A-Event-Id             <task id>:<event id> — the same in the body's metadata; deduplicate on it
    X-A2A-Timestamp            unix seconds when this attempt was signed
    X-A2A-Signature            sha256=<hex HMAC-SHA256(config secret, "<timestamp>." + raw body)>
    X-A2A-Notification-Token   the config's token, when it has one (what the official SDKs send)
    Authorization              "<scheme> <credentials>" from the config's authentication, when it has one

The request is plain HTTP/1.1 (h11) over one connection per call, to an address the guard has just checked (the
host name is only the Host header and the TLS name), with ``Connection: close``. Redirects are not followed (a 3xx
gives up on the event, like any 4xx but 408 and 429); only the status line and headers of the answer are read
(h11 bounds them to 16 KiB), never its body; every call is bounded by ``timeout`` seconds.

Why not httpx: importing it loads its command line (rich, click, pygments) into the server, and it would resolve
the name again after our check.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import hmac
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import h11

from a2a_server.consumers.guard import Refused, UrlGuard
from a2a_server.ports import PushConfig


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    retry: bool  # a transient failure: try the same event again later
    status: str  # "200", "503", "timeout", "network error: …", "refused: …"
    retry_after: float | None = None  # seconds the receiver asked for (Retry-After)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-A2A-Signature`` value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Webhook:
    def __init__(
        self, guard: UrlGuard, *, timeout: float = 10.0, user_agent: str = "a2a-server", ca_file: Path | None = None
    ) -> None:
        self.guard = guard
        self.timeout = timeout
        self.user_agent = user_agent
        self._tls = ssl.create_default_context()  # certificates and host names are verified
        if ca_file is not None:
            self._tls.load_verify_locations(cafile=ca_file)

    async def post(self, config: PushConfig, event_id: str, body: bytes, content_type: str) -> Outcome:
        try:
            addresses = await self.guard.check(config.url)  # again at each delivery: DNS can change
        except Refused as exc:
            return Outcome(False, True, f"refused: {exc}")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "User-Agent": self.user_agent,
            "X-A2A-Event-Id": event_id,
            "X-A2A-Timestamp": timestamp,
            "X-A2A-Signature": sign(config.secret, timestamp, body),
        }
        if config.token:
            headers["X-A2A-Notification-Token"] = config.token
        if config.auth_scheme:
            headers["Authorization"] = f"{config.auth_scheme} {config.auth_credentials or ''}".rstrip()
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._exchange(config.url, [str(a) for a in addresses], headers, body)
        except TimeoutError:
            return Outcome(False, True, "timeout")
        except (OSError, h11.ProtocolError) as exc:
            return Outcome(False, True, f"network error: {type(exc).__name__}: {exc}".rstrip(": "))
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(True, False, str(code))
        if code in (408, 429) or code >= 500:
            return Outcome(False, True, str(code), _retry_after(_header(response, b"retry-after")))
        reason = " (redirects are not followed)" if 300 <= code < 400 else ""
        return Outcome(False, False, f"{code}{reason}")

    async def _exchange(self, url: str, addresses: list[str], headers: dict[str, str], body: bytes) -> h11.Response:
        parts = urlsplit(url)
        tls = self._tls if parts.scheme == "https" else None
        port = parts.port or (443 if tls else 80)
        reader, writer = await _connect(addresses, port, tls, parts.hostname or "")
        try:
            conn = h11.Connection(our_role=h11.CLIENT)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            fields = [("Host", parts.netloc), ("Content-Length", str(len(body))), ("Connection", "close"),
                      *headers.items()]  # fmt: skip
            writer.write(conn.send(h11.Request(method="POST", target=target, headers=fields)) or b"")
            writer.write(conn.send(h11.Data(data=body)) or b"")
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(4096))  # b"" (closed) makes h11 raise or end
                elif isinstance(event, h11.Response):
                    return event
                elif isinstance(event, h11.ConnectionClosed):
                    raise ConnectionResetError("the receiver closed the connection without answering")
                # InformationalResponse (100 Continue …): read on
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def close(self) -> None:
        """Nothing is pooled: each call has its own connection."""


async def _connect(
    addresses: list[str], port: int, tls: ssl.SSLContext | None, name: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the first of ``addresses`` that answers (TLS checks the certificate against ``name``)."""
    error: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return await asyncio.open_connection(address, port, ssl=tls, server_hostname=name if tls else None)
        except OSError as exc:
            error = exc
    raise error


def _header(response: h11.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _retry_after(raw: str | None) -> float | None:
    if not raw:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(raw))
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(raw)
        return max(0.0, when.timestamp() - time.time())
    return None
