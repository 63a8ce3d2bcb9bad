"""The TaskStore + EventLog contract (a2a_server/ports.py), run against every backend's store.

A failure here for one backend only is a bug in that backend, not in the test: the backends must be
interchangeable behind the service and the runners.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol

import pytest

from a2a_server.backends import MemoryStore, SQLiteStore
from a2a_server.backends.bus import DEFAULT_BYTE_LIMIT
from a2a_server.backends.follow import page_events
from a2a_server.backends.redis_store import RedisStore
from a2a_server.errors import InvalidParams, TaskNotFound
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
    new_id,
)
from a2a_server.ports import EventFilter, EventLog, GlobalEvent, LeaseLost, TaskExists, TaskFollow, TaskStore
from tests.redis_server import RedisServer

# every wait in this file is bounded by this: a lost wake-up fails the test instead of hanging it
DEADLINE = 30


class StoreLog(TaskStore, EventLog, Protocol):
    """What the memory, SQLite and Redis stores are: both ports in one object."""


Opener = Callable[..., Awaitable[StoreLog]]


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Open a fresh store of the backend under test (``buffer_limit`` for the live followers); closed after."""
    opened: list[StoreLog] = []

    async def open_(buffer_limit: int = 8192, byte_limit: int = DEFAULT_BYTE_LIMIT) -> StoreLog:
        s: StoreLog
        if request.param == "memory":
            s = MemoryStore(buffer_limit, byte_limit)
        elif request.param == "redis":  # one server for the suite; each store its own key prefix
            server: RedisServer = request.getfixturevalue("shared_redis")
            url = f"{server.url}?prefix=t-{new_id()}"
            s = await RedisStore.open(url, buffer_limit=buffer_limit, byte_limit=byte_limit)
        else:
            path = tmp_path / f"tasks-{len(opened)}.db"
            s = await SQLiteStore.open(path, buffer_limit=buffer_limit, byte_limit=byte_limit)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        await s.close()


@pytest.fixture
async def store(open_store: Opener) -> StoreLog:
    return await open_store()


def task(
    task_id: str,
    context_id: str = "ctx",
    state: TaskState = TaskState.WORKING,
    at: str = "2026-01-01T00:00:00.000Z",
    *,
    owner: str = "alice",
    skill: str = "s",
) -> Task:
    status = TaskStatus(state=state, timestamp=at)
    return Task(id=task_id, context_id=context_id, status=status, owner=owner, skill=skill, epoch=1)


def event(task_id: str, n: int, context_id: str = "ctx") -> TaskEvent:
    """Event ``n`` of a task, cycling through the three event types so each one round-trips."""
    text = f"{task_id} #{n}"
    msg = Message(message_id=f"m{n}", role=Role.AGENT, parts=[Part.of_text(text)], task_id=task_id,
                  context_id=context_id)  # fmt: skip
    if n % 3 == 0:
        return MessageEvent(task_id=task_id, context_id=context_id, message=msg)
    if n % 3 == 1:
        status = TaskStatus(state=TaskState.WORKING, message=msg, timestamp=f"2026-01-01T00:00:00.{n % 1000:03}Z")
        return StatusEvent(task_id=task_id, context_id=context_id, status=status, metadata={"n": n})
    art = Artifact(artifact_id="a", name="output", parts=[Part.of_text(text)])
    return ArtifactEvent(task_id=task_id, context_id=context_id, artifact=art, append=n > 2, index=0)


def status(task_id: str, state: TaskState = TaskState.WORKING, context_id: str = "ctx") -> StatusEvent:
    status = TaskStatus(state=state, timestamp="2026-01-01T00:00:00.000Z")
    return StatusEvent(task_id=task_id, context_id=context_id, status=status)


def chunk(task_id: str, n: int, context_id: str = "ctx") -> ArtifactEvent:
    """A token chunk: never settles the task."""
    art = Artifact(artifact_id="out", parts=[Part.of_text(f"{n} ")])
    return ArtifactEvent(task_id=task_id, context_id=context_id, artifact=art, append=n > 1)


async def fill(store: StoreLog, task_id: str, n: int) -> list[TaskEvent]:
    """Create a task and log ``n`` events, one ``append_many`` each."""
    await store.create(task(task_id))
    events = [event(task_id, i) for i in range(1, n + 1)]
    for ev in events:
        await store.append_many(task_id, [ev], epoch=1)
    return events


def ids(tasks: list[Task]) -> list[str]:
    return [t.id for t in tasks]


def event_ids(batches: list[list[LoggedEvent]]) -> list[int]:
    return [le.id for batch in batches for le in batch]


async def drain(follower: TaskFollow) -> list[list[LoggedEvent]]:
    """Every batch the follower yields until it ends."""
    async with asyncio.timeout(DEADLINE):
        return [batch async for batch in follower.batches()]


