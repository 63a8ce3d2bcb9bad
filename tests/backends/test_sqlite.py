"""What only the SQLite store promises: durability, group commit, schema versions and migrations, compact rows,
one process per file (the lock), recovery after kill -9, retention."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from a2a_server.backends import StoreLocked, check_free
from a2a_server.backends.sqlite import SchemaTooNew, SQLiteStore, StoreClosed
from a2a_server.backends.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from a2a_server.errors import TaskNotFound
from a2a_server.model import (
    Artifact,
    ArtifactEvent,
    LoggedEvent,
    Message,
    MessageEvent,
    Part,
    Role,
    StatusEvent,
    Task,
    TaskEvent,
    TaskState,
    TaskStatus,
)
from a2a_server.ports import EventFilter, GlobalEvent

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tasks.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[SQLiteStore]:
    s = await SQLiteStore.open(db)
    yield s
    await s.close()


def task(task_id: str, state: TaskState = TaskState.WORKING, at: str = "2026-01-01T00:00:00.000Z") -> Task:
    return Task(id=task_id, context_id="ctx", status=TaskStatus(state=state, timestamp=at), owner="alice", epoch=1)


def status(task_id: str, state: TaskState = TaskState.WORKING) -> StatusEvent:
    status = TaskStatus(state=state, timestamp="2026-01-01T00:00:00.000Z")
    return StatusEvent(task_id=task_id, context_id="ctx", status=status)


def raw(db: Path, sql: str) -> list[tuple[object, ...]]:
    """Query the file through a connection of its own: what another process would see."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def take(store: SQLiteStore, n: int, where: EventFilter | None = None) -> list[GlobalEvent]:
    out: list[GlobalEvent] = []
    async with contextlib.aclosing(store.follow_all(where or EventFilter())) as events, asyncio.timeout(DEADLINE):
        async for batch in events:
            out.extend(batch)
            if len(out) >= n:
                break
    return out


async def test_a_new_file_is_created_in_wal_mode_at_the_current_schema_version(store: SQLiteStore, db: Path) -> None:
    assert db.exists()
    assert raw(db, "PRAGMA journal_mode") == [("wal",)]
    assert raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert await store.integrity_check() == "ok"


async def test_everything_survives_close_and_reopen(db: Path) -> None:
    store = await SQLiteStore.open(db)
    for name in ("a", "b"):
        await store.create(task(name))
        for _ in range(3):
            await store.append_many(name, [status(name)], snapshot=task(name), epoch=1)
    await store.take_over("b")
    before = [await store.read_after(n, 0) for n in ("a", "b")]
    listed = await store.list()
    cursor = await store.last_cursor()
    await store.close()

    store = await SQLiteStore.open(db)
    try:
        assert [await store.read_after(n, 0) for n in ("a", "b")] == before
        assert await store.list() == listed
        assert await store.snapshot("a") == (task("a"), 3)
        assert await store.last_cursor() == cursor
        assert [le.id for le in await store.append_many("a", [status("a")], epoch=1)] == [4]  # numbering continues
        assert await store.take_over("b") == 3  # and so do the epochs
        assert await store.integrity_check() == "ok"
    finally:
        await store.close()


async def test_an_acknowledged_append_is_committed(store: SQLiteStore, db: Path) -> None:
    await store.create(task("t"))
    logged = await store.append_many("t", [status("t")], epoch=1)
    assert raw(db, "SELECT task_id, seq FROM events") == [("t", logged[0].id)]


async def test_appends_of_one_tick_share_one_transaction(store: SQLiteStore) -> None:
    await store.create(task("t"))
    before = store.transactions
    logged = await asyncio.gather(*(store.append_many("t", [status("t")], epoch=1) for _ in range(100)))
    assert sorted(le.id for batch in logged for le in batch) == list(range(1, 101))
    assert store.transactions - before == 1


async def test_the_task_row_records_the_owner_epoch_and_last_event(store: SQLiteStore, db: Path) -> None:
    await store.create(task("t"))
    await store.append_many("t", [status("t"), status("t")], snapshot=task("t"), epoch=1)
    await store.create(Task(id="anon", context_id="c", status=TaskStatus(state=TaskState.WORKING), epoch=1))
    await store.take_over("anon")
    assert raw(db, "SELECT id, owner, epoch, seq FROM tasks ORDER BY id") == [("anon", "anonymous", 2, 0),
                                                                             ("t", "alice", 1, 2)]  # fmt: skip


