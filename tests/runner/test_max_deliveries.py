"""A job handed out more often than ``Runner.max_deliveries`` (every runner that took it was lost) fails with the
reason instead of being run again (issue 10: "a task redelivered more than N times fails with the reason")."""

from __future__ import annotations

from collections.abc import Sequence

from a2a_server.backends.local import LocalQueue
from a2a_server.ports import Lease
from tests.runner.test_runner import Stack, build, events_of, request, settled, states, submit, texts


class LostManyTimes(LocalQueue):
    """A queue whose jobs arrive as if their earlier runners had died ``lost`` times."""

    def __init__(self, lost: int) -> None:
        super().__init__()
        self.lost = lost

    async def claim(self, skills: Sequence[str], worker: str) -> Lease:
        lease = await super().claim(skills, worker)
        return Lease(lease.job, lease.deliveries + self.lost, lease.token)


async def _run(lost: int) -> tuple[Stack, str]:
    stack = build(queue=LostManyTimes(lost))
    await stack.runner.start()
    return stack, await submit(stack, request("tokens"))


async def test_a_job_delivered_more_than_the_limit_fails_with_the_reason() -> None:
    stack, task_id = await _run(lost=5)  # the 6th delivery
    try:
        task = await settled(stack, task_id)
        assert task.status.state == "failed"
        assert task.status.message is not None
        assert task.status.message.text == "gave up after 5 runs: each runner was lost before the task ended"
        assert texts(await events_of(stack, task_id)) == []  # the skill did not run again
    finally:
        await stack.close()


async def test_a_job_at_the_limit_still_runs_and_says_it_was_requeued() -> None:
    stack, task_id = await _run(lost=4)  # the 5th delivery
    try:
        task = await settled(stack, task_id)
        assert task.status.state == "completed"
        events = await events_of(stack, task_id)
        assert states(events)[-1] == "completed" and "".join(t or "" for t in texts(events)) == "a b c"
    finally:
        await stack.close()
