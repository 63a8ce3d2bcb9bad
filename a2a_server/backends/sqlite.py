"""The SQLite store: tasks and their event logs in one file, the embedded default (``TaskStore`` + ``EventLog``).

Contract, beyond the ports:
- One process per file: ``open`` takes an OS lock on ``<file>.lock`` (``StoreLocked`` if another live
  process holds it; see lock.py).
- One thread owns the connection and runs every statement, so the event loop never blocks. Use
  the store from the event loop that opened it.
- Writes (``create``, ``append_many``, ``take_over``, ``purge_finished_before``) queue up and commit together: all that
  arrived in the same event-loop tick, or while the previous transaction was committing, share one
  transaction (group commit). A write returns only after its transaction committed; if it fails,
  every write of it raises and none is visible. A caller cancelled while waiting does not withdraw
  its write: it may or may not be committed.
- Live followers are fed from an in-process bus after each commit (the global order is the events' id).
- ``open`` refuses a database written by a newer a2a-server, without modifying it.
- ``close`` commits what was queued, then closes; later calls raise ``StoreClosed``.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import sqlite3
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from a2a_server.backends.bus import DEFAULT_BYTE_LIMIT, EventBus
from a2a_server.backends.follow import LocalFollow, follow_all
from a2a_server.backends.lock import StoreLock
from a2a_server.backends.memory import event_state
from a2a_server.backends.sqlite_schema import (
    APPEND,
    INSERT_OR_KEEP_TASK,
    INSERT_TASK,
    KIND_OF,
    KINDS,
    MIGRATIONS,
    PURGE,
    SCHEMA_VERSION,
    TERMINAL,
    UNSETTLED,
    UPDATE_TASK,
)
from a2a_server.backends.weight import global_bytes, logged_bytes
from a2a_server.errors import InvalidParams, TaskNotFound
from a2a_server.model import LoggedEvent, Task, TaskEvent, TaskState
from a2a_server.ports import EventFilter, GlobalEvent, LeaseLost, TaskExists, TaskPage

T = TypeVar("T")
_Op = Callable[[sqlite3.Connection], Any]
# what an event row leaves out: its task knows them (and nulls are not written at all)
_IMPLIED = {"task_id", "context_id"}
# the id and state of a task's newest event: the next batch continues both (the state of an artifact event is
# the one its last status set, whether or not that status was saved with a snapshot)
_NEWEST = "SELECT seq, state FROM events WHERE task_id = ? ORDER BY seq DESC LIMIT 1"


class SchemaTooNew(RuntimeError):
    """The database was written by a newer a2a-server; it was left as it is."""


class StoreClosed(RuntimeError):
    pass


class SQLiteStore:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        buffer_limit: int = 8192,
        byte_limit: int = DEFAULT_BYTE_LIMIT,
    ) -> None:
        """Prefer ``await SQLiteStore.open(path)``, which locks, connects and migrates."""
        self.path = Path(path)
        self.bus: EventBus[LoggedEvent] = EventBus(buffer_limit, byte_limit, logged_bytes)
        self.global_bus: EventBus[GlobalEvent] = EventBus(buffer_limit, byte_limit, global_bytes)
        self._lock = StoreLock(self.path)
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
        cls,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        buffer_limit: int = 8192,
        byte_limit: int = DEFAULT_BYTE_LIMIT,
    ) -> SQLiteStore:
        store = cls(path, synchronous=synchronous, buffer_limit=buffer_limit, byte_limit=byte_limit)
        try:
            store._lock.acquire()  # before anything reads or writes the file
            await asyncio.get_running_loop().run_in_executor(store._executor, store._connect)
        except BaseException:
            store._lock.release()
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
        return await self._enqueue(op)

    def _enqueue(self, op: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue a write now (writes run in the order they were queued); the future is its outcome."""
        self._connection()
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((op, future))
        if self._idle.is_set():
            self._idle.clear()
            # not now but on the next tick, so that every write queued in this tick shares the transaction
            loop.call_soon(self._flush)
        return future

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
                except (TaskNotFound, TaskExists, LeaseLost) as exc:  # that op wrote nothing; the rest stands
                    outcomes.append(exc)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [exc] * len(ops)
        self.transactions += 1
        return outcomes

    # ---------------------------------------------------------------- TaskStore

    def create(self, task: Task) -> Awaitable[None]:
        # serialised here, on the loop: what is stored is the task as it is now; queued before this returns
        row = _new_task_row(task)

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(INSERT_TASK, row)
            except sqlite3.IntegrityError:
                raise TaskExists(task.id) from None

        return self._enqueue(op)

    async def get(self, task_id: str, *, owner: str | None = None) -> Task | None:
        found = await self.snapshot(task_id, owner=owner)
        return None if found is None else found[0]

    async def snapshot(self, task_id: str, *, owner: str | None = None) -> tuple[Task, int] | None:
        sql, args = "SELECT json, seq FROM tasks WHERE id = ?", [task_id]
        if owner is not None:
            sql, args = sql + " AND owner = ?", [task_id, owner]

        def op(conn: sqlite3.Connection) -> tuple[Task, int] | None:
            row = conn.execute(sql, args).fetchone()
            return None if row is None else (Task.model_validate_json(row[0]), int(row[1]))

        return await self._read(op)

    async def list(
        self,
        *,
        owner: str | None = None,
        context_id: str | None = None,
        state: TaskState | None = None,
        updated_after: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> TaskPage:
        """Tasks newest (created) first; ``page_token`` is the id of the next page's first task."""
        where, args = ["1"], []
        for column, value in (
            ("owner =", owner), ("context_id =", context_id), ("state =", state), ("updated >", updated_after)
        ):  # fmt: skip
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
                    raise InvalidParams(f"Invalid params: pageToken {page_token!r} is not from a previous page",
                                        param="pageToken")  # fmt: skip
                page_cond, page_args = f"{cond} AND created <= ?", [*args, row[0]]
            sql = f"SELECT id, json FROM tasks WHERE {page_cond} ORDER BY created DESC LIMIT ?"
            rows = conn.execute(sql, [*page_args, page_size + 1]).fetchall()
            tasks = [Task.model_validate_json(js) for _, js in rows[:page_size]]
            token = rows[page_size][0] if len(rows) > page_size else ""
            return TaskPage(tasks=tasks, next_page_token=token, total_size=total)

        return await self._read(op)

    async def take_over(self, task_id: str) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute("UPDATE tasks SET epoch = epoch + 1 WHERE id = ? RETURNING epoch", (task_id,)).fetchone()
            if row is None:
                raise TaskNotFound(task_id)
            return int(row[0])

        return await self._write(op)

    # ---------------------------------------------------------------- EventLog

    async def append_many(
        self,
        task_id: str,
        events: Sequence[TaskEvent],
        *,
        snapshot: Task | None = None,
        epoch: int,
        create: bool = False,
        then: Callable[[sqlite3.Connection, builtins.list[int]], None] | None = None,
    ) -> builtins.list[LoggedEvent]:
        """Log ``events`` in order, in one transaction with ``snapshot``, if ``epoch`` holds the task.
        ``then(conn, ids)`` runs inside that transaction after the events are inserted, with their ids (the
        ledger writes their charges there: both or neither)."""
        new_row = _new_task_row(snapshot) if create and snapshot is not None else None
        rows = [(KIND_OF[type(e)], e.model_dump_json(exclude_none=True, exclude=_IMPLIED)) for e in events]
        states = [event_state(e, None) for e in events]
        task_row = None
        if snapshot is not None:
            task_row = (task_id, snapshot.status.state.value, snapshot.status.timestamp, snapshot.model_dump_json(),
                        epoch)  # fmt: skip

        def op(conn: sqlite3.Connection) -> tuple[list[tuple[int, int]], tuple[str, str, str, str]]:
            if new_row is not None:
                conn.execute(INSERT_OR_KEEP_TASK, new_row)
            head = conn.execute("SELECT epoch, state, context_id, skill, owner FROM tasks WHERE id = ?", (task_id,))
            found = head.fetchone()
            if found is None:
                raise TaskNotFound(task_id)
            if found[0] != epoch:
                raise LeaseLost(f"task {task_id}: written with epoch {epoch}, the task is at epoch {found[0]}")
            newest = conn.execute(_NEWEST, (task_id,)).fetchone()
            seq, state = (newest[0], newest[1] or found[1]) if newest is not None else (0, found[1])
            top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            values, start = [], state
            for i, ((kind, data), changed) in enumerate(zip(rows, states, strict=True), start=1):
                state = changed.value if changed is not None else state
                values.append((top + i, task_id, seq + i, state, kind, data))
            conn.executemany(APPEND, values)
            ids = [(seq + i, top + i) for i in range(1, len(values) + 1)]
            if then is not None:
                then(conn, [i for i, _ in ids])
            if task_row is not None:
                conn.execute(UPDATE_TASK, task_row)
            return ids, (start, found[2], found[3], found[4])

        ids, (before, context_id, skill, owner) = await self._write(op)
        logged = [LoggedEvent(seq, e) for (seq, _), e in zip(ids, events, strict=True)]
        self.bus.publish_many(task_id, logged, snapshot)
        if self.global_bus.subscriber_count():  # built only for someone following /a2a/events: ~4 µs an event
            state, out = TaskState(before), []
            for (_, rowid), le in zip(ids, logged, strict=True):
                state = event_state(le.event, state)
                out.append(GlobalEvent(rowid, task_id, context_id, skill, owner, state, le))
            self.global_bus.publish_many("*", out)
        return logged

    async def read_after(self, task_id: str, after: int, limit: int | None = None) -> builtins.list[LoggedEvent]:
        sql = """SELECT e.seq, e.kind, e.json, t.context_id FROM events e JOIN tasks t ON t.id = e.task_id
            WHERE e.task_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?"""

        def op(conn: sqlite3.Connection) -> builtins.list[LoggedEvent]:
            rows = conn.execute(sql, (task_id, after, -1 if limit is None else limit))
            return [_logged(task_id, context_id, seq, kind, js) for seq, kind, js, context_id in rows]

        return await self._read(op)

    async def last_event_id(self, task_id: str) -> int:
        sql = "SELECT COALESCE(MAX(seq), 0) FROM events WHERE task_id = ?"
        return await self._read(lambda conn: int(conn.execute(sql, (task_id,)).fetchone()[0]))

    def follow(self, task_id: str, after: int = 0, *, fresh: bool = False) -> LocalFollow:
        return LocalFollow(self, self.bus, task_id, after, fresh)

    def follow_all(self, where: EventFilter, after: int = 0) -> AsyncGenerator[builtins.list[GlobalEvent], None]:
        return follow_all(self, self.global_bus, where, after)

    async def read_global(self, where: EventFilter, after: int, limit: int) -> builtins.list[GlobalEvent]:
        cond: list[str] = ["e.id > ?"]
        args: list[object] = [after]
        for column, value in (("t.context_id", where.context_id), ("t.skill", where.skill), ("t.owner", where.owner),
                              ("e.state", where.state.value if where.state else None)):  # fmt: skip
            if value is not None:
                cond.append(f"{column} = ?")
                args.append(value)
        sql = f"""SELECT e.id, e.task_id, e.seq, e.state, e.kind, e.json, t.context_id, t.skill, t.owner
            FROM events e JOIN tasks t ON t.id = e.task_id WHERE {" AND ".join(cond)} ORDER BY e.id LIMIT ?"""

        def op(conn: sqlite3.Connection) -> builtins.list[GlobalEvent]:
            out = []
            for rowid, task_id, seq, state, kind, js, ctx, skill, owner in conn.execute(sql, [*args, limit]):
                logged = _logged(task_id, ctx, seq, kind, js)
                out.append(GlobalEvent(rowid, task_id, ctx, skill, owner, TaskState(state) if state else None, logged))
            return out

        return await self._read(op)

    async def last_cursor(self) -> int:
        return await self._read(lambda conn: int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.bus.close_all()
        self.global_bus.close_all()
        await self._idle.wait()  # commits what was queued before close
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=False)
        self._lock.release()

    # ---------------------------------------------------------------- recovery and retention

    async def unsettled(self) -> builtins.list[Task]:
        """Tasks still submitted or working, oldest first: after a restart, nobody is running them."""
        sql = f"SELECT json FROM tasks WHERE state IN ({', '.join('?' * len(UNSETTLED))}) ORDER BY created"
        return await self._read(lambda conn: [Task.model_validate_json(js) for (js,) in conn.execute(sql, UNSETTLED)])

    async def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: "ok", or its findings one per line."""
        return await self._read(lambda conn: "\n".join(r[0] for r in conn.execute("PRAGMA integrity_check")))

    async def purge_finished_before(self, timestamp: str) -> int:
        """Delete terminal tasks whose status timestamp is before ``timestamp``, with their events; count them."""
        sql = PURGE.format(terminal=", ".join("?" * len(TERMINAL)))
        return await self._write(lambda conn: int(conn.execute(sql, (*TERMINAL, timestamp)).rowcount))

    async def bytes_per_event(self) -> float:
        """The log's size on disk per stored event (table and index pages), for the benchmark."""

        def op(conn: sqlite3.Connection) -> float:
            count = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            pages = conn.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name IN ('events', 'sqlite_autoindex_events_1')"
            ).fetchone()[0]
            return float(pages or 0) / count if count else 0.0

        return await self._read(op)


def _new_task_row(task: Task) -> tuple[str | int, ...]:
    return (task.id, task.context_id, task.status.state.value, task.status.timestamp, task.owner, task.dialect,
            task.skill, task.model_dump_json(), task.epoch)  # fmt: skip


def _logged(task_id: str, context_id: str, seq: int, kind: str, data: str) -> LoggedEvent:
    event = KINDS[kind].model_validate_json(data)
    # rows of schema 1 carry the ids themselves; newer rows leave them to the task
    event.task_id, event.context_id = task_id, context_id
    return LoggedEvent(seq, event)  # the id comes from an INTEGER column