async def take(events: AsyncGenerator[list[GlobalEvent], None], n: int) -> list[GlobalEvent]:
    """The first ``n`` events of a ``follow_all`` (which never ends by itself)."""
    out: list[GlobalEvent] = []
    async with asyncio.timeout(DEADLINE):
        async for batch in events:
            out.extend(batch)
            if len(out) >= n:
                break
    return out


# ---------------------------------------------------------------- creating and reading tasks


async def test_create_then_get_round_trips_the_whole_task(store: StoreLog) -> None:
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
        epoch=1,
    )
    await store.create(original)
    assert await store.get("t") == original
    assert await store.snapshot("t") == (original, 0)  # no event yet
    assert await store.get("missing") is None
    assert await store.snapshot("missing") is None


async def test_create_of_a_taken_id_raises_task_exists_and_keeps_the_first(store: StoreLog) -> None:
    first = task("t", state=TaskState.SUBMITTED)
    await store.create(first)
    dup, other = await asyncio.gather(
        store.create(task("t", state=TaskState.COMPLETED, owner="bob")), store.create(task("u")),
        return_exceptions=True,
    )  # fmt: skip
    assert isinstance(dup, TaskExists) and other is None  # the failed create does not take the other down
    assert await store.get("t") == first
    assert await store.get("u") == task("u")
    assert (await store.list()).total_size == 2


async def test_a_create_is_queued_ahead_of_every_later_write(store: StoreLog) -> None:
    """A runner's first events may be queued before the create of their task is awaited."""
    created = store.create(task("t", state=TaskState.SUBMITTED))
    logged = await store.append_many("t", [status("t", TaskState.SUBMITTED)], epoch=1)
    await created
    assert [le.id for le in logged] == [1]
    assert await store.snapshot("t") == (task("t", state=TaskState.SUBMITTED), 0)


async def test_append_many_with_create_stores_the_new_task_with_its_first_events(store: StoreLog) -> None:
    submitted = task("t", state=TaskState.SUBMITTED)
    async with store.follow("t", 0, fresh=True) as follower:
        logged = await store.append_many("t", [status("t", TaskState.SUBMITTED)], snapshot=submitted, epoch=1,
                                         create=True)  # fmt: skip
        assert [le.id for le in logged] == [1]
        assert await store.snapshot("t") == (submitted, 1)
        assert ids((await store.list(owner="alice")).tasks) == ["t"]
        # the task stored already: its row stays (its place in the listing), the snapshot is written as any is
        working = task("t", state=TaskState.WORKING)
        await store.append_many("t", [status("t")], snapshot=working, epoch=1, create=True)
        assert await store.snapshot("t") == (working, 2)
        await store.append_many("t", [status("t", TaskState.COMPLETED)], epoch=1)
        assert event_ids(await drain(follower)) == [1, 2, 3]
    await store.create(task("u", state=TaskState.SUBMITTED))
    await store.append_many("u", [status("u")], snapshot=task("u"), epoch=1, create=True)
    assert await store.snapshot("u") == (task("u"), 1)  # the snapshot replaced it, as any snapshot does
    assert (await store.list()).total_size == 2


async def test_append_many_with_create_is_fenced_like_any_write(store: StoreLog) -> None:
    await store.create(task("t"))
    await store.take_over("t")
    with pytest.raises(LeaseLost):
        await store.append_many("t", [status("t")], snapshot=task("t", state=TaskState.COMPLETED), epoch=1,
                                create=True)  # fmt: skip
    assert await store.snapshot("t") == (task("t"), 0)
    assert await store.read_after("t", 0) == []


async def test_reads_are_owner_scoped(store: StoreLog) -> None:
    await store.create(task("a1", "c1", owner="alice"))
    await store.create(task("b1", "c1", owner="bob"))
    await store.append_many("a1", [status("a1")], snapshot=task("a1", "c1", owner="alice"), epoch=1)
    assert (await store.get("a1", owner="alice")) == task("a1", "c1", owner="alice")
    assert await store.get("a1", owner="bob") is None
    assert await store.snapshot("a1", owner="bob") is None
    found = await store.snapshot("a1", owner="alice")
    assert found is not None and found[1] == 1
    assert ids((await store.list(owner="alice")).tasks) == ["a1"]
    assert ids((await store.list(owner="bob", context_id="c1")).tasks) == ["b1"]
    nobody = await store.list(owner="carol")
    assert nobody.tasks == [] and nobody.total_size == 0
    # None: every owner (an administrator, or auth off)
    assert ids((await store.list(owner=None)).tasks) == ["b1", "a1"]
    assert await store.get("b1") is not None


