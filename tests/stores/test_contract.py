"""The TaskStore contract (a2a_server/stores/base.py), run against every store.

A failure here for one store only is a bug in that store, not in the test: the stores must be
interchangeable behind the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from a2a_server.errors import InvalidParams
from a2a_server.model import (
    Artifact,
    ArtifactEvent,
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
from a2a_server.stores import MemoryStore, TaskStore
from a2a_server.stores.sqlite import SQLiteStore


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TaskStore]:
    s: TaskStore = MemoryStore() if request.param == "memory" else await SQLiteStore.open(tmp_path / "tasks.db")
    yield s
    await s.close()


def task(task_id: str, context_id: str = "ctx", state: TaskState = TaskState.WORKING, at: str = "") -> Task:
    status = TaskStatus(state=state, timestamp=at) if at else TaskStatus(state=state)
    return Task(id=task_id, context_id=context_id, status=status)


def event(task_id: str, n: int) -> TaskEvent:
    """Event ``n`` of a task, cycling through the three event types so each one round-trips."""
    text = f"{task_id} #{n}"
    msg = Message(message_id=f"m{n}", role=Role.AGENT, parts=[Part.of_text(text)], task_id=task_id, context_id="ctx")
    if n % 3 == 0:
        return MessageEvent(task_id=task_id, context_id="ctx", message=msg)
    if n % 3 == 1:
        status = TaskStatus(state=TaskState.WORKING, message=msg, timestamp=f"2026-01-01T00:00:00.{n % 1000:03}Z")
        return StatusEvent(task_id=task_id, context_id="ctx", status=status, metadata={"n": n})
    art = Artifact(artifact_id="a", name="output", parts=[Part.of_text(text)])
    return ArtifactEvent(task_id=task_id, context_id="ctx", artifact=art, append=n > 2, index=0)


async def fill(store: TaskStore, task_id: str, n: int) -> list[TaskEvent]:
    await store.save(task(task_id))
    events = [event(task_id, i) for i in range(1, n + 1)]
    for ev in events:
        await store.append(task_id, ev)
    return events


# ---------------------------------------------------------------- the event log


async def test_ids_are_1_to_n_per_task_and_append_returns_them(store: TaskStore) -> None:
    await store.save(task("t"))
    logged = [await store.append("t", event("t", i)) for i in range(1, 6)]
    assert [le.id for le in logged] == [1, 2, 3, 4, 5]
    assert [le.event for le in logged] == [event("t", i) for i in range(1, 6)]
    assert await store.last_event_id("t") == 5


async def test_read_after_returns_the_events_after_an_id_in_order(store: TaskStore) -> None:
    events = await fill(store, "t", 7)
    whole = await store.read_after("t", 0)
    assert [le.id for le in whole] == list(range(1, 8))
    assert [le.event for le in whole] == events
    assert [type(le.event) for le in whole] == [type(e) for e in events]
    assert [le.id for le in await store.read_after("t", 4)] == [5, 6, 7]
    assert await store.read_after("t", 7) == []
    assert await store.read_after("t", 100) == []


async def test_an_unknown_task_has_an_empty_log(store: TaskStore) -> None:
    assert await store.read_after("nobody", 0) == []
    assert await store.last_event_id("nobody") == 0


async def test_logs_are_per_task(store: TaskStore) -> None:
    await store.save(task("a"))
    await store.save(task("b"))
    for i in range(1, 4):
        assert (await store.append("a", event("a", i))).id == i
        assert (await store.append("b", event("b", i))).id == i
    assert [le.event for le in await store.read_after("a", 0)] == [event("a", i) for i in (1, 2, 3)]
    assert [le.event for le in await store.read_after("b", 1)] == [event("b", i) for i in (2, 3)]
    assert await store.last_event_id("a") == await store.last_event_id("b") == 3


async def test_concurrent_appends_to_one_task_get_distinct_ids_and_the_log_matches(store: TaskStore) -> None:
    await store.save(task("t"))
    logged = await asyncio.gather(*(store.append("t", event("t", i)) for i in range(1, 51)))
    assert sorted(le.id for le in logged) == list(range(1, 51))
    by_id = {le.id: le.event for le in logged}
    assert [(le.id, le.event) for le in await store.read_after("t", 0)] == sorted(by_id.items())


async def test_100_concurrent_tasks_x_100_appends_all_persisted_in_order(store: TaskStore) -> None:
    async def writer(task_id: str) -> list[TaskEvent]:
        return await fill(store, task_id, 100)

    async with asyncio.timeout(60):  # a lost wake-up must fail the test, not hang it
        written = await asyncio.gather(*(writer(f"t{k}") for k in range(100)))
    for k, events in enumerate(written):
        log = await store.read_after(f"t{k}", 0)
        assert [le.id for le in log] == list(range(1, 101))
        assert [le.event for le in log] == events
        assert await store.last_event_id(f"t{k}") == 100


# ---------------------------------------------------------------- task snapshots


async def test_save_then_get_round_trips_the_whole_task(store: TaskStore) -> None:
    user = Message(role=Role.USER, parts=[Part.of_text("hi"), Part(kind="data", data={"k": [1, 2.5, None]})])
    reply = Message(role=Role.AGENT, parts=[Part(kind="file", url="https://x/y.png", media_type="image/png")])
    original = Task(
        id="t",
        context_id="c",
        status=TaskStatus(state=TaskState.COMPLETED, message=reply),
        artifacts=[Artifact(name="out", parts=[Part.of_text("é ✓ \u0000")], metadata={"a": 1})],
        history=[user, reply],
        metadata={"nested": {"x": True}},
        dialect="1.0",
        skill="echo",
        owner="alice",
        reply=reply,
    )
    await store.save(original)
    assert await store.get("t") == original
    assert await store.get("missing") is None


async def test_save_replaces_the_snapshot(store: TaskStore) -> None:
    await store.save(task("t", state=TaskState.WORKING))
    await store.save(task("t", state=TaskState.COMPLETED))
    got = await store.get("t")
    assert got is not None and got.status.state == TaskState.COMPLETED
    assert (await store.list()).total_size == 1


async def test_save_stores_a_snapshot_not_a_live_object(store: TaskStore) -> None:
    """``save`` stores the task as it is at the call; later changes to the caller's object (or to
    an object ``get`` returned) are not in the store until the next ``save``."""
    t = task("t")
    await store.save(t)
    t.status = TaskStatus(state=TaskState.COMPLETED)
    t.artifacts.append(Artifact(parts=[Part.of_text("late")]))
    got = await store.get("t")
    assert got is not None
    assert got.status.state == TaskState.WORKING and got.artifacts == []
    got.history.append(Message(role=Role.USER, parts=[Part.of_text("mutated")]))
    again = await store.get("t")
    assert again is not None and again.history == []


# ---------------------------------------------------------------- listing


async def _seed(store: TaskStore) -> None:
    # created in this order; timestamps deliberately not in creation order
    rows = [
        ("t1", "c1", TaskState.COMPLETED, "2026-01-01T00:00:01.000Z"),
        ("t2", "c2", TaskState.WORKING, "2026-01-01T00:00:05.000Z"),
        ("t3", "c1", TaskState.WORKING, "2026-01-01T00:00:03.000Z"),
        ("t4", "c1", TaskState.COMPLETED, "2026-01-01T00:00:04.000Z"),
        ("t5", "c2", TaskState.FAILED, "2026-01-01T00:00:02.000Z"),
    ]
    for task_id, ctx, state, at in rows:
        await store.save(task(task_id, ctx, state, at))


def ids(tasks: list[Task]) -> list[str]:
    return [t.id for t in tasks]


async def test_list_is_newest_created_first_and_resaving_does_not_reorder(store: TaskStore) -> None:
    await _seed(store)
    await store.save(task("t2", "c2", TaskState.COMPLETED, "2026-01-01T00:00:09.000Z"))
    page = await store.list()
    assert ids(page.tasks) == ["t5", "t4", "t3", "t2", "t1"]
    assert page.next_page_token == "" and page.total_size == 5
    assert page.tasks[3].status.state == TaskState.COMPLETED


async def test_list_filters(store: TaskStore) -> None:
    await _seed(store)
    assert ids((await store.list(context_id="c1")).tasks) == ["t4", "t3", "t1"]
    assert ids((await store.list(state=TaskState.COMPLETED)).tasks) == ["t4", "t1"]
    assert ids((await store.list(updated_after="2026-01-01T00:00:03.000Z")).tasks) == ["t4", "t2"]
    both = await store.list(context_id="c1", state=TaskState.WORKING)
    assert ids(both.tasks) == ["t3"] and both.total_size == 1
    assert (await store.list(context_id="nowhere")).tasks == []


async def test_list_pages_with_opaque_tokens(store: TaskStore) -> None:
    await _seed(store)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = await store.list(page_size=2, page_token=token)
        assert page.total_size == 5 and len(page.tasks) <= 2
        seen += ids(page.tasks)
        pages += 1
        if not page.next_page_token:
            break
        token = page.next_page_token
    assert seen == ["t5", "t4", "t3", "t2", "t1"] and pages == 3


async def test_list_pages_within_a_filter(store: TaskStore) -> None:
    await _seed(store)
    first = await store.list(context_id="c1", page_size=2)
    assert ids(first.tasks) == ["t4", "t3"] and first.total_size == 3
    rest = await store.list(context_id="c1", page_size=2, page_token=first.next_page_token)
    assert ids(rest.tasks) == ["t1"] and rest.next_page_token == ""


@pytest.mark.parametrize("token", ["no-such-task", "t2"])
async def test_list_rejects_a_token_that_is_not_from_a_previous_page(store: TaskStore, token: str) -> None:
    await _seed(store)  # t2 exists but is not in context c1: not a token of that listing
    with pytest.raises(InvalidParams, match="pageToken"):
        await store.list(context_id="c1", page_token=token)