async def test_event_rows_are_compact(store: SQLiteStore, db: Path) -> None:
    """An event row leaves out what its task knows (task and context ids) and every null the model would
    write; nulls inside the user's own data stay, and every event reads back whole."""
    await store.create(task("t"))
    data = Message(role=Role.AGENT, parts=[Part(kind="data", data={"k": [1, None], "none": None})], task_id="t",
                   context_id="ctx", message_id="m1")  # fmt: skip
    events: list[TaskEvent] = [
        status("t"),
        ArtifactEvent(task_id="t", context_id="ctx", artifact=Artifact(artifact_id="a", parts=[Part.of_text("x")])),
        MessageEvent(task_id="t", context_id="ctx", message=data),
    ]
    await store.append_many("t", events, epoch=1)
    rows = [str(js) for (js,) in raw(db, "SELECT json FROM events ORDER BY seq")]
    assert all(not {"task_id", "context_id"} & json.loads(js).keys() for js in rows)
    assert "null" not in rows[0] and "null" not in rows[1]
    assert '"k":[1,null]' in rows[2] and '"none":null' in rows[2]
    assert [le.event for le in await store.read_after("t", 0)] == events


async def test_append_to_an_unknown_task_fails_alone(store: SQLiteStore) -> None:
    await store.create(task("t"))
    good, bad = await asyncio.gather(
        store.append_many("t", [status("t")], epoch=1), store.append_many("ghost", [status("ghost")], epoch=1),
        return_exceptions=True,
    )  # fmt: skip
    assert isinstance(bad, TaskNotFound)
    assert isinstance(good, list) and [le.id for le in good] == [1]
    assert await store.last_event_id("t") == 1 and await store.last_event_id("ghost") == 0


async def test_append_with_a_snapshot_writes_both(store: SQLiteStore, db: Path) -> None:
    done = task("t", TaskState.COMPLETED)
    await store.create(task("t"))
    logged = await store.append_many("t", [status("t", TaskState.COMPLETED)], snapshot=done, epoch=1)
    assert await store.get("t") == done
    assert await store.read_after("t", 0) == logged
    assert raw(db, "SELECT state, seq FROM tasks") == [("completed", 1)]


async def test_close_commits_what_was_queued_then_refuses(db: Path) -> None:
    store = await SQLiteStore.open(db)
    await store.create(task("t"))
    queued = [asyncio.ensure_future(store.append_many("t", [status("t")], epoch=1)) for _ in range(10)]
    await asyncio.sleep(0)  # they are now queued, not yet committed
    await store.close()
    assert sorted(f.result()[0].id for f in queued) == list(range(1, 11))
    with pytest.raises(StoreClosed):
        await store.append_many("t", [status("t")], epoch=1)
    with pytest.raises(StoreClosed):
        await store.get("t")
    assert raw(db, "SELECT COUNT(*) FROM events") == [(10,)]


# ---------------------------------------------------------------- schema versions


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_newer_schema_is_refused_and_left_untouched(db: Path) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    digest = _digest(db)
    with pytest.raises(SchemaTooNew) as err:
        await SQLiteStore.open(db)
    assert str(err.value) == (
        f"{db}: database schema version {SCHEMA_VERSION + 1} is newer than this a2a-server supports "
        f"({SCHEMA_VERSION}); upgrade a2a-server or use another --store path"
    )
    assert _digest(db) == digest
    assert raw(db, "PRAGMA journal_mode") == [("delete",)]  # not even switched to WAL
    # no -wal or -shm file; only the lock beside it, which the refused open has released
    assert sorted(p.name for p in db.parent.iterdir()) == ["tasks.db", "tasks.db.lock"]
    check_free(f"sqlite://{db}")


async def test_a_newer_schema_written_by_us_is_refused_too(db: Path) -> None:
    await (await SQLiteStore.open(db)).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    conn.close()
    digest = _digest(db)
    with pytest.raises(SchemaTooNew, match=f"version {SCHEMA_VERSION + 7} is newer"):
        await SQLiteStore.open(db)
    assert _digest(db) == digest