async def test_a_snapshot_is_written_with_events_and_replaces_the_task(store: StoreLog) -> None:
    await store.create(task("t", state=TaskState.WORKING))
    logged = await store.append_many(
        "t", [status("t", TaskState.COMPLETED)], snapshot=task("t", state=TaskState.COMPLETED), epoch=1
    )
    got = await store.get("t")
    assert got is not None and got.status.state == TaskState.COMPLETED
    assert await store.read_after("t", 0) == logged
    assert (await store.list()).total_size == 1


async def test_a_stored_task_is_a_snapshot_not_a_live_object(store: StoreLog) -> None:
    """The store keeps the task as it was at ``create`` / ``append_many``; later changes to the caller's
    object (or to an object ``get`` returned) are not in the store until the next write."""
    t = task("t")
    await store.create(t)
    t.status = TaskStatus(state=TaskState.COMPLETED)
    t.artifacts.append(Artifact(parts=[Part.of_text("late")]))
    got = await store.get("t")
    assert got is not None
    assert got.status.state == TaskState.WORKING and got.artifacts == []
    got.history.append(Message(role=Role.USER, parts=[Part.of_text("mutated")]))
    await store.append_many("t", [status("t")], snapshot=got, epoch=1)
    got.history.clear()
    again = await store.get("t")
    assert again is not None and [m.text for m in again.history] == ["mutated"]


async def test_snapshot_returns_the_id_of_the_last_event_it_reflects(store: StoreLog) -> None:
    await store.create(task("t", state=TaskState.SUBMITTED))
    await store.append_many("t", [status("t", TaskState.SUBMITTED)], epoch=1)  # no snapshot: the task stays
    assert await store.snapshot("t") == (task("t", state=TaskState.SUBMITTED), 0)
    working = task("t", state=TaskState.WORKING)
    await store.append_many("t", [status("t"), chunk("t", 1), chunk("t", 2)], snapshot=working, epoch=1)
    assert await store.snapshot("t") == (working, 4)
    await store.append_many("t", [chunk("t", 3)], epoch=1)  # a token without a snapshot
    assert await store.snapshot("t") == (working, 4)
    done = task("t", state=TaskState.COMPLETED)
    await store.append_many("t", [chunk("t", 4), status("t", TaskState.COMPLETED)], snapshot=done, epoch=1)
    assert await store.snapshot("t") == (done, 7)


async def test_a_snapshot_written_without_events_reflects_the_whole_log(store: StoreLog) -> None:
    """Bug (memory store): ``append_many(task, [], snapshot=...)`` kept the id of the previous snapshot, while
    SQLite records the log's newest id. The writer's snapshot reflects every event it wrote, so a reader of
    ``snapshot()`` that replays after that id (resubscribe) got events already in the task twice.
    Fix: a snapshot written with no events reflects the newest event of the log (as SQLite does)."""
    await store.create(task("t"))
    await store.append_many("t", [chunk("t", 1), chunk("t", 2)], epoch=1)
    asked = task("t", state=TaskState.INPUT_REQUIRED)
    await store.append_many("t", [], snapshot=asked, epoch=1)
    assert await store.snapshot("t") == (asked, 2)


async def test_task_ids_are_not_found_before_create(store: StoreLog) -> None:
    with pytest.raises(TaskNotFound):
        await store.append_many("ghost", [status("ghost")], epoch=1)
    with pytest.raises(TaskNotFound):
        await store.take_over("ghost")
    assert await store.read_after("ghost", 0) == []
    assert await store.last_event_id("ghost") == 0


# ---------------------------------------------------------------- fencing


async def test_take_over_fences_every_older_writer(store: StoreLog) -> None:
    await store.create(task("t"))
    await store.append_many("t", [status("t")], snapshot=task("t"), epoch=1)
    cursor = await store.last_cursor()
    assert await store.take_over("t") == 2
    async with store.follow("t", 1) as follower:
        with pytest.raises(LeaseLost):
            await store.append_many(
                "t", [chunk("t", 1), status("t", TaskState.COMPLETED)], snapshot=task("t", state=TaskState.COMPLETED),
                epoch=1,
            )  # fmt: skip
        # nothing of the stale write is anywhere: log, snapshot, global order, followers
        assert await store.read_after("t", 0) == [LoggedEvent(id=1, event=status("t"))]
        assert await store.snapshot("t") == (task("t"), 1)
        assert await store.last_cursor() == cursor
        # the new holder writes on from where the log is
        assert await store.take_over("t") == 3
        with pytest.raises(LeaseLost):
            await store.append_many("t", [chunk("t", 2)], epoch=2)
        done = task("t", state=TaskState.COMPLETED)
        logged = await store.append_many("t", [chunk("t", 3), status("t", TaskState.COMPLETED)], snapshot=done,
                                         epoch=3)  # fmt: skip
        assert [le.id for le in logged] == [2, 3]
        batches = await drain(follower)
    assert [le.event for b in batches for le in b] == [chunk("t", 3), status("t", TaskState.COMPLETED)]
    assert await store.snapshot("t") == (done, 3)


