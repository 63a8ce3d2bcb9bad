"""A pool of model instances with a bounded FIFO wait queue whose members know their position.

A ctransformers model is not safe for two generations at once, so each generation holds one instance. Tasks
beyond the pool wait in arrival order; ``release`` hands a freed instance straight to the first waiter (a newcomer
never overtakes someone already waiting). A full queue refuses at once (``QueueFull``) instead of hanging.

Runs on the event loop only (``release`` from a worker thread goes through ``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    pass


class Ticket(Generic[T]):
    """A place in the queue. ``position`` is 1 for the next in line, 0 once ``item`` is granted."""

    def __init__(self, position: int) -> None:
        self.position = position
        self.item: T | None = None
        self.changed = asyncio.Event()  # set when the position changes or the item is granted

    @property
    def granted(self) -> bool:
        return self.item is not None


class Pool(Generic[T]):
    def __init__(self, items: Sequence[T], max_waiting: int) -> None:
        if not items:
            raise ValueError("a pool needs at least one instance")
        self.size = len(items)
        self.max_waiting = max_waiting
        self._free: deque[T] = deque(items)
        self._waiting: deque[Ticket[T]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def free(self) -> int:
        return len(self._free)

    def enqueue(self) -> Ticket[T]:
        """An instance at once if one is free, else a place in the queue; ``QueueFull`` if the queue is full."""
        if self._free and not self._waiting:
            ticket: Ticket[T] = Ticket(0)
            ticket.item = self._free.popleft()
            return ticket
        if len(self._waiting) >= self.max_waiting:
            raise QueueFull(
                f"queue full: {len(self._waiting)} tasks waiting for {self.size} model instance(s) "
                f"(limit {self.max_waiting}); try again later"
            )
        ticket = Ticket(len(self._waiting) + 1)
        self._waiting.append(ticket)
        return ticket

    def leave(self, ticket: Ticket[T]) -> None:
        """Give up a place (a canceled task); a granted but unused instance goes back to the pool."""
        if ticket.item is not None:
            item, ticket.item = ticket.item, None
            self.release(item)
        elif ticket in self._waiting:
            self._waiting.remove(ticket)
            self._renumber()

    def release(self, item: T) -> None:
        if self._waiting:
            ticket = self._waiting.popleft()
            ticket.item, ticket.position = item, 0
            ticket.changed.set()
            self._renumber()
        else:
            self._free.append(item)

    def _renumber(self) -> None:
        for index, ticket in enumerate(self._waiting, start=1):
            if ticket.position != index:
                ticket.position = index
                ticket.changed.set()
