"""What only the SQLite store promises: durability, schema versions, owners, recovery, retention."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from a2a_server.errors import TaskNotFound
from a2a_server.model import StatusEvent, Task, TaskState, TaskStatus
from a2a_server.stores.sqlite import SCHEMA_VERSION, SchemaTooNew, SQLiteStore, StoreClosed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tasks.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[SQLiteStore]:
    s = await SQLiteStore.open(db)
    yield s
    await s.close()


def task(task_id: str, state: TaskState = TaskState.WORKING, at: str = "2026-01-01T00:00:00.000Z") -> Task:
    return Task(id=task_id, context_id="ctx", status=TaskStatus(state=state, timestamp=at), owner="alice")


def status(task_id: str, state: TaskState = TaskState.WORKING) -> StatusEvent:
    return StatusEvent(task_id=task_id, context_id="ctx", status=TaskStatus(state=state))


def raw(db: Path, sql: str) -> list[tuple[object, ...]]:
    """Query the file through a connection of its own: what another process would see."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_a_new_file_is_created_in_wal_mode_at_the_current_schema_version(store: SQLiteStore, db: Path) -> None:
    assert db.exists()
    assert raw(db, "PRAGMA journal_mode") == [("wal",)]
    assert raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert await store.integrity_check() == "ok"


async def test_everything_survives_close_and_reopen(db: Path) -> None:
    store = await SQLiteStore.open(db)
    for name in ("a", "b"):
        await store.save(task(name))
        for _ in range(3):
            await store.append(name, status(name))
    before = [await store.read_after(n, 0) for n in ("a", "b")]
    listed = await store.list()
    await store.close()

    store = await SQLiteStore.open(db)
    try:
        assert [await store.read_after(n, 0) for n in ("a", "b")] == before
        assert await store.list() == listed
        assert await store.get("a") == task("a")
        assert (await store.append("a", status("a"))).id == 4  # numbering continues
        assert await store.integrity_check() == "ok"
    finally:
        await store.close()


async def test_an_acknowledged_append_is_committed(store: SQLiteStore, db: Path) -> None:
    await store.save(task("t"))
    logged = await store.append("t", status("t"))
    assert raw(db, "SELECT task_id, seq FROM events") == [("t", logged.id)]


async def test_appends_of_one_tick_share_one_transaction(store: SQLiteStore) -> None:
    await store.save(task("t"))
    before = store.transactions
    logged = await asyncio.gather(*(store.append("t", status("t")) for _ in range(100)))
    assert sorted(le.id for le in logged) == list(range(1, 101))
    assert store.transactions - before == 1


async def test_every_task_and_event_row_records_the_owner(store: SQLiteStore, db: Path) -> None:
    await store.save(task("t"))
    await store.append("t", status("t"))
    await store.save(Task(id="anon", context_id="c", status=TaskStatus(state=TaskState.WORKING)))
    await store.append("anon", status("anon"))
    assert raw(db, "SELECT id, owner FROM tasks ORDER BY id") == [("anon", "anonymous"), ("t", "alice")]
    assert raw(db, "SELECT task_id, owner FROM events ORDER BY task_id") == [("anon", "anonymous"), ("t", "alice")]


async def test_append_to_an_unsaved_task_fails_alone(store: SQLiteStore) -> None:
    await store.save(task("t"))
    good, bad = await asyncio.gather(
        store.append("t", status("t")), store.append("ghost", status("ghost")), return_exceptions=True
    )
    assert isinstance(bad, TaskNotFound)
    assert not isinstance(good, BaseException) and good.id == 1
    assert await store.last_event_id("t") == 1 and await store.last_event_id("ghost") == 0


async def test_append_with_a_snapshot_writes_both(store: SQLiteStore) -> None:
    done = task("t", TaskState.COMPLETED)
    await store.save(task("t"))
    logged = await store.append("t", status("t", TaskState.COMPLETED), snapshot=done)
    assert await store.get("t") == done
    assert await store.read_after("t", 0) == [logged]


