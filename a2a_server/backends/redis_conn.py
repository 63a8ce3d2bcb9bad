"""Connections of the Redis backend: the URL, the client pools, and what a lost connection looks like to callers.

A process holds at most ``COMMAND_CONNECTIONS + 3`` connections to Redis, however many tasks it runs and
subscribers it serves: the command pool (blocking: a caller waits for a free connection rather than open more),
one reader that multiplexes every live tail (redis_tail.py), one pub/sub connection for cancels
(redis_control.py) and one for the runner's blocking claim (redis_queue.py).

Every command retries a lost connection with exponential backoff (redis-py's ``Retry``, ~1 s in all); past that
the caller gets ``StoreUnavailable`` (HTTP 503, JSON-RPC -32603) naming Redis, its address and the cause.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from a2a_server.errors import StoreUnavailable
from a2a_server.model import new_id

COMMAND_CONNECTIONS = 16
# a blocking read (XREAD BLOCK 5 s at most, XREADGROUP BLOCK 2 s at most) gives up on a silent socket after this
BLOCKING_READ_TIMEOUT = 15.0
# redis.asyncio.Redis as the backend uses it: its replies are typed "bytes | str | …" by decode_responses, which
# is known only at run time (off here: every reply is bytes), so the modules read them as Any
Client = Any
# errors that mean "Redis is not there right now" (a restart, a network cut, an AOF reload), not a bad command
UNAVAILABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)


def is_redis_url(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


@dataclass(frozen=True)
class RedisURL:
    url: str
    prefix: str

    @property
    def address(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}/{(parts.path or '/0').lstrip('/') or '0'}"


def parse_url(url: str) -> RedisURL:
    """``redis://host:port/db[?prefix=name]``: the key prefix (default ``a2a``) lets several deployments share one
    database."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"--store {url!r}: expected redis://host:port/db")
    db = (parts.path or "/0").lstrip("/") or "0"
    if parts.scheme != "unix" and not db.isdigit():
        raise ValueError(f"--store {url!r}: the database after the port must be a number, got {db!r}")
    prefix = "a2a"
    rest = []
    for pair in filter(None, parts.query.split("&")):
        key, _, value = pair.partition("=")
        if key == "prefix" and value:
            prefix = value
        else:
            rest.append(pair)
    clean = parts._replace(query="&".join(rest)).geturl()
    return RedisURL(clean, prefix)


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.5, base=0.02), retries=6)


def process_name() -> str:
    """The CLIENT SETNAME of one process's connections (CLIENT LIST shows who holds what)."""
    return f"a2a-{os.getpid()}-{new_id()[:8]}"


def command_client(url: str, name: str, connections: int = COMMAND_CONNECTIONS) -> Client:
    """The shared command client: a bounded pool, retries with backoff on a lost connection."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=connections, timeout=10, socket_connect_timeout=2, health_check_interval=15,
        client_name=name,
    )  # fmt: skip
    return Redis(connection_pool=pool, retry=_retry(), retry_on_error=[RedisConnectionError, RedisTimeoutError])


def dedicated_client(url: str, name: str) -> Client:
    """A client of one connection for a blocking command (XREAD BLOCK, XREADGROUP BLOCK) or pub/sub."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=1, timeout=None, socket_connect_timeout=2, client_name=name,
        socket_timeout=BLOCKING_READ_TIMEOUT,
    )  # fmt: skip
    return Redis(connection_pool=pool)


@contextlib.contextmanager
def guard(address: str, doing: str) -> Iterator[None]:
    """Turn "Redis is unreachable" into ``StoreUnavailable`` for the caller (a clear 503, never a crash)."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise unavailable(address, doing, exc) from exc
    except ResponseError as exc:
        if "LOADING" in str(exc) or "MISCONF" in str(exc) or "OOM" in str(exc):
            raise unavailable(address, doing, exc) from exc
        raise


def unavailable(address: str, doing: str, exc: BaseException) -> StoreUnavailable:
    cause = str(exc) or type(exc).__name__
    return StoreUnavailable(
        f"task store unavailable: Redis at {address} could not {doing} ({cause}); retry shortly",
        cause="store_unavailable",
    )
