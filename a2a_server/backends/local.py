"""The in-process TaskQueue and Control of the embedded backends (memory, SQLite): one process runs everything.

Leases are real here too: a run that stops heartbeating (its runner's loop is wedged) loses its job to the next
claim, and its later heartbeat or ack fails. Across a process crash the queue is gone with the process; the
store's OS lock guarantees that the next process is alone, and ``Runner.recover`` puts the unsettled tasks back.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from a2a_server.model import new_id
from a2a_server.ports import Job, Lease, LeaseLost


@dataclass(slots=True)
class _Entry:
    job: Job
    deliveries: int = 0
    token: str = ""
    deadline: float = 0.0


class LocalQueue:
    """``TaskQueue`` in memory (see ``a2a_server.ports``)."""

    def __init__(self, lease_seconds: float = 30.0) -> None:
        self.lease_seconds = lease_seconds
        self._waiting: dict[str, deque[_Entry]] = {}
        self._leased: dict[str, _Entry] = {}
        self._wakeup = asyncio.Event()

    async def put(self, job: Job) -> None:
        self._waiting.setdefault(job.skill, deque()).append(_Entry(job))
        self._wakeup.set()

    async def withdraw(self, task_id: str) -> bool:
        for entries in self._waiting.values():
            for entry in entries:
                if entry.job.task_id == task_id:
                    entries.remove(entry)
                    return True
        return False

    async def claim(self, skills: Sequence[str], worker: str) -> Lease:
        while True:
            self._reap()
            for skill in skills:
                entries = self._waiting.get(skill)
                if entries:
                    entry = entries.popleft()
                    entry.deliveries += 1
                    entry.token = new_id()
                    entry.deadline = time.monotonic() + self.lease_seconds
                    self._leased[entry.token] = entry
                    return Lease(entry.job, entry.deliveries, entry.token)
            self._wakeup.clear()
            # wake up for a put, or when the earliest lease expires (its job is then claimed again)
            wait = min((e.deadline for e in self._leased.values()), default=None)
            if wait is None:
                await self._wakeup.wait()
                continue
            try:
                async with asyncio.timeout(max(wait - time.monotonic(), 0.0) + 0.01):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def _reap(self) -> None:
        now = time.monotonic()
        for token, entry in list(self._leased.items()):
            if entry.deadline <= now:
                del self._leased[token]
                self._waiting.setdefault(entry.job.skill, deque()).appendleft(entry)

    async def heartbeat(self, lease: Lease) -> None:
        entry = self._leased.get(lease.token)
        if entry is None:
            raise LeaseLost(f"task {lease.job.task_id}: the lease expired and the job was handed out again")
        entry.deadline = time.monotonic() + self.lease_seconds

    async def ack(self, lease: Lease) -> None:
        self._leased.pop(lease.token, None)

    def depth(self, skill: str) -> int:
        return len(self._waiting.get(skill, ()))

    async def close(self) -> None:
        self._waiting.clear()
        self._leased.clear()


class LocalControl:
    """``Control`` in one process: a cancel calls the runner's callback directly."""

    def __init__(self) -> None:
        self._watchers: dict[str, Callable[[], None]] = {}

    def watch(self, task_id: str, on_cancel: Callable[[], None]) -> None:
        self._watchers[task_id] = on_cancel

    def unwatch(self, task_id: str, on_cancel: Callable[[], None]) -> None:
        if self._watchers.get(task_id) is on_cancel:
            del self._watchers[task_id]

    async def cancel(self, task_id: str) -> bool:
        on_cancel = self._watchers.get(task_id)
        if on_cancel is None:
            return False
        on_cancel()
        return True

    async def close(self) -> None:
        self._watchers.clear()
