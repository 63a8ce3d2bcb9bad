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
    """``PushStore`` over an open ``SQLiteStore`` (which owns the connection and closes it)."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def put(self, config: PushConfig) -> None:
        row = _row(config)
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
        # push_configs_by_state answers "none failing" (the usual case) with one probe of the index
        ids = list(dict.fromkeys(task_ids))[:_MAX_IDS]
        if not ids:
            return []
        sql = f"SELECT json FROM push_configs WHERE state = 'failing' AND task_id IN ({', '.join('?' * len(ids))})"
        args: list[str] = ids
        if owner is not None:
            sql, args = sql + " AND owner = ?", [*ids, owner]
        sql += " ORDER BY created"
        return await self._store._read(lambda conn: [_config(js) for (js,) in conn.execute(sql, args)])
