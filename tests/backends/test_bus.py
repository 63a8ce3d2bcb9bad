"""The in-process bus (a2a_server/backends/bus.py): fan-out by key, bounded buffers, drop the slow one."""

from __future__ import annotations

import asyncio

from a2a_server.backends.bus import EventBus
from a2a_server.backends.weight import logged_bytes
from a2a_server.model import Artifact, ArtifactEvent, LoggedEvent, Part, StatusEvent, TaskState, TaskStatus


def _event(i: int) -> LoggedEvent:
    status = TaskStatus(state=TaskState.WORKING)
    return LoggedEvent(id=i, event=StatusEvent(task_id="t", context_id="c", status=status))


async def test_every_subscriber_sees_the_same_events_in_order() -> None:
    bus: EventBus[LoggedEvent] = EventBus(buffer_limit=100)
    subs = [bus.subscribe("t") for _ in range(3)]
    for i in range(1, 51):
        bus.publish("t", _event(i))
    for sub in subs:
        got = [(await sub.next()) for _ in range(50)]
        assert [e.id for e in got if e is not None] == list(range(1, 51))
        sub.close()
    assert bus.subscriber_count() == 0


async def test_a_full_subscriber_is_dropped_without_touching_the_others() -> None:
    bus: EventBus[LoggedEvent] = EventBus(buffer_limit=10)
    stalled, reader = bus.subscribe("t"), bus.subscribe("t")
    received: list[int] = []
    for i in range(1, 31):
        bus.publish("t", _event(i))
        ev = await reader.next()
        assert ev is not None
        received.append(ev.id)
    assert stalled.dropped
    assert await stalled.next() is None
    assert received == list(range(1, 31))
    assert bus.subscriber_count("t") == 1


async def test_next_wakes_on_publish_and_on_close() -> None:
    bus: EventBus[LoggedEvent] = EventBus()
    sub = bus.subscribe("t")
    waiter = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    bus.publish("t", _event(1))
    got = await asyncio.wait_for(waiter, 5)
    assert got is not None and got.id == 1
    waiter = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    sub.close()
    assert await asyncio.wait_for(waiter, 5) is None


async def test_publish_to_other_keys_is_not_seen() -> None:
    bus: EventBus[LoggedEvent] = EventBus()
    async with bus.subscribe("a") as sub:
        bus.publish("b", _event(1))
        bus.publish("a", _event(2))
        got = await sub.next()
        assert got is not None and got.id == 2
    assert bus.subscriber_count() == 0


async def test_next_batch_returns_everything_buffered_and_the_newest_attachment() -> None:
    bus: EventBus[LoggedEvent] = EventBus()
    async with bus.subscribe("t") as sub:
        bus.publish_many("t", [_event(1), _event(2)], attachment="first")
        bus.publish("t", _event(3))  # no attachment: the one before stays
        batch = await sub.next_batch()
        assert batch is not None and [e.id for e in batch] == [1, 2, 3]
        assert sub.attachment == "first"
        bus.publish("t", _event(4), attachment="second")
        batch = await sub.next_batch()
        assert batch is not None and [e.id for e in batch] == [4] and sub.attachment == "second"


async def test_the_bus_carries_any_item_type() -> None:
    """The global order rides the same bus with other items under one key."""
    bus: EventBus[tuple[int, str]] = EventBus(buffer_limit=4)
    async with bus.subscribe("*") as sub:
        bus.publish("*", (1, "a"))
        bus.publish("*", (2, "b"))
        assert await sub.next_batch() == [(1, "a"), (2, "b")]


async def test_close_all_ends_every_subscriber() -> None:
    bus: EventBus[LoggedEvent] = EventBus()
    subs = [bus.subscribe(key) for key in ("a", "b", "b")]
    waiters = [asyncio.create_task(s.next_batch()) for s in subs]
    await asyncio.sleep(0)
    bus.close_all()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 5) == [None, None, None]
    assert bus.subscriber_count() == 0


def _chunk(i: int, text: str) -> LoggedEvent:
    artifact = Artifact(artifact_id="a", parts=[Part(kind="text", text=text)])
    return LoggedEvent(id=i, event=ArtifactEvent(task_id="t", context_id="c", artifact=artifact, append=True))


async def test_a_busy_subscriber_is_dropped_at_the_byte_bound_not_at_the_event_bound() -> None:
    """Issue 11, slow readers: big events fill a buffer long before its event bound."""
    bus: EventBus[LoggedEvent] = EventBus(buffer_limit=10_000, byte_limit=64 * 1024, weigh=logged_bytes)
    stalled, reader = bus.subscribe("t"), bus.subscribe("t")
    bus.publish("t", _chunk(1, "x"))
    assert await stalled.next_batch() is not None  # it took a batch and is now busy elsewhere (a blocked socket)
    received = 0
    for i in range(2, 42):
        bus.publish("t", _chunk(i, "y" * 4096))
        received += len(await reader.next_batch() or [])
    assert stalled.dropped and stalled.buffered_bytes == 0
    assert received == 41 and not reader.dropped  # event 1 and the 40 chunks
    assert bus.subscriber_count("t") == 1


async def test_a_subscriber_waiting_for_its_buffer_is_only_held_to_the_event_bound() -> None:
    """A burst published before the consumer first runs must not drop a healthy reader (a drop would make it
    read the burst back from the log: measured, observers 3x slower in bench/slow_readers.py)."""
    bus: EventBus[LoggedEvent] = EventBus(buffer_limit=100, byte_limit=8 * 1024, weigh=logged_bytes)
    sub = bus.subscribe("t")
    for i in range(1, 51):
        bus.publish("t", _chunk(i, "z" * 1024))
    assert not sub.dropped and sub.buffered_bytes > 8 * 1024
    # handed over at most the byte bound at a time, so that a consumer that then blocks holds no more than that
    got: list[int] = []
    while len(got) < 50:
        batch = await sub.next_batch()
        assert batch is not None and 0 < sum(logged_bytes(e) for e in batch[1:]) <= 8 * 1024
        got += [e.id for e in batch]
    assert got == list(range(1, 51)) and sub.buffered_bytes == 0


async def test_what_arrives_while_the_consumer_is_busy_counts_against_the_byte_bound_not_the_burst_before() -> None:
    """The byte bound measures falling behind while blocked (a client that does not read), not a burst that
    arrived while the consumer waited and that it is working through."""
    bus: EventBus[LoggedEvent] = EventBus(buffer_limit=1000, byte_limit=8 * 1024, weigh=logged_bytes)
    sub = bus.subscribe("t")
    for i in range(1, 21):  # a burst of ~60 KiB before the consumer runs
        bus.publish("t", _chunk(i, "z" * 1024))
    assert await sub.next_batch() is not None  # busy now, with the rest of the burst still buffered
    bus.publish("t", _chunk(21, "z" * 1024))
    assert not sub.dropped  # ~3 KiB arrived while busy
    for i in range(22, 26):
        bus.publish("t", _chunk(i, "z" * 1024))
    assert sub.dropped and sub.buffered_bytes == 0  # ~15 KiB arrived while busy: past the 8 KiB bound
    assert await sub.next_batch() is None
