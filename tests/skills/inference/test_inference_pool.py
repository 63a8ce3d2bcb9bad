"""The instance pool: FIFO hand-over, positions that follow the queue, a bound that refuses at once."""

from __future__ import annotations

import pytest

from skills.inference.pool import Pool, QueueFull


async def test_free_instances_are_granted_at_once_then_tasks_queue_in_order() -> None:
    pool = Pool(["a", "b"], max_waiting=3)
    first, second = pool.enqueue(), pool.enqueue()
    assert (first.item, second.item) == ("a", "b")
    waiting = [pool.enqueue() for _ in range(3)]
    assert [t.position for t in waiting] == [1, 2, 3]
    assert not any(t.granted for t in waiting)

    pool.release("a")
    assert waiting[0].item == "a" and waiting[0].position == 0
    assert [t.position for t in waiting[1:]] == [1, 2]
    assert all(t.changed.is_set() for t in waiting)


async def test_a_full_queue_refuses_at_once_with_a_reason() -> None:
    pool = Pool(["a"], max_waiting=1)
    pool.enqueue()
    pool.enqueue()
    with pytest.raises(QueueFull, match=r"queue full: 1 tasks waiting for 1 model instance\(s\) \(limit 1\)"):
        pool.enqueue()


async def test_leaving_the_queue_moves_the_others_up_and_a_newcomer_never_overtakes() -> None:
    pool = Pool(["a"], max_waiting=5)
    holder = pool.enqueue()
    first, second, third = pool.enqueue(), pool.enqueue(), pool.enqueue()
    third.changed.clear()
    pool.leave(second)
    assert (first.position, third.position) == (1, 2)
    assert third.changed.is_set()

    assert holder.item is not None
    pool.release(holder.item)
    assert first.item == "a"
    late = pool.enqueue()  # the instance is busy again: the newcomer queues behind `third`
    assert late.position == 2


async def test_a_granted_but_unused_instance_returns_when_its_task_leaves() -> None:
    pool = Pool(["a"], max_waiting=2)
    ticket = pool.enqueue()
    pool.leave(ticket)
    assert pool.free == 1
    assert pool.enqueue().item == "a"
