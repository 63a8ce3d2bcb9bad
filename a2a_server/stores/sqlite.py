"""The SQLite store: tasks and their event logs in one file, the embedded default.

Contract, beyond ``TaskStore``:
- One thread owns the connection and runs every statement, so the event loop never blocks. Use
  the store from the event loop that opened it.
- Writes (``save``, ``append``, ``purge_finished_before``) queue up and commit together: all that
  arrived in the same event-loop tick, or while the previous transaction was committing, share one
  transaction (group commit). A write returns only after its transaction committed; if it fails,
  every write of it raises and none is visible. A caller cancelled while waiting does not withdraw
  its write: it may or may not be committed.
- ``append`` needs the task saved first (the event row carries the task's owner): TaskNotFound.
- ``open`` refuses a database written by a newer a2a-server, without modifying it.
- ``close`` commits what was queued, then closes; later calls raise ``StoreClosed``.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from a2a_server.errors import InvalidParams, TaskNotFound
from a2a_server.model import ArtifactEvent, LoggedEvent, MessageEvent, StatusEvent, Task, TaskEvent, TaskState
from a2a_server.stores.base import TaskPage

T = TypeVar("T")
_Op = Callable[[sqlite3.Connection], Any]

# Forward migrations: MIGRATIONS[n] takes a database from schema version n to n + 1 (PRAGMA
# user_version), in one transaction. Append new steps; never edit a released one.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            created INTEGER NOT NULL UNIQUE,  -- creation order: list() is newest first, like MemoryStore
            context_id TEXT NOT NULL,
            state TEXT NOT NULL,
            updated TEXT NOT NULL,  -- status.timestamp, ISO 8601 UTC, so text order is time order
            owner TEXT NOT NULL,
            dialect TEXT NOT NULL,
            skill TEXT NOT NULL,
            json TEXT NOT NULL)""",
        "CREATE INDEX tasks_by_context ON tasks (context_id, created)",
        "CREATE INDEX tasks_by_state ON tasks (state, created)",
        "CREATE INDEX tasks_by_updated ON tasks (updated)",
        # A rowid table, not WITHOUT ROWID: new rows go to the end of the table and only the small
        # (task_id, seq) index entries land all over the tree. Clustered on (task_id, seq), a commit
        # of 100 concurrent tasks' events rewrote ~100 scattered leaf pages and cost 2-3x more.
        """CREATE TABLE events (
            task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            owner TEXT NOT NULL,
            kind TEXT NOT NULL,  -- which TaskEvent: parsing the right model is 3x faster than the union
            json TEXT NOT NULL,
            PRIMARY KEY (task_id, seq))""",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)

_KINDS: dict[str, type[StatusEvent] | type[ArtifactEvent] | type[MessageEvent]] = {
    "status": StatusEvent,
    "artifact": ArtifactEvent,
    "message": MessageEvent,
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}
_UNSETTLED = tuple(s.value for s in TaskState if not s.settled)
_TERMINAL = tuple(s.value for s in TaskState if s.terminal)
_UPSERT = """INSERT INTO tasks (id, created, context_id, state, updated, owner, dialect, skill, json)
    VALUES (?1, (SELECT COALESCE(MAX(created), 0) + 1 FROM tasks), ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (id) DO UPDATE SET context_id = excluded.context_id, state = excluded.state,
    updated = excluded.updated, owner = excluded.owner, dialect = excluded.dialect,
    skill = excluded.skill, json = excluded.json"""
