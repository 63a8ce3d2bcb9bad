"""One run's charging on a billing channel (the Ledger port): what the run may deliver, what it was charged.

    Run._token(chunk of n tokens) ─► Meter.take(index in the outbox, n): Ledger.reserve(n * rate)
        refused ─► the chunk is not sent; the run stops, completed with finish_reason "budget_exhausted"
                   (canceled with "channel_closed" / "channel_expired" when the channel ended meanwhile)
    Run._flush(batch) ─► Meter.append(batch): Ledger.append_charged(events + their debits, one transaction)
    Run.finish ─► Meter.usage(metadata): completion_tokens and cost are what this run was charged

A chunk is charged when its event is committed, which is what "delivered" means: every event a client can
receive or resume is committed, and nothing uncommitted ever reaches one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from a2a_server.ledger import ChannelState, Debit, Ledger
from a2a_server.model import LoggedEvent, Task, TaskEvent
from a2a_server.ports import EventLog


@dataclass(slots=True)
class Meter:
    ledger: Ledger
    channel_id: str
    rate: int
    tokens: int = 0  # this run's chunks, committed or queued
    amount: int = 0
    stopped: str | None = None  # the finish_reason once a chunk was refused
    debits: list[Debit] = field(default_factory=list)  # of the events waiting in the run's outbox

    def take(self, index: int, tokens: int) -> bool:
        """Hold the charge of a chunk about to be queued at ``index`` of the outbox; False: it cannot be paid."""
        amount = tokens * self.rate
        if not self.ledger.reserve(self.channel_id, amount):
            channel = self.ledger.peek(self.channel_id)
            state = channel.state if channel is not None else ChannelState.CLOSED
            if channel is not None and channel.expired(time.time()):
                state = ChannelState.EXPIRED
            self.stopped = {ChannelState.OPEN: "budget_exhausted", ChannelState.EXPIRED: "channel_expired"}.get(
                state, "channel_closed"
            )
            return False
        self.debits.append(Debit(index, self.channel_id, tokens, amount))
        self.tokens += tokens
        self.amount += amount
        return True

    def drain(self) -> list[Debit]:
        """The debits of the outbox being written (the outbox starts afresh at index 0)."""
        debits, self.debits = self.debits, []
        return debits

    async def append(
        self,
        events: EventLog,
        task_id: str,
        batch: Sequence[TaskEvent],
        debits: Sequence[Debit],
        *,
        snapshot: Task | None,
        epoch: int,
        create: bool,
    ) -> list[LoggedEvent]:
        return await self.ledger.append_charged(
            events, task_id, batch, debits, snapshot=snapshot, epoch=epoch, create=create
        )

    def release(self, debits: Sequence[Debit]) -> None:
        """Give back what was held for events that will never be written (the run was fenced off)."""
        for debit in debits:
            self.ledger.release(debit.channel_id, debit.amount)

    def usage(self, metadata: dict[str, Any] | None, state_reason: str) -> dict[str, Any]:
        """The final metadata with the run's usage as charged: completion_tokens, cost and, when a chunk was
        refused, the reason; ``billing`` names the channel and its rate."""
        out = dict(metadata or {})
        usage = dict(out.get("usage") or {}) if isinstance(out.get("usage"), dict) else {}
        prompt = usage.get("prompt_tokens", 0)
        prompt = prompt if isinstance(prompt, int) else 0
        usage.update(
            prompt_tokens=prompt, completion_tokens=self.tokens, total_tokens=prompt + self.tokens,
            cost=str(self.amount),
        )  # fmt: skip
        if self.stopped is not None:
            usage["finish_reason"] = self.stopped
        else:
            usage.setdefault("finish_reason", state_reason)
        out["usage"] = usage
        out["billing"] = {"channel": self.channel_id, "tokenRate": str(self.rate), "charged": str(self.amount),
                          "tokens": self.tokens}  # fmt: skip
        return out