def _schema_1(db: Path, tasks: list[Task], events: dict[str, list[TaskEvent]]) -> None:
    """A database as a2a-server wrote it at schema version 1: full JSON in every row, the owner on each event."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        for created, t in enumerate(tasks, 1):
            conn.execute(
                "INSERT INTO tasks (id, created, context_id, state, updated, owner, dialect, skill, json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (t.id, created, t.context_id, t.status.state.value, t.status.timestamp, t.owner, t.dialect, t.skill,
                 t.model_dump_json(exclude={"epoch"})),
            )  # fmt: skip
        # interleaved across tasks, so that the global order (the migrated rowids) is the insertion order
        longest = max(len(evs) for evs in events.values())
        for i in range(longest):
            for task_id, evs in events.items():
                if i < len(evs):
                    ev = evs[i]
                    kind = {StatusEvent: "status", ArtifactEvent: "artifact", MessageEvent: "message"}[type(ev)]
                    conn.execute("INSERT INTO events (task_id, seq, owner, kind, json) VALUES (?, ?, ?, ?, ?)",
                                 (task_id, i + 1, "alice", kind, ev.model_dump_json()))  # fmt: skip
    finally:
        conn.close()


async def test_a_schema_1_database_is_migrated_and_reads_back(db: Path) -> None:
    at = "2026-01-01T00:00:00.000Z"
    states = [("done", TaskState.COMPLETED), ("asks", TaskState.INPUT_REQUIRED), ("empty", TaskState.SUBMITTED)]
    old = [
        Task(id=name, context_id="ctx", status=TaskStatus(state=state, timestamp=at), owner="alice", skill="echo")
        for name, state in states
    ]
    art = ArtifactEvent(
        task_id="done", context_id="ctx", artifact=Artifact(artifact_id="a", parts=[Part.of_text("hi")])
    )
    logs: dict[str, list[TaskEvent]] = {
        "done": [status("done"), art, status("done", TaskState.COMPLETED)],
        "asks": [status("asks"), status("asks", TaskState.INPUT_REQUIRED)],
    }
    _schema_1(db, old, logs)
    assert '"task_id":"done"' in str(raw(db, "SELECT json FROM events LIMIT 1")[0][0])  # the old, full rows

    store = await SQLiteStore.open(db)
    try:
        assert raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        for name, evs in logs.items():
            assert await store.read_after(name, 0) == [LoggedEvent(id=i, event=e) for i, e in enumerate(evs, 1)]
        assert raw(db, "SELECT id, epoch, seq FROM tasks ORDER BY created") == [("done", 1, 3), ("asks", 1, 2),
                                                                               ("empty", 1, 0)]  # fmt: skip
        assert await store.snapshot("asks") == (old[1], 2)
        assert ids_of((await store.list()).tasks) == ["empty", "asks", "done"]
        assert ids_of(await store.unsettled()) == ["empty"]
        # the old events keep their global order; their state was not recorded
        migrated = await take(store, 5)
        assert [(g.task_id, g.logged.id, g.state) for g in migrated] == [
            ("done", 1, None), ("asks", 1, None), ("done", 2, None), ("asks", 2, None), ("done", 3, None)
        ]  # fmt: skip
        # and the log goes on with the epoch the migration gave every task, in compact rows
        logged = await store.append_many("asks", [status("asks")], snapshot=old[1], epoch=1)
        assert [le.id for le in logged] == [3]
        newest = raw(db, "SELECT json, state FROM events WHERE task_id = 'asks' AND seq = 3")
        assert '"task_id"' not in str(newest[0][0]) and newest[0][1] == "working"
        assert (await take(store, 6))[-1].cursor > migrated[-1].cursor
        assert await store.integrity_check() == "ok"
    finally:
        await store.close()


def ids_of(tasks: list[Task]) -> list[str]:
    return [t.id for t in tasks]


# ---------------------------------------------------------------- one process per file


async def test_a_second_open_of_the_same_file_is_refused_naming_the_holder(db: Path) -> None:
    first = await SQLiteStore.open(db)
    try:
        await first.create(task("t"))
        with pytest.raises(StoreLocked, match=f"pid {os.getpid()} ") as err:
            await SQLiteStore.open(db)
        assert str(db) in str(err.value)
        with pytest.raises(StoreLocked):
            check_free(f"sqlite://{db}")
        assert await first.get("t") == task("t")  # the refused open touched nothing of the holder's
    finally:
        await first.close()
    second = await SQLiteStore.open(db)
    try:
        assert await second.get("t") == task("t")
    finally:
        await second.close()


async def test_the_global_cursor_is_never_handed_out_again_after_a_purge(store: SQLiteStore) -> None:
    """A client holds a cursor; retention must not let a new event take it (SQLite would give a new row the
    id of a deleted newest row): the task of the newest event is kept until a newer event exists."""
    await store.create(task("old", TaskState.COMPLETED))
    await store.append_many("old", [status("old"), status("old", TaskState.COMPLETED)], epoch=1)
    held = await store.last_cursor()
    assert await store.purge_finished_before("2026-02-01T00:00:00.000Z") == 0  # it holds the newest event
    await store.create(task("new"))
    await store.append_many("new", [status("new")], epoch=1)
    assert await store.purge_finished_before("2026-02-01T00:00:00.000Z") == 1
    assert await store.get("old") is None
    await store.append_many("new", [status("new")], epoch=1)
    after = await take(store, 2)
    assert [(g.task_id, g.logged.id) for g in after] == [("new", 1), ("new", 2)]
    assert all(g.cursor > held for g in after) and after[0].cursor < after[1].cursor


# ---------------------------------------------------------------- recovery and retention


async def test_unsettled_lists_the_tasks_nobody_is_running_after_a_restart(db: Path) -> None:
    store = await SQLiteStore.open(db)
    for name, state in [
        ("sub", TaskState.SUBMITTED),
        ("done", TaskState.COMPLETED),
        ("work", TaskState.WORKING),
        ("ask", TaskState.INPUT_REQUIRED),
        ("auth", TaskState.AUTH_REQUIRED),
        ("bad", TaskState.FAILED),
    ]:
        await store.create(task(name, state))
    await store.close()
    store = await SQLiteStore.open(db)
    try:
        assert ids_of(await store.unsettled()) == ["sub", "work"]
    finally:
        await store.close()


async def test_purge_deletes_the_events_of_the_purged_tasks(store: SQLiteStore, db: Path) -> None:
    old, new = "2026-01-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"
    for name, state, at in [("old", TaskState.COMPLETED, old), ("live", TaskState.WORKING, old),
                            ("new", TaskState.COMPLETED, new)]:  # fmt: skip
        await store.create(task(name, state, at))
        await store.append_many(name, [status(name), status(name, state)], epoch=1)
    assert await store.purge_finished_before("2026-02-01T00:00:00.000Z") == 1
    assert raw(db, "SELECT task_id, COUNT(*) FROM events GROUP BY task_id ORDER BY task_id") == [("live", 2),
                                                                                                ("new", 2)]  # fmt: skip
    assert await store.integrity_check() == "ok"


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from a2a_server.backends.sqlite import SQLiteStore
    from a2a_server.model import StatusEvent, Task, TaskState, TaskStatus

    async def writer(store, name):
        await store.create(Task(id=name, context_id="c", status=TaskStatus(state=TaskState.WORKING), epoch=1))
        while True:
            ev = StatusEvent(task_id=name, context_id="c", status=TaskStatus(state=TaskState.WORKING))
            logged = await store.append_many(name, [ev], epoch=1)
            print(name, logged[-1].id, flush=True)  # printed = acknowledged

    async def main():
        store = await SQLiteStore.open(sys.argv[1])
        await asyncio.gather(*(writer(store, f"t{k}") for k in range(8)))

    asyncio.run(main())
    """
)


async def test_kill_9_loses_no_acknowledged_event_and_frees_the_store(db: Path) -> None:
    acked: dict[str, int] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db)], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
    ) as child:
        assert child.stdout is not None
        try:
            for line in child.stdout:
                task_id, acked_id = line.split()
                acked[task_id] = int(acked_id)
                if sum(acked.values()) >= 2000:
                    break
            # while the writer lives, the store is its alone, and the refusal says which process holds it
            with pytest.raises(StoreLocked, match=f"pid {child.pid} "):
                await SQLiteStore.open(db)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL
    store = await SQLiteStore.open(db)  # the kernel dropped the dead writer's lock: no stale lock to delete
    try:
        assert await store.integrity_check() == "ok"
        for name, seq in acked.items():
            assert [le.id for le in await store.read_after(name, 0)][:seq] == list(range(1, seq + 1))
        assert {t.id for t in await store.unsettled()} == {f"t{k}" for k in range(8)}
    finally:
        await store.close()
