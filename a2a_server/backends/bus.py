"""In-process fan-out of committed events to live subscribers: the live half of the memory and SQLite logs.

One bus carries each task's events (keyed by task id), another the global order (one key).

Contract of ``EventBus.subscribe``:
- The subscriber sees every event published for its task after it subscribed, in publish order.
- Each subscriber has a buffer bounded in events (``buffer_limit``) and in bytes (``byte_limit``, as
  estimated by the bus's ``weigh`` function: ``weight.py``; the byte bound counts what arrives while the
  consumer is busy elsewhere, see ``Subscription._push``). ``publish`` never waits: when a subscriber goes
  past either bound it is dropped (``dropped`` becomes True, its buffer is freed at once, its iterator
  stops) and the others go on.
- A dropped subscriber loses nothing that matters: the log, not the bus, is the memory. Its follower
  (``follow.py``) reads on from the log after the last event it handed over and subscribes again, so the
  reader sees every event once, in order, and the bound can be small: a reader blocked on a client that
  does not read holds what it had not taken yet of a burst plus one bound here, and once dropped nothing.
- ``close()`` on a subscription detaches it at once; the owner must call it (``async with``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# the default bound of one subscriber's buffer in (estimated) bytes; Settings.subscriber_buffer_bytes. Going past it
# costs the reader a read of the log (follow.py), not its stream: ~30 one-word chunks (bench/slow_readers.py)
DEFAULT_BYTE_LIMIT = 64 * 1024


def _one(event: object) -> int:
    return 1


def take_front(buffer: deque[T], sizes: deque[int], limit: int) -> tuple[list[T], int]:
    """Pop items from the front of ``buffer`` (``sizes`` holds their estimates) up to ``limit`` estimated bytes, at
    least one: the batch and its size. The in-process bus and the Redis tail hand out batches this way."""
    batch: list[T] = []
    taken = 0
    while buffer and (not batch or taken + sizes[0] <= limit):
        taken += sizes.popleft()
        batch.append(buffer.popleft())
    return batch, taken


class Subscription(Generic[T]):
    def __init__(self, bus: EventBus[T], task_id: str, limit: int, byte_limit: int, waiting: bool = True) -> None:
        self._bus = bus
        self.task_id = task_id
        self._limit = limit
        self._byte_limit = byte_limit
        self._buffer: deque[T] = deque()
        self._sizes: deque[int] = deque()  # the estimate of each buffered event
        self.buffered_bytes = 0  # the estimated size of what is in the buffer
        # True until the consumer takes a batch and again whenever it waits for the next one: see _push
        self._consumer_waiting = waiting
        self._busy_bytes = 0  # what was pushed since the consumer last took a batch, while it was busy
        self._wakeup = asyncio.Event()
        self.dropped = False
        self.closed = False
        # what the publisher attached to the newest item (the memory and SQLite logs: the task snapshot)
        self.attachment: Any = None

    def _push(self, event: T, size: int) -> bool:
        # The byte bound is on what arrives while the consumer is busy elsewhere, which for a stream means
        # blocked writing to a client that does not read: that is a slow reader. A consumer waiting for this
        # buffer (or that has not read yet), or still working through a burst that arrived while it waited, is
        # only behind because the publisher has not let it run: dropping it would make a healthy reader re-read
        # the log (measured: 3x slower observers in bench/slow_readers.py), so only the event bound applies.
        if not self._consumer_waiting:
            self._busy_bytes += size
        if len(self._buffer) >= self._limit or self._busy_bytes > self._byte_limit:
            self.dropped = True
            self._buffer.clear()
            self._sizes.clear()
            self.buffered_bytes = 0
            self._wakeup.set()
            return False
        self._buffer.append(event)
        self._sizes.append(size)
        self.buffered_bytes += size
        self._wakeup.set()
        return True

    async def _ready(self) -> bool:
        """Wait until something is buffered; False once dropped or closed."""
        self._consumer_waiting = True
        while not self._buffer:
            if self.dropped or self.closed:
                return False
            self._wakeup.clear()
            await self._wakeup.wait()
        self._consumer_waiting, self._busy_bytes = False, 0
        return not self.dropped

    async def next(self) -> T | None:
        """The next event, or None once dropped or closed."""
        if not await self._ready():
            return None
        self.buffered_bytes -= self._sizes.popleft()
        return self._buffer.popleft()

    async def next_batch(self) -> list[T] | None:
        """Every event buffered so far (waiting for one if there is none), or None once dropped or closed."""
        if not await self._ready():
            return None
        if self.buffered_bytes <= self._byte_limit:
            batch = list(self._buffer)
            self._buffer.clear()
            self._sizes.clear()
            self.buffered_bytes = 0
            return batch
        # at most byte_limit at a time (at least one event): a consumer that then blocks on a client that does not
        # read holds no more than that in hand
        batch, taken = take_front(self._buffer, self._sizes, self._byte_limit)
        self.buffered_bytes -= taken
        return batch

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._wakeup.set()
            self._bus._detach(self)

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class EventBus(Generic[T]):
    def __init__(
        self, buffer_limit: int = 8192, byte_limit: int = DEFAULT_BYTE_LIMIT, weigh: Callable[[T], int] = _one
    ) -> None:
        self.buffer_limit = buffer_limit
        self.byte_limit = byte_limit
        # the estimated size of an event, computed once per publish that has a subscriber
        self.weigh = weigh
        self._subscribers: dict[str, list[Subscription[T]]] = {}
        self.closed = False

    def subscribe(self, task_id: str, *, waiting: bool = True) -> Subscription[T]:
        """A new subscription; on a closed bus (the backend closed) one that is closed already. ``waiting=False``:
        its consumer is busy until it first reads (a follower catching up from the log), so the byte bound
        applies from the start."""
        sub: Subscription[T] = Subscription(self, task_id, self.buffer_limit, self.byte_limit, waiting)
        if self.closed:
            sub.closed = True
        else:
            self._subscribers.setdefault(task_id, []).append(sub)
        return sub

    def publish(self, task_id: str, event: T, attachment: Any = None) -> None:
        subs = self._subscribers.get(task_id)
        if not subs:
            return
        size = self.weigh(event)
        for sub in list(subs):
            if attachment is not None:
                sub.attachment = attachment
            if not sub._push(event, size):
                self._detach(sub)

    def publish_many(self, task_id: str, events: list[T], attachment: Any = None) -> None:
        for event in events:
            self.publish(task_id, event, attachment)

    def subscriber_count(self, task_id: str | None = None) -> int:
        if task_id is not None:
            return len(self._subscribers.get(task_id, ()))
        return sum(len(s) for s in self._subscribers.values())

    def close_all(self) -> None:
        self.closed = True
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                sub.close()

    def _detach(self, sub: Subscription[T]) -> None:
        subs = self._subscribers.get(sub.task_id)
        if subs is None:
            return
        try:
            subs.remove(sub)
        except ValueError:
            return
        if not subs:
            del self._subscribers[sub.task_id]