async def test_a_fenced_write_fails_alone_in_a_shared_transaction(store: StoreLog) -> None:
    """SQLite commits the writes of one tick together; a fenced one must not take the others down."""
    await store.create(task("a"))
    await store.create(task("b"))
    await store.take_over("a")
    stale, good = await asyncio.gather(
        store.append_many("a", [status("a")], epoch=1), store.append_many("b", [status("b")], epoch=1),
        return_exceptions=True,
    )  # fmt: skip
    assert isinstance(stale, LeaseLost)
    assert isinstance(good, list) and [le.id for le in good] == [1]
    assert await store.last_event_id("a") == 0 and await store.last_event_id("b") == 1


# ---------------------------------------------------------------- the event log


async def test_ids_are_1_to_n_per_task_and_append_many_returns_them(store: StoreLog) -> None:
    await store.create(task("t"))
    first = await store.append_many("t", [event("t", 1), event("t", 2)], epoch=1)
    rest = [await store.append_many("t", [event("t", i)], epoch=1) for i in range(3, 6)]
    logged = first + [le for batch in rest for le in batch]
    assert [le.id for le in logged] == [1, 2, 3, 4, 5]
    assert [le.event for le in logged] == [event("t", i) for i in range(1, 6)]
    assert await store.last_event_id("t") == 5
    assert await store.append_many("t", [], epoch=1) == []


async def test_read_after_returns_the_events_after_an_id_in_order(store: StoreLog) -> None:
    events = await fill(store, "t", 7)
    whole = await store.read_after("t", 0)
    assert [le.id for le in whole] == list(range(1, 8))
    assert [le.event for le in whole] == events
    assert [type(le.event) for le in whole] == [type(e) for e in events]
    assert [le.id for le in await store.read_after("t", 4)] == [5, 6, 7]
    assert await store.read_after("t", 7) == []
    assert await store.read_after("t", 100) == []


async def test_logs_are_per_task(store: StoreLog) -> None:
    await store.create(task("a"))
    await store.create(task("b"))
    for i in range(1, 4):
        assert [le.id for le in await store.append_many("a", [event("a", i)], epoch=1)] == [i]
        assert [le.id for le in await store.append_many("b", [event("b", i)], epoch=1)] == [i]
    assert [le.event for le in await store.read_after("a", 0)] == [event("a", i) for i in (1, 2, 3)]
    assert [le.event for le in await store.read_after("b", 1)] == [event("b", i) for i in (2, 3)]
    assert await store.last_event_id("a") == await store.last_event_id("b") == 3


async def test_concurrent_appends_to_one_task_get_distinct_ids_and_the_log_matches(store: StoreLog) -> None:
    await store.create(task("t"))
    batches = await asyncio.gather(
        *(store.append_many("t", [event("t", i), chunk("t", i)], epoch=1) for i in range(1, 51))
    )
    # each batch got consecutive ids, in its own order
    for batch in batches:
        assert [le.id for le in batch] == [batch[0].id, batch[0].id + 1]
    by_id = {le.id: le.event for batch in batches for le in batch}
    assert sorted(by_id) == list(range(1, 101))
    assert [(le.id, le.event) for le in await store.read_after("t", 0)] == sorted(by_id.items())


async def test_100_concurrent_tasks_x_100_events_all_persisted_in_order(store: StoreLog) -> None:
    async with asyncio.timeout(DEADLINE * 2):
        written = await asyncio.gather(*(fill(store, f"t{k}", 100) for k in range(100)))
    for k, events in enumerate(written):
        log = await store.read_after(f"t{k}", 0)
        assert [le.id for le in log] == list(range(1, 101))
        assert [le.event for le in log] == events
        assert await store.last_event_id(f"t{k}") == 100


# ---------------------------------------------------------------- following one task


async def test_follow_replays_then_goes_live_with_no_gap_and_no_duplicate(store: StoreLog) -> None:
    await store.create(task("t"))
    await store.append_many("t", [status("t"), *(chunk("t", i) for i in range(1, 5))], epoch=1)

    async def writer() -> None:
        for i in range(5, 40):
            await store.append_many("t", [chunk("t", i)], epoch=1)
            if i % 4 == 0:
                await asyncio.sleep(0)
        await store.append_many("t", [chunk("t", 40), status("t", TaskState.COMPLETED)], epoch=1)

    async with store.follow("t", 2) as follower:
        writing = asyncio.create_task(writer())
        batches = await drain(follower)
        await writing
    assert event_ids(batches) == list(range(3, 43))
    assert [le.event for b in batches for le in b] == [le.event for le in await store.read_after("t", 2)]


