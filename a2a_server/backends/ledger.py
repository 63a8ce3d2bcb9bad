"""``MemoryLedger``: the Ledger port in this process, and the accounting every ledger backend shares.

Every channel, binding and charge lives in dictionaries; ``SQLiteLedger`` (sqlite_ledger.py) subclasses it and
persists each change, loading them all back at open. A charge is applied in the same event-loop step as the
append of its event (no await in between), so in one process nobody sees one without the other.

Charges are kept per batch (one record for the chunks one transaction wrote, keyed by the first event id: batches
never overlap), with the ids of the events they charge packed 4 bytes each. When a run ends (``settle``) its
task's records fold into one per channel and state: what stays in memory is ~4 bytes a charged event and a record
a task, not an object per token.
"""

from __future__ import annotations

import builtins
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from a2a_server.ledger import Channel, ChannelState, Debit, Receipt, TaskBill
from a2a_server.model import LoggedEvent, Task, TaskEvent
from a2a_server.ports import EventLog


@dataclass(slots=True)
class Charge:
    """The charges of some events of one task on one channel: their ids, tokens and amount."""

    channel_id: str
    tokens: int
    amount: int
    events: array[int]
    voided: bool = False


class MemoryLedger:
    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self.bindings: dict[str, str] = {}  # task id → channel id
        self.by_channel: dict[str, list[str]] = {}  # channel id → task ids, in binding order
        self.charges: dict[str, dict[int, Charge]] = {}  # task id → first event id → charge (see the docstring)

    # ------------------------------------------------------------------ channels

    async def open(self, channel: Channel) -> None:
        self._opened(channel)

    def _opened(self, channel: Channel) -> None:
        self.channels[channel.id] = channel
        self.by_channel.setdefault(channel.id, [])

    async def get(self, channel_id: str, *, owner: str | None = None) -> Channel | None:
        channel = self.channels.get(channel_id)
        return None if channel is None or (owner is not None and channel.owner != owner) else channel

    async def list(self, *, owner: str | None = None) -> builtins.list[Channel]:
        found = [c for c in self.channels.values() if owner is None or c.owner == owner]
        return sorted(found, key=lambda c: c.created_at, reverse=True)

    async def bind(self, channel_id: str, task_id: str) -> None:
        self._bound(channel_id, task_id)

    def _bound(self, channel_id: str, task_id: str) -> None:
        if task_id not in self.bindings:  # the first channel of a task stays its channel (a later turn's is ignored)
            self.bindings[task_id] = channel_id
            self.by_channel.setdefault(channel_id, []).append(task_id)

    def peek(self, channel_id: str) -> Channel | None:
        return self.channels.get(channel_id)

    def channel_of(self, task_id: str) -> str | None:
        return self.bindings.get(task_id)

    def tasks_of(self, channel_id: str) -> builtins.list[str]:
        return list(self.by_channel.get(channel_id, []))

    # ------------------------------------------------------------------ charging

    def reserve(self, channel_id: str, amount: int) -> bool:
        channel = self.channels.get(channel_id)
        if channel is None or channel.state != ChannelState.OPEN:
            return False
        if channel.expires_at is not None and channel.expired(time.time()):
            return False  # the service's sweep closes it as expired soon; nothing more is charged meanwhile
        if channel.deposit - channel.charged - channel.reserved < amount:
            return False
        channel.reserved += amount
        return True

    def release_all(self, debits: Sequence[Debit]) -> None:
        if len({d.channel_id for d in debits}) == 1:  # the usual batch: one channel, one lookup
            self.release(debits[0].channel_id, sum(d.amount for d in debits))
            return
        for debit in debits:
            self.release(debit.channel_id, debit.amount)

    def release(self, channel_id: str, amount: int) -> None:
        channel = self.channels.get(channel_id)
        if channel is not None:
            channel.reserved = max(0, channel.reserved - amount)

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
    ) -> builtins.list[LoggedEvent]:
        try:
            logged = await events.append_many(task_id, batch, snapshot=snapshot, epoch=epoch, create=create)
        finally:
            self.release_all(debits)
        self._charged(task_id, [(logged[d.index].id, d) for d in debits])  # no await since the append
        return logged

    def _charged(self, task_id: str, charges: Sequence[tuple[int, Debit]]) -> None:
        """Apply the committed charges (event id, debit) of one batch: one record per channel, keyed by its first
        event id; a batch applied already is skipped."""
        mine = self.charges.setdefault(task_id, {})
        for channel_id in {d.channel_id for _, d in charges}:
            of = [(event_id, d) for event_id, d in charges if d.channel_id == channel_id]
            if of[0][0] in mine:
                continue
            record = Charge(channel_id, sum(d.tokens for _, d in of), sum(d.amount for _, d in of),
                            array("I", (event_id for event_id, _ in of)))  # fmt: skip
            mine[of[0][0]] = record
            self._add(record)

    def _add(self, record: Charge) -> None:
        if not record.voided:
            channel = self.channels[record.channel_id]
            channel.charged += record.amount
            channel.tokens += record.tokens

    def settle(self, task_id: str) -> None:
        """The task's run ended: fold its records into one per channel and state (nothing of it is voided later:
        a recovery voids only the events after the task's last settled turn)."""
        mine = self.charges.get(task_id)
        if not mine or len(mine) == 1:
            return
        folded: dict[tuple[str, bool], tuple[int, Charge]] = {}
        for first, record in sorted(mine.items()):
            key = (record.channel_id, record.voided)
            if key not in folded:
                folded[key] = (first, Charge(record.channel_id, 0, 0, array("I"), record.voided))
            into = folded[key][1]
            into.tokens += record.tokens
            into.amount += record.amount
            into.events.extend(record.events)
        self.charges[task_id] = dict(folded.values())

    def charged_events(self, task_id: str) -> set[int]:
        """The ids of the task's events that were charged (voided or not)."""
        return {event_id for record in self.charges.get(task_id, {}).values() for event_id in record.events}

    async def void(self, task_id: str, after: int) -> int:
        return self._voided(task_id, after)

    def _voided(self, task_id: str, after: int) -> int:
        tokens = 0
        for first, charge in self.charges.get(task_id, {}).items():
            if first > after and not charge.voided:
                charge.voided = True
                channel = self.channels[charge.channel_id]
                channel.charged -= charge.amount
                channel.tokens -= charge.tokens
                tokens += charge.tokens
        return tokens

    # ------------------------------------------------------------------ closing

    async def close(self, channel_id: str, state: ChannelState, at: str) -> Receipt:
        channel = self.channels[channel_id]
        if channel.state == ChannelState.OPEN:
            self._closed(channel, state, at)
        return await self.receipt(channel_id)

    def _closed(self, channel: Channel, state: ChannelState, at: str) -> None:
        channel.state, channel.closed_at = state, at

    async def receipt(self, channel_id: str) -> Receipt:
        channel = self.channels[channel_id]
        bills = []
        for task_id in self.by_channel.get(channel_id, []):
            bill = TaskBill(task_id)
            for charge in self.charges.get(task_id, {}).values():
                if charge.channel_id != channel_id:
                    continue
                if charge.voided:
                    bill.voided_tokens += charge.tokens
                    bill.voided += charge.amount
                else:
                    bill.tokens += charge.tokens
                    bill.charged += charge.amount
            bills.append(bill)
        return Receipt(channel, bills)

    async def close_store(self) -> None:
        return None