async def test_close_commits_what_was_queued_then_refuses(db: Path) -> None:
    store = await SQLiteStore.open(db)
    await store.save(task("t"))
    queued = [asyncio.ensure_future(store.append("t", status("t"))) for _ in range(10)]
    await asyncio.sleep(0)  # they are now queued, not yet committed
    await store.close()
    assert sorted(f.result().id for f in queued) == list(range(1, 11))
    with pytest.raises(StoreClosed):
        await store.append("t", status("t"))
    with pytest.raises(StoreClosed):
        await store.get("t")
    assert raw(db, "SELECT COUNT(*) FROM events") == [(10,)]


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
    assert sorted(p.name for p in db.parent.iterdir()) == ["tasks.db"]


async def test_a_newer_schema_written_by_us_is_refused_too(db: Path) -> None:
    await (await SQLiteStore.open(db)).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    conn.close()
    digest = _digest(db)
    with pytest.raises(SchemaTooNew, match=f"version {SCHEMA_VERSION + 7} is newer"):
        await SQLiteStore.open(db)
    assert _digest(db) == digest


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
        await store.save(task(name, state))
    await store.close()
    store = await SQLiteStore.open(db)
    try:
        assert [t.id for t in await store.unsettled()] == ["sub", "work"]
    finally:
        await store.close()


async def test_purge_deletes_old_terminal_tasks_with_their_events(store: SQLiteStore, db: Path) -> None:
    old, new = "2026-01-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"
    cases = {
        "old-completed": (TaskState.COMPLETED, old),
        "old-failed": (TaskState.FAILED, old),
        "old-canceled": (TaskState.CANCELED, old),
        "old-working": (TaskState.WORKING, old),
        "old-input": (TaskState.INPUT_REQUIRED, old),
        "new-completed": (TaskState.COMPLETED, new),
    }
    for name, (state, at) in cases.items():
        await store.save(task(name, state, at))
        await store.append(name, status(name))
    assert await store.purge_finished_before("2026-02-01T00:00:00.000Z") == 3
    assert sorted(t.id for t in (await store.list()).tasks) == ["new-completed", "old-input", "old-working"]
    assert await store.get("old-completed") is None
    assert await store.read_after("old-failed", 0) == []
    assert raw(db, "SELECT COUNT(*) FROM events") == [(3,)]
    assert await store.integrity_check() == "ok"


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from a2a_server.model import StatusEvent, Task, TaskState, TaskStatus
    from a2a_server.stores.sqlite import SQLiteStore

    async def writer(store, name):
        await store.save(Task(id=name, context_id="c", status=TaskStatus(state=TaskState.WORKING)))
        while True:
            ev = StatusEvent(task_id=name, context_id="c", status=TaskStatus(state=TaskState.WORKING))
            logged = await store.append(name, ev)
            print(name, logged.id, flush=True)  # printed = acknowledged

    async def main():
        store = await SQLiteStore.open(sys.argv[1])
        await asyncio.gather(*(writer(store, f"t{k}") for k in range(8)))

    asyncio.run(main())
    """
)


async def test_kill_9_loses_no_acknowledged_event(db: Path) -> None:
    acked: dict[str, int] = {}
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    ) as child:
        assert child.stdout is not None
        try:
            for line in child.stdout:
                task_id, acked_id = line.split()
                acked[task_id] = int(acked_id)
                if sum(acked.values()) >= 2000:
                    break
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL
    store = await SQLiteStore.open(db)
    try:
        assert await store.integrity_check() == "ok"
        for name, seq in acked.items():
            assert [le.id for le in await store.read_after(name, 0)][:seq] == list(range(1, seq + 1))
        assert {t.id for t in await store.unsettled()} == {f"t{k}" for k in range(8)}
    finally:
        await store.close()