async def test_follow_sees_events_committed_between_follow_and_the_first_read(store: StoreLog) -> None:
    """Subscribed from the moment ``follow`` returned: an event committed before ``batches()`` reads the log
    is in the log and in the live buffer, and is yielded once."""
    await store.create(task("t"))
    await store.append_many("t", [status("t")], epoch=1)
    async with store.follow("t", 0) as follower:
        await store.append_many("t", [chunk("t", 1), chunk("t", 2)], epoch=1)
        batches = follower.batches()
        first = await anext(batches)
        await store.append_many("t", [chunk("t", 3), status("t", TaskState.COMPLETED)], epoch=1)
        async with asyncio.timeout(DEADLINE):
            rest = [batch async for batch in batches]
    assert event_ids([first, *rest]) == [1, 2, 3, 4, 5]


async def test_follow_ends_after_a_settling_event(store: StoreLog) -> None:
    await store.create(task("t"))
    await store.append_many("t", [status("t"), chunk("t", 1), status("t", TaskState.COMPLETED)], epoch=1)
    async with store.follow("t", 0) as follower:
        assert event_ids(await drain(follower)) == [1, 2, 3]
    # a caller that saw the settling event already gets nothing, and is not left waiting
    async with store.follow("t", 3) as follower:
        assert await drain(follower) == []


async def test_follow_ends_live_at_the_settling_event_of_its_batch(store: StoreLog) -> None:
    await store.create(task("t"))
    async with store.follow("t", 0) as follower:
        batches = follower.batches()
        await store.append_many("t", [status("t")], epoch=1)
        assert event_ids([await anext(batches)]) == [1]
        await store.append_many("t", [chunk("t", 1), status("t", TaskState.COMPLETED)], epoch=1)
        async with asyncio.timeout(DEADLINE):
            rest = [batch async for batch in batches]
    assert event_ids(rest) == [2, 3]


async def test_follow_goes_on_past_an_input_required_that_was_continued(store: StoreLog) -> None:
    """A settling event ends a follow only when it is the newest of the log: an input-required task that
    took another message has more to come."""
    await store.create(task("t"))
    await store.append_many("t", [status("t"), status("t", TaskState.INPUT_REQUIRED)], epoch=1)
    async with store.follow("t", 2) as follower:
        assert await drain(follower) == []  # asked for input, nothing after it yet
    await store.append_many("t", [status("t")], epoch=1)  # the follow-up's run
    async with store.follow("t", 2) as follower:
        batches = follower.batches()
        assert event_ids([await anext(batches)]) == [3]
        await store.append_many("t", [chunk("t", 1), status("t", TaskState.COMPLETED)], epoch=1)
        async with asyncio.timeout(DEADLINE):
            rest = [batch async for batch in batches]
    assert event_ids(rest) == [4, 5]
    async with store.follow("t", 0) as follower:
        assert event_ids(await drain(follower)) == [1, 2, 3, 4, 5]


async def test_a_fresh_follow_does_not_read_the_log_back(store: StoreLog) -> None:
    await store.create(task("t"))
    async with store.follow("t", 0, fresh=True) as follower:
        await store.append_many("t", [status("t"), status("t", TaskState.COMPLETED)], epoch=1)
        assert event_ids(await drain(follower)) == [1, 2]


async def test_a_follower_has_the_snapshot_written_with_its_newest_batch(store: StoreLog) -> None:
    await store.create(task("t"))
    done = task("t", state=TaskState.COMPLETED)
    async with store.follow("t", 0, fresh=True) as follower:
        await store.append_many("t", [status("t")], snapshot=task("t"), epoch=1)
        await store.append_many("t", [status("t", TaskState.COMPLETED)], snapshot=done, epoch=1)
        await drain(follower)
        assert follower.snapshot == done


async def test_a_follower_that_falls_behind_reads_on_from_the_log(open_store: Opener) -> None:
    """Issue 11, slow readers: a follower past its buffer's bound is not ended (before: ``dropped``, and the
    client had to resume with Last-Event-ID); it reads on from the log: every event once, in order."""
    store = await open_store(buffer_limit=4)
    await store.create(task("t"))
    await store.append_many("t", [status("t")], epoch=1)
    async with store.follow("t", 0) as slow:
        batches = slow.batches()
        seen = [await anext(batches)]  # the replay; from here on it is live and reads nothing
        for i in range(1, 11):  # ten commits while it reads nothing: its buffer of four goes past its bound
            await store.append_many("t", [chunk("t", i)], epoch=1)
        await store.append_many("t", [status("t", TaskState.COMPLETED)], epoch=1)
        async with asyncio.timeout(DEADLINE):
            seen += [batch async for batch in batches]
        assert slow.catch_ups >= 1
    assert event_ids(seen) == list(range(1, 13))
    assert seen[-1][-1].event.settles


