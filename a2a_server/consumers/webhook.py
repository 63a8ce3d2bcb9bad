"""One webhook call: the POST of one notification, signed, bounded, and judged (deliver, retry or give up).

Headers a receiver gets (README "Push notifications" shows how to verify them):

    Content-Type               application/json (0.x) or application/a2a+json (1.0)
    X-A2A-Event-Id             <task id>:<event id> — the same in the body's metadata; deduplicate on it
    X-A2A-Timestamp            unix seconds when this attempt was signed
    X-A2A-Signature            sha256=<hex HMAC-SHA256(config secret, "<timestamp>." + raw body)>
    X-A2A-Notification-Token   the config's token, when it has one (what the official SDKs send)
    Authorization              "<scheme> <credentials>" from the config's authentication, when it has one

Redirects are not followed (a 3xx gives up on the event, like any 4xx but 408 and 429); at most
``RESPONSE_LIMIT`` bytes of a response are read; every attempt is bounded by ``timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import hmac
import time
from dataclasses import dataclass

import httpx

from a2a_server.consumers.guard import Refused, UrlGuard
from a2a_server.ports import PushConfig

RESPONSE_LIMIT = 4096


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
    def __init__(self, guard: UrlGuard, *, timeout: float = 10.0, user_agent: str = "a2a-server") -> None:
        self.guard = guard
        self.user_agent = user_agent
        # trust_env=False: an HTTP(S)_PROXY of the environment would bypass the address check
        self.client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            trust_env=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    async def post(self, config: PushConfig, event_id: str, body: bytes, content_type: str) -> Outcome:
        try:
            await self.guard.check(config.url)  # again at each delivery: DNS can change
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
            async with self.client.stream("POST", config.url, content=body, headers=headers) as response:
                await _drain(response)
        except httpx.TimeoutException:
            return Outcome(False, True, "timeout")
        except httpx.HTTPError as exc:
            return Outcome(False, True, f"network error: {type(exc).__name__}: {exc}".rstrip(": "))
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(True, False, str(code))
        if code in (408, 429) or code >= 500:
            return Outcome(False, True, str(code), _retry_after(response.headers.get("retry-after")))
        reason = " (redirects are not followed)" if 300 <= code < 400 else ""
        return Outcome(False, False, f"{code}{reason}")

    async def close(self) -> None:
        await self.client.aclose()


async def _drain(response: httpx.Response) -> None:
    """Read at most RESPONSE_LIMIT bytes of the response (a receiver's body is not ours to buffer)."""
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen >= RESPONSE_LIMIT:
            break


def _retry_after(raw: str | None) -> float | None:
    if not raw:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(raw))
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(raw)
        return max(0.0, when.timestamp() - time.time())
    return None