# the next id and the owner come from the database inside the write transaction: no cache to undo
_APPEND = """INSERT INTO events (task_id, seq, owner, kind, json)
    SELECT id, COALESCE((SELECT MAX(seq) FROM events WHERE task_id = ?1), 0) + 1, owner, ?2, ?3
    FROM tasks WHERE id = ?1 RETURNING seq"""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer a2a-server; it was left as it is."""


class StoreClosed(RuntimeError):
    pass


class SQLiteStore:
    def __init__(self, path: str | os.PathLike[str], *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        """Prefer ``await SQLiteStore.open(path)``, which connects and migrates."""
        self.path = Path(path)
        self.synchronous = synchronous
        self.transactions = 0  # committed write transactions: appends / transactions = group size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="a2a-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[_Op, asyncio.Future[Any]]] = []
        self._idle = asyncio.Event()  # clear while a transaction is scheduled or committing
        self._idle.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    ) -> SQLiteStore:
        store = cls(path, synchronous=synchronous)
        try:
            await asyncio.get_running_loop().run_in_executor(store._executor, store._connect)
        except BaseException:
            store._executor.shutdown(wait=False)
            raise
        store._loop = asyncio.get_running_loop()
        return store

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; ours are the explicit BEGIN/COMMIT pairs
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            self._check_version(conn)  # before any pragma below writes to the file
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL under WAL syncs at checkpoints, not at each commit. A commit is in the WAL
            # file (the OS's page cache) before we acknowledge it, so kill -9 of the process
            # loses nothing acknowledged; only an OS crash or power cut may lose the last
            # transactions, and the database stays consistent. FULL also fsyncs each commit.
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")  # another process migrating: wait, don't fail
            conn.execute("BEGIN IMMEDIATE")
            for step in range(self._check_version(conn), SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={step + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.close()  # closing rolls back an open transaction
            raise
        self._conn = conn

    def _check_version(self, conn: sqlite3.Connection) -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.path}: database schema version {version} is newer than this a2a-server supports "
                f"({SCHEMA_VERSION}); upgrade a2a-server or use another --store path"
            )
        return version

    # ---------------------------------------------------------------- plumbing

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        return await asyncio.get_running_loop().run_in_executor(self._executor, op, conn)

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        self._connection()
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((op, future))
        if self._idle.is_set():
            self._idle.clear()
            # not now but on the next tick, so that every write queued in this tick shares the transaction
            loop.call_soon(self._flush)
        return await future

    def _connection(self) -> sqlite3.Connection:
        if self._closed or self._conn is None:
            raise StoreClosed(f"the SQLite store {self.path} is closed")
        return self._conn

    # Group commit without a writer task (each task hop costs a loop iteration per write):
    # _write ─call_soon─► _flush ─executor─► _commit ─call_soon_threadsafe─► _committed ─► futures
    # and while one batch commits, new writes queue up; _committed flushes them at once.
    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        try:
            done = self._executor.submit(self._commit, [op for op, _ in batch])
        except BaseException as exc:  # the executor is gone: nothing of the batch is acknowledged
            self._committed(batch, [exc] * len(batch))
            return
        done.add_done_callback(lambda f: loop.call_soon_threadsafe(self._committed, batch, f.result()))

    def _committed(self, batch: list[tuple[_Op, asyncio.Future[Any]]], outcomes: list[Any]) -> None:
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        if self._pending:
            self._flush()
        else:
            self._idle.set()

    def _commit(self, ops: list[_Op]) -> list[Any]:
        conn = cast(sqlite3.Connection, self._conn)
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes: list[Any] = []
            for op in ops:
                try:
                    outcomes.append(op(conn))
                except TaskNotFound as exc:  # that op wrote nothing; the rest of the batch stands
                    outcomes.append(exc)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [exc] * len(ops)
        self.transactions += 1
        return outcomes

    # ---------------------------------------------------------------- TaskStore

    async def save(self, task: Task) -> None:
        # serialised here, on the loop: what is stored is the task as it is now (a snapshot)
        row = _task_row(task)
        await self._write(lambda conn: conn.execute(_UPSERT, row).close())

    async def get(self, task_id: str) -> Task | None:
        def op(conn: sqlite3.Connection) -> Task | None:
            row = conn.execute("SELECT json FROM tasks WHERE id = ?", (task_id,)).fetchone()
            return None if row is None else Task.model_validate_json(row[0])

        return await self._read(op)

    async def list(
        self,
        *,
        context_id: str | None = None,
        state: TaskState | None = None,
        updated_after: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> TaskPage:
        """Tasks newest (created) first; ``page_token`` is the id of the next page's first task."""
        where, args = ["1"], []
        for column, value in (("context_id =", context_id), ("state =", state), ("updated >", updated_after)):
            if value is not None:
                where.append(f"{column} ?")
                args.append(str(value.value if isinstance(value, TaskState) else value))
        cond = " AND ".join(where)

        def op(conn: sqlite3.Connection) -> TaskPage:
            total = conn.execute(f"SELECT COUNT(*) FROM tasks WHERE {cond}", args).fetchone()[0]
            page_cond, page_args = cond, list(args)
            if page_token:
                sql = f"SELECT created FROM tasks WHERE id = ? AND {cond}"
                row = conn.execute(sql, [page_token, *args]).fetchone()
                if row is None:
                    raise InvalidParams(f"Invalid params: pageToken {page_token!r} is not from a previous page")
                page_cond, page_args = f"{cond} AND created <= ?", [*args, row[0]]
            sql = f"SELECT id, json FROM tasks WHERE {page_cond} ORDER BY created DESC LIMIT ?"
            rows = conn.execute(sql, [*page_args, page_size + 1]).fetchall()
            tasks = [Task.model_validate_json(js) for _, js in rows[:page_size]]
            token = rows[page_size][0] if len(rows) > page_size else ""
            return TaskPage(tasks=tasks, next_page_token=token, total_size=total)

        return await self._read(op)

    async def append(self, task_id: str, event: TaskEvent, *, snapshot: Task | None = None) -> LoggedEvent:
        """Log ``event``; with ``snapshot``, save that task in the same transaction (both or neither)."""
        kind, data = _KIND_OF[type(event)], event.model_dump_json()
        row = None if snapshot is None else _task_row(snapshot)

        def op(conn: sqlite3.Connection) -> int:
            if row is not None:
                conn.execute(_UPSERT, row)
            seq = conn.execute(_APPEND, (task_id, kind, data)).fetchone()
            if seq is None:
                raise TaskNotFound(task_id)
            return int(seq[0])

        return LoggedEvent.model_construct(id=await self._write(op), event=event)  # both already valid

    async def append_many(
        self, task_id: str, events: Sequence[TaskEvent], *, snapshot: Task | None = None
    ) -> builtins.list[LoggedEvent]:
        """``append`` for several events, in order, in one transaction with ``snapshot``."""
        rows = [(task_id, _KIND_OF[type(e)], e.model_dump_json()) for e in events]
        task_row = None if snapshot is None else _task_row(snapshot)

        def op(conn: sqlite3.Connection) -> list[int]:
            if task_row is not None:
                conn.execute(_UPSERT, task_row)
            seqs = []
            for row in rows:
                seq = conn.execute(_APPEND, row).fetchone()
                if seq is None:
                    raise TaskNotFound(task_id)
                seqs.append(int(seq[0]))
            return seqs

        seqs = await self._write(op)
        return [LoggedEvent.model_construct(id=n, event=e) for n, e in zip(seqs, events, strict=True)]

    async def read_after(self, task_id: str, after: int) -> builtins.list[LoggedEvent]:
        sql = "SELECT seq, kind, json FROM events WHERE task_id = ? AND seq > ? ORDER BY seq"

        def op(conn: sqlite3.Connection) -> builtins.list[LoggedEvent]:
            rows = conn.execute(sql, (task_id, after))
            # model_construct: the event was just validated, the id comes from an INTEGER column
            return [
                LoggedEvent.model_construct(id=seq, event=_KINDS[kind].model_validate_json(js))
                for seq, kind, js in rows
            ]

        return await self._read(op)

    async def last_event_id(self, task_id: str) -> int:
        sql = "SELECT COALESCE(MAX(seq), 0) FROM events WHERE task_id = ?"
        return await self._read(lambda conn: int(conn.execute(sql, (task_id,)).fetchone()[0]))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._idle.wait()  # commits what was queued before close
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=False)

    # ---------------------------------------------------------------- recovery and retention

    async def unsettled(self) -> builtins.list[Task]:
        """Tasks still submitted or working, oldest first: after a restart, nobody is running them."""
        sql = f"SELECT json FROM tasks WHERE state IN ({', '.join('?' * len(_UNSETTLED))}) ORDER BY created"
        return await self._read(lambda conn: [Task.model_validate_json(js) for (js,) in conn.execute(sql, _UNSETTLED)])

    async def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: "ok", or its findings one per line."""
        return await self._read(lambda conn: "\n".join(r[0] for r in conn.execute("PRAGMA integrity_check")))

    async def purge_finished_before(self, timestamp: str) -> int:
        """Delete terminal tasks whose status timestamp is before ``timestamp``, with their events; count them."""
        sql = f"DELETE FROM tasks WHERE state IN ({', '.join('?' * len(_TERMINAL))}) AND updated < ?"
        return await self._write(lambda conn: int(conn.execute(sql, (*_TERMINAL, timestamp)).rowcount))


def _task_row(task: Task) -> tuple[str, ...]:
    state, updated = task.status.state.value, task.status.timestamp
    return (task.id, task.context_id, state, updated, task.owner, task.dialect, task.skill, task.model_dump_json())
