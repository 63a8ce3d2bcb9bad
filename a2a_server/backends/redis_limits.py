"""Caller limits shared by every process of a Redis deployment (``limits.py``): one request rate and one count of
running tasks per caller for the fleet, not per API replica.

    <p>:rate:<who>     hash   tokens, stamp (Redis TIME): the caller's token bucket; expires once it would be full
    <p>:run:<owner>    zset   task id → when it was submitted (unix seconds); expires a day after its last change

The bucket is one Lua script (refill, take, answer the wait), so concurrent requests through several replicas
take from one bucket atomically, on Redis's clock. The running set is checked, then added to, as in one process
(concurrent submits of one caller may pass the cap by the submits in flight: the same in one process).
Redis unreachable → ``StoreUnavailable`` (503 naming Redis), as for every other Redis call.
"""

from __future__ import annotations

from typing import Any

from a2a_server.backends.redis_conn import guard

# KEYS: bucket. ARGV: rate (tokens/s), burst. Returns the seconds to wait as a string ("0": granted).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(b[1]) or burst, tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(1000 * (burst - tokens) / rate) + 1000)
return tostring(wait)
"""

DAY_MS = 86_400_000


class RedisRate:
    """``limits.Rate`` shared through Redis: one token bucket per caller for every replica."""

    def __init__(self, redis: Any, prefix: str, address: str, rate: float, burst: int) -> None:
        self._redis, self._p, self._address = redis, prefix, address
        self.rate, self.burst = rate, burst
        self._take = redis.register_script(_TAKE)

    async def take(self, who: str) -> float:
        if self.rate <= 0:
            return 0.0
        with guard(self._address, "check the request rate"):
            wait = await self._take(keys=[f"{self._p}:rate:{who}"], args=[self.rate, self.burst])
        return float(wait)


class RedisRunning:
    """``limits.RunningTasks`` shared through Redis."""

    def __init__(self, redis: Any, prefix: str, address: str) -> None:
        self._redis, self._p, self._address = redis, prefix, address

    async def of(self, owner: str) -> dict[str, float]:
        with guard(self._address, "count the caller's running tasks"):
            rows = await self._redis.zrange(f"{self._p}:run:{owner}", 0, -1, withscores=True)
        return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in rows}

    async def add(self, owner: str, task_id: str, since: float) -> None:
        key = f"{self._p}:run:{owner}"
        with guard(self._address, "count the caller's running tasks"):
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.zadd(key, {task_id: since}).pexpire(key, DAY_MS).execute()

    async def forget(self, owner: str, task_ids: list[str]) -> None:
        if task_ids:
            with guard(self._address, "count the caller's running tasks"):
                await self._redis.zrem(f"{self._p}:run:{owner}", *task_ids)
