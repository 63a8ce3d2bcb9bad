"""What one caller may ask for: a request rate, tasks running at once, streams open at once, the size of a message.

    every request ─► Buckets.take(principal)            (token bucket; empty ─► 429, Retry-After: time to 1 token)
    a stream opens ─► Streams.open(principal) … close    (over max_streams ─► 429)
    submit ─► LimitedService: check_message (parts, bytes, metadata depth/size ─► -32602 naming the limit)
                              running tasks of the owner < max_running_tasks, else 429

The request rate and the running tasks are kept in this process (``Buckets``, ``LocalRunning``), or, on a Redis
store, in Redis for every replica at once (``backends/redis_limits.py``: ``Rate``, ``RunningTasks``). Open streams
are counted per process (a stream is held by one process; a fleet-wide count would outlive a killed one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from a2a_server.dialects.base import SendRequest
from a2a_server.errors import InvalidParams, TaskBusy, TooManyRequests
from a2a_server.ports import Rate as Rate  # the gate (http/auth.py, http/state.py) names it from here
from a2a_server.ports import RunningTasks
from a2a_server.service import Submitted, TaskService

# the causes of this module's refusals (a2a_refusals{reason})
_LIMITS = ("too_many_parts", "metadata_too_deep", "metadata_too_large", "message_too_large", "too_many_tasks")


@dataclass(frozen=True, slots=True)
class Limits:
    rate: float = 50.0  # requests per second, refilled continuously; 0 = no rate limit
    burst: int = 100  # the bucket's size: requests that may arrive at once
    running_tasks: int = 32  # tasks submitted or working at once; 0 = no cap
    streams: int = 64  # SSE streams open at once; 0 = no cap
    message_bytes: int = 1024 * 1024  # a message's parts and metadata, as JSON
    parts: int = 256
    metadata_depth: int = 16
    metadata_bytes: int = 64 * 1024


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class Buckets:
    """One token bucket per principal (or client address). Idle full buckets are forgotten, so a scan of many
    addresses cannot grow this without bound for long."""

    rate: float
    burst: int
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _swept: float = 0.0

    def take(self, who: str, now: float | None = None) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(who)
        if bucket is None:
            bucket = self._buckets[who] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if now - self._swept > 60:
            self._sweep(now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _sweep(self, now: float) -> None:
        self._swept = now
        full = self.burst / self.rate
        for who in [w for w, b in self._buckets.items() if now - b.stamp > full]:
            del self._buckets[who]


@dataclass
class LocalRunning:
    """``RunningTasks`` of this process."""

    _running: dict[str, dict[str, float]] = field(default_factory=dict)

    async def of(self, owner: str) -> dict[str, float]:
        return dict(self._running.get(owner, {}))

    async def add(self, owner: str, task_id: str, since: float) -> None:
        self._running.setdefault(owner, {})[task_id] = since

    async def forget(self, owner: str, task_ids: list[str]) -> None:
        mine = self._running.get(owner, {})
        for task_id in task_ids:
            mine.pop(task_id, None)
        if not mine:
            self._running.pop(owner, None)


@dataclass
class Streams:
    """Open SSE streams per principal."""

    cap: int
    _open: dict[str, int] = field(default_factory=dict)

    def full(self, who: str) -> bool:
        return self.cap > 0 and self._open.get(who, 0) >= self.cap

    def open(self, who: str) -> None:
        self._open[who] = self._open.get(who, 0) + 1

    def close(self, who: str) -> None:
        left = self._open.get(who, 0) - 1
        if left > 0:
            self._open[who] = left
        else:
            self._open.pop(who, None)


def check_message(req: SendRequest, limits: Limits) -> None:
    """InvalidParams naming the limit a message goes past."""
    message = req.message
    if len(message.parts) > limits.parts:
        raise InvalidParams(f"Invalid params: the message has {len(message.parts)} parts; the limit is "
                            f"{limits.parts} (max_parts)", param="message.parts", cause="too_many_parts")  # fmt: skip
    for where, meta in (("metadata", req.metadata), ("message.metadata", message.metadata)):
        if not meta:
            continue
        depth = _depth(meta)
        if depth > limits.metadata_depth:
            raise InvalidParams(f"Invalid params: {where} nests {depth} levels; the limit is {limits.metadata_depth} "
                                "(max_metadata_depth)", param=where, cause="metadata_too_deep")  # fmt: skip
        size = _size(meta)
        if size > limits.metadata_bytes:
            raise InvalidParams(f"Invalid params: {where} is {size} bytes as JSON; the limit is "
                                f"{limits.metadata_bytes} (max_metadata_bytes)", param=where,
                                cause="metadata_too_large")  # fmt: skip
    size = sum(_size(p.model_dump(exclude_none=True)) for p in message.parts)
    if size > limits.message_bytes:
        raise InvalidParams(f"Invalid params: the message's parts are {size} bytes as JSON; the limit is "
                            f"{limits.message_bytes} (max_message_bytes)", param="message.parts",
                            cause="message_too_large")  # fmt: skip


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def _depth(value: Any) -> int:
    """Containers nested in ``value`` (a flat object is 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterable[Any] = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


class LimitedService(TaskService):
    """TaskService with the per-caller limits on what ``submit`` starts (every transport submits through it)."""

    limits = Limits()

    def __init__(self, *args: Any, limits: Limits, running: RunningTasks | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.running: RunningTasks = running if running is not None else LocalRunning()

    async def submit(self, req: SendRequest, dialect: str, *, owner: str = "anonymous", follow: bool = False
                     ) -> Submitted:  # fmt: skip
        try:
            return await self._submit(req, dialect, owner, follow)
        except (InvalidParams, TooManyRequests) as exc:
            if exc.cause in _LIMITS:
                self.metrics.refusals.labels(exc.cause).inc()
            raise

    async def _submit(self, req: SendRequest, dialect: str, owner: str, follow: bool) -> Submitted:
        check_message(req, self.limits)
        cap = self.limits.running_tasks
        if cap > 0:
            mine = await self.running.of(owner)
            new = req.task_id is None or req.task_id not in mine
            if new and len(mine) >= cap:
                await self._prune(owner, mine)
                if len(mine) >= cap:
                    raise TooManyRequests(f"Too many tasks: {owner!r} has {len(mine)} running; the limit is {cap} "
                                          "(max_running_tasks); wait for one to finish", 1.0,
                                          cause="too_many_tasks")  # fmt: skip
        try:
            submitted = await super().submit(req, dialect, owner=owner, follow=follow)
        except TaskBusy:
            # a 0.1 client chose the id of another principal's task: say the id is taken, nothing about the task
            if req.task_id and req.client_task_id and await self.find(req.task_id, owner) is None:
                raise TaskBusy(f"Task id {req.task_id} is taken; choose another id") from None
            raise
        if cap > 0:
            await self.running.add(owner, submitted.task.id, time.time())
        return submitted

    async def _prune(self, owner: str, mine: dict[str, float]) -> None:
        """Forget the tasks that settled (or were purged): only done when the cap is reached, so a submit under
        the cap costs nothing. A new task is stored by its run's first write: not found for a moment is not gone."""
        now, gone = time.time(), []
        for task_id, since in list(mine.items()):
            task = await self.find(task_id, None)
            if (task is None and now - since > 30) or (task is not None and task.status.state.settled):
                del mine[task_id]
                gone.append(task_id)
        await self.running.forget(owner, gone)
