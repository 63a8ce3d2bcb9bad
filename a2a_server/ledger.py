"""The Ledger port: billing channels that pay per delivered token (issue 12, the token-billing extension).

    open_channel ─► Channel{deposit, tokenRate, charged=0, state=open}
    send with metadata.channel ─► TaskService checks the channel (owner, open, not expired) ─► bind(task)
    Run: each Token event of n tokens ─► reserve(n * rate) (in memory: refused = the budget is exhausted)
         ─► append_charged(events, debits): the events and their charges in ONE transaction where the backend
            can (SQLite), keyed by (task, event id): a charge is never written twice, never without its event
    close ─► the channel's running tasks are canceled first ─► state closed ─► Receipt (the same on every call)
    recovery after a crash ─► void(task): the abandoned run's charges are refunded (the provider failed)

A backend keeps every open channel's balance in memory (the process that holds the store is the only writer),
so ``reserve`` is a dictionary lookup on the hot path; what it persists is the channels, the task bindings and
one row per charged event. Amounts are Python ints (base units of the currency, like wei), on the wire decimal
strings; a channel's ``charged`` never exceeds its ``deposit``.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from a2a_server.model import LoggedEvent, Task, TaskEvent
from a2a_server.ports import EventLog

EXTENSION_URI = "urn:a2a-server:ext:token-billing:v1"
# the most any amount may be (deposit, rate): 10^30 base units is beyond every real currency's supply
MAX_AMOUNT = 10**30


def iso_seconds(iso: str) -> float:
    """Seconds since the epoch of an ISO 8601 UTC time like ``model.utc_now()``'s."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def iso_at(seconds: float) -> str:
    """``model.utc_now()``'s shape for a moment given in seconds since the epoch."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}Z"


class ChannelState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    EXPIRED = "expired"


@dataclass(slots=True)
class Channel:
    id: str
    owner: str
    deposit: int
    token_rate: int
    created_at: str  # ISO 8601 UTC
    expires_at: str | None = None
    model: str | None = None
    state: ChannelState = ChannelState.OPEN
    closed_at: str | None = None
    charged: int = 0  # committed charges, voided ones excluded
    tokens: int = 0
    reserved: int = 0  # charges of events queued but not committed yet (never persisted)

    @property
    def expires_ts(self) -> float | None:
        return None if self.expires_at is None else iso_seconds(self.expires_at)

    def expired(self, now: float) -> bool:
        ts = self.expires_ts
        return ts is not None and now >= ts

    @property
    def balance(self) -> int:
        return self.deposit - self.charged

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "deposit": str(self.deposit),
            "tokenRate": str(self.token_rate),
            "charged": str(self.charged),
            "balance": str(self.balance),
            "tokens": self.tokens,
            "state": self.state.value,
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
        }
        if self.model is not None:
            out["model"] = self.model
        if self.closed_at is not None:
            out["closedAt"] = self.closed_at
        return out


@dataclass(slots=True)
class TaskBill:
    """What one task on a channel was charged; ``voided_*``: charges of runs abandoned by a dead server."""

    task_id: str
    tokens: int = 0
    charged: int = 0
    voided_tokens: int = 0
    voided: int = 0

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"taskId": self.task_id, "tokens": self.tokens, "charged": str(self.charged)}
        if self.voided_tokens:
            out["abandoned"] = {
                "tokens": self.voided_tokens,
                "refunded": str(self.voided),
                "reason": "the run was abandoned when the server or its worker died: not charged",
            }
        return out


@dataclass(slots=True)
class Receipt:
    channel: Channel
    tasks: list[TaskBill] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        ch = self.channel
        return {
            "channelId": ch.id,
            "state": ch.state.value,
            "deposit": str(ch.deposit),
            "tokenRate": str(ch.token_rate),
            "totalCharged": str(ch.charged),
            "refunded": str(ch.deposit - ch.charged),
            "tokens": ch.tokens,
            "closedAt": ch.closed_at,
            "tasks": [t.to_wire() for t in self.tasks],
        }


@dataclass(slots=True)  # not frozen: one is built per chunk on the hot path, and a frozen __init__ costs 3x
class Debit:
    """The charge of the event at ``index`` of a batch: ``tokens`` * the channel's rate = ``amount``."""

    index: int
    channel_id: str
    tokens: int
    amount: int


class Ledger(Protocol):
    """Billing channels; one process writes them (the one that holds the store).

    - ``open``/``get``/``list`` as named; ``get`` and ``list`` are owner-scoped (None: any owner).
    - ``bind`` records that a task runs on a channel (before it is queued).
    - ``reserve(channel, amount)`` (sync, in memory): True and the amount is held if the channel is open and its
      balance less what is held covers it; False otherwise. Every reservation ends in ``append_charged``
      (committed: charged) or ``release``.
    - ``append_charged``: ``EventLog.append_many`` plus the debits of its events, in the same transaction where
      the backend allows it; a debit is keyed by (task, event id) and applied at most once.
    - ``close(channel, state)`` closes an open channel (closed or expired) and returns its receipt; on a closed
      channel it returns the same receipt again.
    - ``void(task, after)``: refund the task's charges of events after ``after`` (the run a dead process
      abandoned); returns the number of tokens voided.
    """

    async def open(self, channel: Channel) -> None: ...

    async def get(self, channel_id: str, *, owner: str | None = None) -> Channel | None: ...

    async def list(self, *, owner: str | None = None) -> builtins.list[Channel]: ...

    async def bind(self, channel_id: str, task_id: str) -> None: ...

    def peek(self, channel_id: str) -> Channel | None:
        """The channel as this process holds it (sync; no owner check)."""
        ...

    def channel_of(self, task_id: str) -> str | None: ...

    def tasks_of(self, channel_id: str) -> builtins.list[str]: ...

    def reserve(self, channel_id: str, amount: int) -> bool: ...

    def release(self, channel_id: str, amount: int) -> None: ...

    async def append_charged(
        self,
        events: EventLog,
        task_id: str,
        batch: Sequence[TaskEvent],
        debits: Sequence[Debit],
        *,
        snapshot: Task | None,
        epoch: int,
        create: bool,
    ) -> builtins.list[LoggedEvent]: ...

    async def close(self, channel_id: str, state: ChannelState, at: str) -> Receipt: ...

    async def receipt(self, channel_id: str) -> Receipt: ...

    async def void(self, task_id: str, after: int) -> int: ...

    def settle(self, task_id: str) -> None:
        """The task's run ended (its final event is committed): its charges may be folded (memory)."""
        ...