async def test_a_follower_past_the_byte_bound_reads_the_log_in_pages(open_store: Opener) -> None:
    """A reader far behind (a client that does not read) is handed its backlog a page at a time, about one
    bound each, not all at once: blocked on its client, it holds no more than that."""
    bound = 16 * 1024
    store = await open_store(byte_limit=bound)
    await store.create(task("t"))
    await store.append_many("t", [status("t")], epoch=1)
    big = [ArtifactEvent(task_id="t", context_id="ctx", artifact=Artifact(artifact_id="out",
           parts=[Part.of_text(f"{i:04d}" * 1024)]), append=i > 0) for i in range(60)]  # fmt: skip
    async with store.follow("t", 0) as slow:
        batches = slow.batches()
        seen = [await anext(batches)]  # the replay
        await store.append_many("t", big[:1], epoch=1)
        async with asyncio.timeout(DEADLINE):
            seen.append(await anext(batches))  # live: it holds this batch, busy (as on a client that does not read)
        for i in range(1, 60, 6):  # 4 KiB chunks, six a commit: each commit alone is past the bound
            await store.append_many("t", big[i : i + 6], epoch=1)
        await store.append_many("t", [status("t", TaskState.COMPLETED)], epoch=1)
        async with asyncio.timeout(DEADLINE):
            seen += [batch async for batch in batches]
        assert slow.catch_ups >= 1
    assert event_ids(seen) == list(range(1, 63))
    texts = [p.text for b in seen for le in b if isinstance(le.event, ArtifactEvent) for p in le.event.artifact.parts]
    assert texts == [f"{i:04d}" * 1024 for i in range(60)]
    assert max(len(b) for b in seen) <= page_events(bound)


async def test_a_follow_ends_when_the_store_closes(open_store: Opener) -> None:
    store = await open_store()
    await store.create(task("t"))
    async with store.follow("t", 0) as follower:
        batches = follower.batches()
        reading = asyncio.ensure_future(anext(batches, None))
        await asyncio.sleep(0)
        await store.close()
        async with asyncio.timeout(DEADLINE):
            assert await reading is None


# ---------------------------------------------------------------- the global order


async def _three_tasks(store: StoreLog) -> None:
    await store.create(task("a", "c1", owner="alice", skill="s1"))
    await store.create(task("b", "c2", owner="alice", skill="s2"))
    await store.create(task("c", "c1", owner="bob", skill="s2"))


async def test_follow_all_yields_every_event_in_the_global_order(store: StoreLog) -> None:
    await _three_tasks(store)
    order: list[tuple[str, int]] = []
    for n in range(1, 5):
        for t in ("a", "b", "c"):
            ctx = "c2" if t == "b" else "c1"
            logged = await store.append_many(t, [chunk(t, n, ctx)], epoch=1)
            order.append((t, logged[0].id))
    async with contextlib.aclosing(store.follow_all(EventFilter())) as events:
        got = await take(events, 12)
    assert [(g.task_id, g.logged.id) for g in got] == order
    cursors = [g.cursor for g in got]
    assert cursors == sorted(set(cursors)) and cursors[-1] == await store.last_cursor()
    assert {(g.task_id, g.context_id, g.skill, g.owner) for g in got} == {
        ("a", "c1", "s1", "alice"), ("b", "c2", "s2", "alice"), ("c", "c1", "s2", "bob")
    }  # fmt: skip
    assert [g.logged.event for g in got if g.task_id == "b"] == [chunk("b", n, "c2") for n in range(1, 5)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (EventFilter(context_id="c1"), ["a1", "c1", "a2", "a3", "c2"]),
        (EventFilter(skill="s2"), ["b1", "c1", "b2", "c2"]),
        (EventFilter(owner="bob"), ["c1", "c2"]),
        (EventFilter(state=TaskState.WORKING), ["a1", "b1", "c1", "a2", "c2"]),
        (EventFilter(state=TaskState.COMPLETED), ["a3"]),
        (EventFilter(state=TaskState.INPUT_REQUIRED), ["b2"]),
        (EventFilter(context_id="c1", skill="s2"), ["c1", "c2"]),
    ],
)
async def test_follow_all_filters(store: StoreLog, where: EventFilter, expected: list[str]) -> None:
    await _three_tasks(store)
    await store.append_many("a", [status("a", context_id="c1")], epoch=1)
    await store.append_many("b", [status("b", context_id="c2")], epoch=1)
    await store.append_many("c", [status("c", context_id="c1")], epoch=1)
    # an artifact is in the state its task is in as of the event before it
    await store.append_many("a", [chunk("a", 1, "c1"), status("a", TaskState.COMPLETED, "c1")], epoch=1)
    await store.append_many("b", [status("b", TaskState.INPUT_REQUIRED, "c2")], epoch=1)
    await store.append_many("c", [chunk("c", 1, "c1")], snapshot=task("c", "c1", owner="bob", skill="s2"), epoch=1)
    async with contextlib.aclosing(store.follow_all(where)) as events:
        stored = await take(events, len(expected))
        # then live: a sentinel matching every filter above proves nothing else matched in between
        assert all(g.matches(where) for g in stored)
        sentinel = task("z", "c1", state=TaskState.WORKING, owner=where.owner or "alice", skill=where.skill or "s2")
        await store.create(sentinel)
        sentinel_state = where.state or TaskState.WORKING
        await store.append_many("z", [status("z", sentinel_state, "c1")], epoch=1)
        live = await take(events, 1)
    assert [f"{g.task_id}{g.logged.id}" for g in stored] == expected
    assert [(g.task_id, g.state) for g in live] == [("z", sentinel_state)]


