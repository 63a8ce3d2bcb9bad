"""``TaskQueue`` on Redis Streams: one Stream per skill, one consumer group of every runner.

    put      XADD <p>:q:<skill> {j: job}           (+ <p>:qi task → entry, for withdraw)
    claim    XAUTOCLAIM entries idle past the lease (a lost runner's job; deliveries + 1), else
             XREADGROUP … > BLOCK (a new job, delivery 1)
    heartbeat  XCLAIM … JUSTID by the holder (resets the idle time); another holder → ``LeaseLost``
    ack      XACK + XDEL by the holder, only after the task's final event is committed
    withdraw XDEL of an entry no runner has claimed yet

At-least-once: a runner that dies or stalls past ``lease_seconds`` loses its entry to the next claim; its later
writes are fenced by the task's epoch (the next holder takes the task over). A job carries its task only when the
task is not stored yet (``Job.create``); otherwise the runner reads the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from a2a_server.backends.redis_conn import UNAVAILABLE, Client, dedicated_client, guard
from a2a_server.errors import StoreUnavailable
from a2a_server.model import Task
from a2a_server.ports import Job, Lease, LeaseLost

log = logging.getLogger("a2a_server.redis")
GROUP = "runners"

# KEYS: queue stream.  ARGV: group, entry id, worker.  1 if the worker holds the entry (its idle time reset).
_HEARTBEAT = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
"""
# KEYS: queue stream, task index.  ARGV: group, entry id, worker, task id
_ACK = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('HGET', KEYS[2], ARGV[4]) == KEYS[1] .. ' ' .. ARGV[2] then redis.call('HDEL', KEYS[2], ARGV[4]) end
return 1
"""
# KEYS: queue stream, task index.  ARGV: job, task id.  The entry and its index in one round trip, atomically.
_PUT = """
local id = redis.call('XADD', KEYS[1], '*', 'j', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], KEYS[1] .. ' ' .. id)
return id
"""
# KEYS: task index.  ARGV: group, task id.  The queue key is read from the index (one Redis, not a Cluster).
_WITHDRAW = """
local v = redis.call('HGET', KEYS[1], ARGV[2])
if not v then return 0 end
local sp = string.find(v, ' ', 1, true)
local key, id = string.sub(v, 1, sp - 1), string.sub(v, sp + 1)
redis.call('HDEL', KEYS[1], ARGV[2])
if #redis.call('XPENDING', key, ARGV[1], id, id, 1) > 0 then return 0 end
return redis.call('XDEL', key, id)
"""


def _encode(job: Job) -> str:
    body: dict[str, Any] = {"t": job.task_id, "s": job.skill, "e": job.epoch, "m": job.metadata,
                            "c": job.with_context, "r": job.rerun, "n": job.create}  # fmt: skip
    if job.create and job.task is not None:  # the runner stores it with its first events
        body["task"] = job.task.model_dump(mode="json")
    return json.dumps(body, separators=(",", ":"))


def _decode(raw: bytes) -> Job:
    b = json.loads(raw)
    task = Task.model_validate(b["task"]) if "task" in b else None
    return Job(b["t"], b["s"], b["e"], b["m"], b["c"], task, b["r"], b["n"] and task is not None)


class RedisQueue:
    """``TaskQueue`` on Redis (see ``a2a_server.ports`` and the module docstring)."""

    def __init__(
        self, url: str, name: str, commands: Client, prefix: str, address: str, lease_seconds: float = 30.0
    ) -> None:
        self.url, self.name, self.redis, self.p, self.address = url, name, commands, prefix, address
        self.lease_seconds = lease_seconds
        self._claimer: Client | None = None  # its own connection: XREADGROUP BLOCK holds it
        self._groups: set[str] = set()
        self._depths: dict[str, int] = {}
        # XREADGROUP COUNT 1 over several streams hands out one entry of each: the extra ones wait here for the
        # runner's next claim (it claims again at once), re-checked to be still ours before they are returned
        self._extra: list[Lease] = []
        self._refresher: asyncio.Task[None] | None = None
        self._heartbeat = commands.register_script(_HEARTBEAT)
        self._ack = commands.register_script(_ACK)
        self._withdraw = commands.register_script(_WITHDRAW)
        self._put = commands.register_script(_PUT)
        self._reclaim_due = 0.0  # XAUTOCLAIM runs at most this often (every block of the claim), not per claim

    def qkey(self, skill: str) -> str:
        return f"{self.p}:q:{skill}"

    @property
    def index(self) -> str:
        return f"{self.p}:qi"

    async def _group(self, skill: str) -> None:
        if skill in self._groups:
            return
        with contextlib.suppress(ResponseError):  # BUSYGROUP: another process made it
            await self.redis.xgroup_create(self.qkey(skill), GROUP, id="0", mkstream=True)
        self._groups.add(skill)
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_depths())

    async def put(self, job: Job) -> None:
        with guard(self.address, "queue a task"):
            await self._group(job.skill)
            await self._put([self.qkey(job.skill), self.index], [_encode(job), job.task_id])

    async def withdraw(self, task_id: str) -> bool:
        with guard(self.address, "withdraw a queued task"):
            return bool(await self._withdraw([self.index], [GROUP, task_id]))

    async def claim(self, skills: Sequence[str], worker: str) -> Lease:
        if self._claimer is None:
            self._claimer = dedicated_client(self.url, self.name)
        lease_ms = int(self.lease_seconds * 1000)
        block_ms = max(50, min(lease_ms // 4, 2000))  # how soon an expired lease is noticed
        delay = 0.05
        while True:
            while self._extra:
                lease = self._extra.pop(0)
                if lease.job.skill in skills:
                    try:
                        await self.heartbeat(lease)
                        return lease
                    except (LeaseLost, StoreUnavailable):
                        continue  # went to another runner meanwhile (or Redis is away: it will go again)
            try:
                for skill in skills:
                    await self._group(skill)
                if time.monotonic() >= self._reclaim_due:
                    self._reclaim_due = time.monotonic() + block_ms / 1000
                    for skill in skills:
                        lost = await self._reclaim(skill, worker, lease_ms)
                        if lost is not None:
                            self._reclaim_due = 0.0  # there may be more
                            return lost
                streams: Any = {self.qkey(s): ">" for s in skills}
                reply = await self._claimer.xreadgroup(GROUP, worker, streams, count=1, block=block_ms)
                delay = 0.05
            except UNAVAILABLE as exc:
                log.warning("queue: Redis unreachable (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            for key, entries in reply or []:
                for entry_id, fields in entries:
                    skill = key.decode().removeprefix(f"{self.p}:q:")
                    self._extra.append(Lease(_decode(fields[b"j"]), 1, f"{skill}\n{entry_id.decode()}\n{worker}"))
            if self._extra:
                lease = self._extra.pop(0)
                log.debug("queue: task %s claimed by runner %s (delivery 1)", lease.job.task_id, worker)
                return lease

    async def _reclaim(self, skill: str, worker: str, lease_ms: int) -> Lease | None:
        key = self.qkey(skill)
        _, entries, *_ = await self.redis.xautoclaim(key, GROUP, worker, lease_ms, "0-0", count=1)
        for entry_id, fields in entries:
            if not fields:  # deleted while pending (acked elsewhere): drop it from the group
                await self.redis.xack(key, GROUP, entry_id)
                continue
            pending = await self.redis.xpending_range(key, GROUP, entry_id, entry_id, 1)
            deliveries = int(pending[0]["times_delivered"]) if pending else 2
            job = _decode(fields[b"j"])
            log.info("queue: task %s claimed by runner %s (delivery %d): the lease of its last runner expired",
                     job.task_id, worker, deliveries)  # fmt: skip
            return Lease(job, deliveries, f"{skill}\n{entry_id.decode()}\n{worker}")
        return None

    async def heartbeat(self, lease: Lease) -> None:
        skill, entry, worker = lease.token.split("\n")
        with guard(self.address, "extend a lease"):
            held = await self._heartbeat([self.qkey(skill)], [GROUP, entry, worker])
        if not held:
            raise LeaseLost(f"task {lease.job.task_id}: the lease expired and the job was handed out again")

    async def ack(self, lease: Lease) -> None:
        skill, entry, worker = lease.token.split("\n")
        with guard(self.address, "acknowledge a finished task"):
            await self._ack([self.qkey(skill), self.index], [GROUP, entry, worker, lease.job.task_id])

    def depth(self, skill: str) -> int:
        return self._depths.get(skill, 0)

    async def _refresh_depths(self) -> None:
        while True:  # depth() is synchronous (a metrics probe): it answers from this cache, 0.5 s old at most
            for skill in list(self._groups):
                with contextlib.suppress(*UNAVAILABLE, ResponseError):
                    async with self.redis.pipeline(transaction=False) as pipe:
                        pipe.xlen(self.qkey(skill))
                        pipe.xpending(self.qkey(skill), GROUP)
                        length, pending = await pipe.execute()
                    # acked and withdrawn entries are deleted: what is left is waiting or claimed
                    self._depths[skill] = int(length) - int(pending["pending"])
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        if self._claimer is not None:
            await self._claimer.aclose(close_connection_pool=True)
