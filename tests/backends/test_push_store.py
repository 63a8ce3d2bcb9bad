"""The PushStore contract, over the memory store and a real SQLite file (configs and delivery state survive it)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from a2a_server.backends import MemoryPushStore, SQLitePushStore, SQLiteStore
from a2a_server.backends.sqlite_schema import SCHEMA_VERSION
from a2a_server.model import Task, TaskState, TaskStatus
from a2a_server.ports import Delivery, PushConfig, PushStore


def config(task_id: str = "t1", config_id: str = "c1", owner: str = "alice", url: str = "https://h/x") -> PushConfig:
    return PushConfig(task_id=task_id, id=config_id, url=url, owner=owner, dialect="1.0", secret="s3cret",
                      token="tok", auth_scheme="Bearer", auth_credentials="cred")  # fmt: skip


@pytest.fixture(params=["memory", "sqlite"])
async def push(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PushStore]:
    if request.param == "memory":
        yield MemoryPushStore()
        return
    store = await SQLiteStore.open(tmp_path / "tasks.db")
    try:
        yield SQLitePushStore(store)
    finally:
        await store.close()


async def test_configs_are_per_task_with_ids_and_owner_scoped(push: PushStore) -> None:
    await push.put(config("t1", "a"))
    await push.put(config("t1", "b"))
    await push.put(config("t2", "a", owner="bob"))
    assert [c.id for c in await push.list("t1")] == ["a", "b"]
    assert [c.id for c in await push.list("t1", owner="alice")] == ["a", "b"]
    assert await push.list("t1", owner="bob") == []
    assert await push.get("t2", "a", owner="alice") is None
    got = await push.get("t2", "a", owner="bob")
    assert got is not None and got.url == "https://h/x" and got.auth_scheme == "Bearer" and got.secret == "s3cret"
    assert not await push.delete("t2", "a", owner="alice")  # another owner's config is not there
    assert await push.delete("t2", "a", owner="bob")
    assert not await push.delete("t2", "a")
    assert await push.get("t2", "a") is None


async def test_put_replaces_and_record_keeps_the_delivery_state(push: PushStore) -> None:
    await push.put(config(url="https://old/x"))
    await push.put(config(url="https://new/x"))
    assert [c.url for c in await push.list("t1")] == ["https://new/x"]
    state = Delivery(cursor=7, state="failing", attempts=3, delivered=6, last_status="500", next_try="2026-01-01")
    assert await push.record("t1", "c1", state)
    got = await push.get("t1", "c1")
    assert got is not None and got.delivery == state
    assert not await push.record("t1", "gone", state)
    assert [c.id for c in await push.active()] == ["c1"]
    await push.record("t1", "c1", Delivery(cursor=9, state="done"))
    assert await push.active() == []


async def test_sqlite_configs_survive_a_reopen_and_go_with_a_purged_task(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    store = await SQLiteStore.open(path)
    task = Task(id="t1", context_id="c", status=TaskStatus(state=TaskState.COMPLETED, timestamp="2000-01-01T00:00:00Z"))
    await store.create(task)
    await SQLitePushStore(store).put(config())
    await SQLitePushStore(store).record("t1", "c1", Delivery(cursor=4, delivered=4, state="failing"))
    await store.close()
    store = await SQLiteStore.open(path)
    try:
        push = SQLitePushStore(store)
        got = await push.get("t1", "c1")
        assert got is not None and got.delivery.cursor == 4 and got.token == "tok"
        assert [c.id for c in await push.failing(["t1"])] == ["c1"]  # known failing from the file, after a restart
        assert await store.purge_finished_before("2001-01-01T00:00:00Z") == 1
        assert await push.list("t1") == []
        assert await push.failing(["t1"]) == []
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_failing_lists_only_failing_configs_of_the_asked_tasks_and_owner(push: PushStore) -> None:
    await push.put(config("t1", "a"))
    await push.put(config("t1", "b"))
    await push.put(config("t2", "a", owner="bob"))
    assert await push.failing(["t1", "t2"]) == []
    failing = Delivery(cursor=2, state="failing", attempts=5, last_status="500", next_try="2026-01-01T00:00:00Z")
    assert await push.record("t1", "b", failing)
    assert await push.record("t2", "a", failing)
    assert [(c.task_id, c.id) for c in await push.failing(["t1", "t2"])] == [("t1", "b"), ("t2", "a")]
    assert [(c.task_id, c.id) for c in await push.failing(["t1", "t2"], owner="alice")] == [("t1", "b")]
    assert await push.failing(["t1"], owner="bob") == []  # another owner's task shows nothing
    assert await push.failing(["t3"]) == [] and await push.failing([]) == []
    got = await push.failing(["t1"])
    assert got[0].delivery == failing
    await push.record("t1", "b", Delivery(cursor=3, state="active"))  # delivered again: no longer failing
    await push.delete("t2", "a")
    assert await push.failing(["t1", "t2"]) == []
    stored_failing = config("t1", "c")
    stored_failing.delivery = failing  # put keeps the delivery state it is given (a config set again)
    await push.put(stored_failing)
    assert [c.id for c in await push.failing(["t1"])] == ["c"]