async def test_the_state_of_an_event_follows_the_last_status_logged(store: StoreLog) -> None:
    """Bug: the state a global event carries (``?state=``) was the task snapshot's state, so an artifact
    logged after an unsaved status event was filed under the state before that status.
    Fix: the state as of an event is the state of the task's last status event (or the snapshot's before any)."""
    await store.create(task("t", state=TaskState.SUBMITTED))
    await store.append_many("t", [status("t", TaskState.WORKING)], epoch=1)  # no snapshot: legal
    await store.append_many("t", [chunk("t", 1)], epoch=1)
    async with contextlib.aclosing(store.follow_all(EventFilter())) as events:
        got = await take(events, 2)
    assert [(g.logged.id, g.state) for g in got] == [(1, TaskState.WORKING), (2, TaskState.WORKING)]


async def test_follow_all_resumes_after_a_cursor_with_no_gap_and_no_duplicate(store: StoreLog) -> None:
    await _three_tasks(store)
    for n in range(1, 11):
        await store.append_many("a", [chunk("a", n, "c1")], epoch=1)
        await store.append_many("b", [chunk("b", n, "c2")], epoch=1)
    async with contextlib.aclosing(store.follow_all(EventFilter())) as events:
        first = await take(events, 7)
    assert len(first) >= 7
    first = first[:7]  # a client that read seven events, then went away

    async def writer() -> None:
        for n in range(11, 21):
            await store.append_many("b", [chunk("b", n, "c2")], epoch=1)
            await asyncio.sleep(0)

    async with contextlib.aclosing(store.follow_all(EventFilter(), first[-1].cursor)) as events:
        writing = asyncio.create_task(writer())
        rest = await take(events, 30 - 7)
        await writing
    whole = [(g.task_id, g.logged.id) for g in first + rest]
    assert len(whole) == len(set(whole)) == 30
    cursors = [g.cursor for g in first + rest]
    assert cursors == sorted(cursors)
    assert [i for t, i in whole if t == "a"] == list(range(1, 11))
    assert [i for t, i in whole if t == "b"] == list(range(1, 21))


async def test_follow_all_of_100_tasks_x_100_events_live_and_resumed(store: StoreLog) -> None:
    """Ten thousand events written by 100 concurrent tasks reach a global follower started before them, in
    one increasing order (more than the live buffer holds: a follower dropped for it catches up from the log),
    and a follower resumed from the middle gets exactly the rest."""
    for k in range(100):
        await store.create(task(f"t{k}", f"c{k % 10}"))

    async def writer(k: int) -> None:
        for n in range(1, 101):
            await store.append_many(f"t{k}", [chunk(f"t{k}", n, f"c{k % 10}")], epoch=1)

    async with contextlib.aclosing(store.follow_all(EventFilter())) as everything, \
            contextlib.aclosing(store.follow_all(EventFilter(context_id="c3"))) as one_context:  # fmt: skip
        writing = asyncio.gather(*(writer(k) for k in range(100)))
        got = await take(everything, 10_000)
        ctx3 = await take(one_context, 1000)
        await writing
    assert len(got) == 10_000 and len(ctx3) == 1000
    cursors = [g.cursor for g in got]
    assert cursors == sorted(set(cursors))
    per_task: dict[str, list[int]] = {}
    for g in got:
        per_task.setdefault(g.task_id, []).append(g.logged.id)
    assert per_task == {f"t{k}": list(range(1, 101)) for k in range(100)}
    assert {g.task_id for g in ctx3} == {f"t{k}" for k in range(3, 100, 10)}
    assert [g.cursor for g in ctx3] == [g.cursor for g in got if g.context_id == "c3"]
    middle = got[4999].cursor
    async with contextlib.aclosing(store.follow_all(EventFilter(), middle)) as resumed:
        rest = await take(resumed, 5000)
    assert [g.cursor for g in rest] == cursors[5000:]


