"""``open_redis``: the Redis backend's four ports on shared connections, and its health for /readyz."""

from __future__ import annotations

from typing import TYPE_CHECKING

from a2a_server.backends.bus import DEFAULT_BYTE_LIMIT
from a2a_server.backends.redis_conn import UNAVAILABLE
from a2a_server.backends.redis_control import RedisControl
from a2a_server.backends.redis_limits import RedisRate, RedisRunning
from a2a_server.backends.redis_queue import RedisQueue
from a2a_server.backends.redis_store import RedisStore

if TYPE_CHECKING:
    from a2a_server.backends import Backend


async def open_redis(
    url: str, *, buffer_limit: int, lease_seconds: float, ttl: float, byte_limit: int = DEFAULT_BYTE_LIMIT
) -> Backend:
    from a2a_server.backends import Backend

    store = await RedisStore.open(url, buffer_limit=buffer_limit, byte_limit=byte_limit, ttl=ttl)
    queue = RedisQueue(store.url, store.name, store.redis, store.p, store.address, lease_seconds)
    control = RedisControl(store.url, store.name, store.redis, store.p, store.address)

    async def health() -> str | None:
        try:
            await store.redis.ping()
        except UNAVAILABLE as exc:
            return f"Redis at {store.address} is unreachable: {exc}"
        return None

    describe = f"redis {store.address} (prefix {store.p!r})"
    def rate(per_second: float, burst: int) -> RedisRate:
        return RedisRate(store.redis, store.p, store.address, per_second, burst)

    running = RedisRunning(store.redis, store.p, store.address)
    return Backend(store, store, queue, control, describe, health=health, shared=True, rate=rate, running=running)
