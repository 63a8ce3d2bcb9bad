"""``SQLiteLedger``: the Ledger port in the SQLite store's file, on its connection and its writer.

The accounting is ``MemoryLedger``'s, loaded from the tables at open; each change is written through the store's
group-commit writer. A batch's charges are one row written by ``append_many``'s ``then`` hook, inside the
transaction that inserts its events: after kill -9 the ledger holds exactly the charges of the committed events,
each event id listed once (``INSERT OR IGNORE`` on (task, first event id): batches never overlap).
"""

from __future__ import annotations

import builtins
import sqlite3
from array import array
from collections.abc import Sequence
from typing import Any

from a2a_server.backends.ledger import Charge, MemoryLedger
from a2a_server.backends.sqlite import SQLiteStore
from a2a_server.ledger import Channel, ChannelState, Debit, Receipt
from a2a_server.model import LoggedEvent, Task, TaskEvent
from a2a_server.ports import EventLog

INSERT_CHANNEL = """INSERT INTO channels (id, owner, deposit, token_rate, model, state, created_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
BIND = "INSERT OR IGNORE INTO channel_tasks (task_id, channel_id) VALUES (?, ?)"
CHARGE = "INSERT OR IGNORE INTO charges (task_id, seq, channel_id, tokens, amount, events) VALUES (?, ?, ?, ?, ?, ?)"
VOID = "UPDATE charges SET voided = 1 WHERE task_id = ? AND seq > ? AND voided = 0"
CLOSE = "UPDATE channels SET state = ?, closed_at = ? WHERE id = ? AND state = 'open'"
LOAD_CHANNELS = """SELECT id, owner, deposit, token_rate, model, state, created_at, expires_at, closed_at
    FROM channels ORDER BY created_at"""
# rowid order is binding order: the receipt lists a channel's tasks as they came
LOAD_BINDINGS = "SELECT task_id, channel_id FROM channel_tasks ORDER BY rowid"
LOAD_CHARGES = "SELECT task_id, seq, channel_id, tokens, amount, events, voided FROM charges"


class SQLiteLedger(MemoryLedger):
    def __init__(self, store: SQLiteStore) -> None:
        super().__init__()
        self.store = store

    @classmethod
    async def open_on(cls, store: SQLiteStore) -> SQLiteLedger:
        ledger = cls(store)
        await ledger._load()
        return ledger

    async def _load(self) -> None:
        def op(conn: sqlite3.Connection) -> tuple[list[Any], list[Any], list[Any]]:
            return (
                conn.execute(LOAD_CHANNELS).fetchall(),
                conn.execute(LOAD_BINDINGS).fetchall(),
                conn.execute(LOAD_CHARGES).fetchall(),
            )

        channels, bindings, charges = await self.store._read(op)
        for cid, owner, deposit, rate, model, state, created, expires, closed in channels:
            self._opened(Channel(cid, owner, int(deposit), int(rate), created, expires, model, ChannelState(state),
                                 closed))  # fmt: skip
        for task_id, channel_id in bindings:
            self._bound(channel_id, task_id)
        for task_id, seq, channel_id, tokens, amount, events, voided in charges:
            ids = array("I", (int(item.partition(":")[0]) for item in events.split(",")))
            record = Charge(channel_id, int(tokens), int(amount), ids, bool(voided))
            self.charges.setdefault(task_id, {})[int(seq)] = record
            self._add(record)
        for task_id, channel_id in self.bindings.items():
            if self.channels[channel_id].state != ChannelState.OPEN:
                self.settle(task_id)  # a closed channel's tasks ended before it closed: nothing to void

    async def open(self, channel: Channel) -> None:
        row = (channel.id, channel.owner, str(channel.deposit), str(channel.token_rate), channel.model,
               channel.state.value, channel.created_at, channel.expires_at)  # fmt: skip
        await self.store._write(lambda conn: conn.execute(INSERT_CHANNEL, row))
        self._opened(channel)

    async def bind(self, channel_id: str, task_id: str) -> None:
        await self.store._write(lambda conn: conn.execute(BIND, (task_id, channel_id)))
        self._bound(channel_id, task_id)

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
        if events is not self.store:  # another log (not this file): charges cannot share its transactions
            return await super().append_charged(
                events, task_id, batch, debits, snapshot=snapshot, epoch=epoch, create=create
            )

        def charge(conn: sqlite3.Connection, ids: list[int]) -> None:
            # one row per channel (one, but for a task moved to another channel meanwhile)
            for channel_id in {d.channel_id for d in debits}:
                mine = [d for d in debits if d.channel_id == channel_id]
                events = ",".join(f"{ids[d.index]}:{d.tokens}" for d in mine)
                row = (task_id, ids[mine[0].index], channel_id, sum(d.tokens for d in mine),
                       str(sum(d.amount for d in mine)), events)  # fmt: skip
                conn.execute(CHARGE, row)

        try:
            logged = await self.store.append_many(
                task_id, batch, snapshot=snapshot, epoch=epoch, create=create, then=charge
            )
        finally:
            self.release_all(debits)
        self._charged(task_id, [(logged[d.index].id, d) for d in debits])
        return logged

    async def void(self, task_id: str, after: int) -> int:
        await self.store._write(lambda conn: conn.execute(VOID, (task_id, after)))
        return self._voided(task_id, after)

    async def close(self, channel_id: str, state: ChannelState, at: str) -> Receipt:
        channel = self.channels[channel_id]
        if channel.state == ChannelState.OPEN:
            await self.store._write(lambda conn: conn.execute(CLOSE, (state.value, at, channel_id)))
            self._closed(channel, state, at)
        return await self.receipt(channel_id)