# ---------------------------------------------------------------- recovery and retention


async def test_unsettled_lists_the_tasks_neither_terminal_nor_interrupted_oldest_first(store: StoreLog) -> None:
    for name, state in [
        ("sub", TaskState.SUBMITTED),
        ("done", TaskState.COMPLETED),
        ("work", TaskState.WORKING),
        ("ask", TaskState.INPUT_REQUIRED),
        ("auth", TaskState.AUTH_REQUIRED),
        ("bad", TaskState.FAILED),
    ]:
        await store.create(task(name, state=state))
    assert ids(await store.unsettled()) == ["sub", "work"]


async def test_purge_deletes_old_terminal_tasks_with_their_events(store: StoreLog) -> None:
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
        await store.create(task(name, state=state, at=at))
        await store.append_many(name, [status(name, state)], epoch=1)
    assert await store.purge_finished_before("2026-02-01T00:00:00.000Z") == 3
    assert sorted(ids((await store.list()).tasks)) == ["new-completed", "old-input", "old-working"]
    assert await store.get("old-completed") is None
    assert await store.read_after("old-failed", 0) == []
    async with contextlib.aclosing(store.follow_all(EventFilter())) as events:
        assert sorted(g.task_id for g in await take(events, 3)) == ["new-completed", "old-input", "old-working"]
    assert await store.integrity_check() == "ok"


# ---------------------------------------------------------------- listing


async def _seed(store: StoreLog) -> None:
    # created in this order; timestamps deliberately not in creation order
    rows = [
        ("t1", "c1", TaskState.COMPLETED, "2026-01-01T00:00:01.000Z"),
        ("t2", "c2", TaskState.WORKING, "2026-01-01T00:00:05.000Z"),
        ("t3", "c1", TaskState.WORKING, "2026-01-01T00:00:03.000Z"),
        ("t4", "c1", TaskState.COMPLETED, "2026-01-01T00:00:04.000Z"),
        ("t5", "c2", TaskState.FAILED, "2026-01-01T00:00:02.000Z"),
    ]
    for task_id, ctx, state, at in rows:
        await store.create(task(task_id, ctx, state, at))


async def test_list_is_newest_created_first_and_a_new_snapshot_does_not_reorder(store: StoreLog) -> None:
    await _seed(store)
    done = task("t2", "c2", TaskState.COMPLETED, "2026-01-01T00:00:09.000Z")
    await store.append_many("t2", [status("t2", TaskState.COMPLETED, "c2")], snapshot=done, epoch=1)
    page = await store.list()
    assert ids(page.tasks) == ["t5", "t4", "t3", "t2", "t1"]
    assert page.next_page_token == "" and page.total_size == 5
    assert page.tasks[3].status.state == TaskState.COMPLETED


async def test_list_filters(store: StoreLog) -> None:
    await _seed(store)
    assert ids((await store.list(context_id="c1")).tasks) == ["t4", "t3", "t1"]
    assert ids((await store.list(state=TaskState.COMPLETED)).tasks) == ["t4", "t1"]
    assert ids((await store.list(updated_after="2026-01-01T00:00:03.000Z")).tasks) == ["t4", "t2"]
    both = await store.list(context_id="c1", state=TaskState.WORKING)
    assert ids(both.tasks) == ["t3"] and both.total_size == 1
    assert (await store.list(context_id="nowhere")).tasks == []


async def test_list_pages_with_opaque_tokens(store: StoreLog) -> None:
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


async def test_list_pages_within_a_filter(store: StoreLog) -> None:
    await _seed(store)
    first = await store.list(context_id="c1", page_size=2)
    assert ids(first.tasks) == ["t4", "t3"] and first.total_size == 3
    rest = await store.list(context_id="c1", page_size=2, page_token=first.next_page_token)
    assert ids(rest.tasks) == ["t1"] and rest.next_page_token == ""


@pytest.mark.parametrize("token", ["no-such-task", "t2"])
async def test_list_rejects_a_token_that_is_not_from_a_previous_page(store: StoreLog, token: str) -> None:
    await _seed(store)  # t2 exists but is not in context c1: not a token of that listing
    with pytest.raises(InvalidParams, match="pageToken"):
        await store.list(context_id="c1", page_token=token)


async def test_a_page_token_of_another_owner_is_refused(store: StoreLog) -> None:
    await _seed(store)
    await store.create(task("b1", "c1", owner="bob"))
    with pytest.raises(InvalidParams, match="pageToken"):
        await store.list(owner="alice", page_token="b1")
