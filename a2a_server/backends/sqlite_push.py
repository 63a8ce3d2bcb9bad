"""Push configs in the SQLite file (table ``push_configs``, migration 3), beside the tasks they belong to.

It shares the ``SQLiteStore``'s connection thread and group commit: a delivery record costs one queued write,
committed together with whatever else is committing, and never blocks the event loop.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from a2a_server.backends.sqlite import SQLiteStore
from a2a_server.ports import Delivery, PushConfig

_COLUMNS = "task_id, id, created, owner, state, json"
_UPSERT = f"""INSERT INTO push_configs ({_COLUMNS})
    VALUES (?1, ?2, (SELECT COALESCE(MAX(created), 0) + 1 FROM push_configs), ?3, ?4, ?5)
    ON CONFLICT (task_id, id) DO UPDATE SET owner = ?3, state = ?4, json = ?5"""

# task ids asked about in one read (a page of ListTasks is at most 100; SQLite allows 32766 parameters)
_MAX_IDS = 1000


def _row(config: PushConfig) -> tuple[str, str, str, str, str]:
    return (config.task_id, config.id, config.owner, config.delivery.state, json.dumps(dataclasses.asdict(config)))


def _config(raw: str) -> PushConfig:
    data: dict[str, Any] = json.loads(raw)
    data["delivery"] = Delivery(**data["delivery"])
    return PushConfig(**data)


class SQLitePushStore:
    """``PushStore`` over an open ``SQLiteStore`` (which owns the connection and closes it); one per store, as
    ``open_backend`` makes it (``failing`` trusts what this instance saw written)."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        # The tasks that may have a failing config: a superset (added to before the write that marks one failing,
        # pruned by the read that finds none), so that a read of a task with none asks no query at all. Exact
        # because a SQLite store belongs to one process (see backends/lock.py), whose sender does every write.
        self._maybe: dict[str, None] = {}
        self._loaded = False  # the ones already failing in the file are read at the first ``failing``
        self._added = 0  # counts additions: a read prunes only when none happened while it queried

    def _may_fail(self, task_id: str) -> None:
        self._maybe[task_id] = None
        self._added += 1

    async def put(self, config: PushConfig) -> None:
        row = _row(config)
        if config.delivery.state == "failing":
            self._may_fail(config.task_id)
        await self._store._write(lambda conn: conn.execute(_UPSERT, row))

    async def get(self, task_id: str, config_id: str, *, owner: str | None = None) -> PushConfig | None:
        sql, args = "SELECT json FROM push_configs WHERE task_id = ? AND id = ?", [task_id, config_id]
        if owner is not None:
            sql, args = sql + " AND owner = ?", [*args, owner]

        def op(conn: sqlite3.Connection) -> PushConfig | None:
            row = conn.execute(sql, args).fetchone()
            return None if row is None else _config(row[0])

        return await self._store._read(op)

    async def list(self, task_id: str, *, owner: str | None = None) -> builtins.list[PushConfig]:
        sql, args = "SELECT json FROM push_configs WHERE task_id = ?", [task_id]
        if owner is not None:
            sql, args = sql + " AND owner = ?", [task_id, owner]
        sql += " ORDER BY created"
        return await self._store._read(lambda conn: [_config(js) for (js,) in conn.execute(sql, args)])

    async def delete(self, task_id: str, config_id: str, *, owner: str | None = None) -> bool:
        sql, args = "DELETE FROM push_configs WHERE task_id = ? AND id = ?", [task_id, config_id]
        if owner is not None:
            sql, args = sql + " AND owner = ?", [*args, owner]
        return bool(await self._store._write(lambda conn: conn.execute(sql, args).rowcount))

    async def record(self, task_id: str, config_id: str, delivery: Delivery) -> bool:
        state, saved = delivery.state, dataclasses.asdict(delivery)
        if state == "failing":
            self._may_fail(task_id)

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT json FROM push_configs WHERE task_id = ? AND id = ?", (task_id, config_id))
            found = row.fetchone()
            if found is None:
                return False
            data = json.loads(found[0])
            data["delivery"] = saved
            conn.execute(
                "UPDATE push_configs SET state = ?, json = ? WHERE task_id = ? AND id = ?",
                (state, json.dumps(data), task_id, config_id),
            )
            return True

        return await self._store._write(op)

    async def active(self) -> builtins.list[PushConfig]:
        sql = "SELECT json FROM push_configs WHERE state != 'done' ORDER BY created"
        return await self._store._read(lambda conn: [_config(js) for (js,) in conn.execute(sql)])

    async def failing(self, task_ids: Sequence[str], *, owner: str | None = None) -> builtins.list[PushConfig]:
        if not self._loaded:
            sql = "SELECT DISTINCT task_id FROM push_configs WHERE state = 'failing'"  # push_configs_by_state
            self._maybe.update(dict.fromkeys(await self._store._read(lambda conn: [t for (t,) in conn.execute(sql)])))
            self._loaded = True
        ids = [t for t in dict.fromkeys(task_ids) if t in self._maybe][:_MAX_IDS]
        if not ids:
            return []  # the usual answer, and no query
        added = self._added
        sql = f"SELECT json FROM push_configs WHERE state = 'failing' AND task_id IN ({', '.join('?' * len(ids))})"
        found = await self._store._read(
            lambda conn: [_config(js) for (js,) in conn.execute(sql + " ORDER BY created", ids)]
        )
        if self._added == added:  # not owner-filtered yet: prune only tasks that truly have none
            for task_id in set(ids).difference(c.task_id for c in found):
                self._maybe.pop(task_id, None)
        return [c for c in found if owner is None or c.owner == owner]
