"""``tally``: a scripted token skill for the billing tests, re-runnable like a real model after a crash.

It streams ``count`` chunks ``"t0 "``, ``"t1 "`` … each standing for ``per_chunk`` model tokens (``Token.tokens``),
``delay_ms`` apart, so a test can compute every charge from the text it received: chunks * per_chunk * rate.
Load it with ``--skills tests.tally_skill:TallySkill``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from a2a_server import BaseSkill, InvalidSkillParams, Message, SkillCard, SkillContext, SkillEvent, Status, TaskState
from a2a_server.skill import Token


def _int(metadata: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = metadata.get(name, default)
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise InvalidSkillParams(f"{name} must be an integer from {low} to {high}, got {raw!r}", param=name)
    return raw


class TallySkill(BaseSkill):
    name = "tally"
    rerunnable = True  # scripted and side-effect free: after a crash it runs again from the start

    def card(self) -> SkillCard:
        return SkillCard(id="tally", name="Tally", description="Streams t0 t1 … (billing tests).")

    def validate(self, message: Message, metadata: Mapping[str, Any]) -> None:
        self._params(metadata)

    @staticmethod
    def _params(metadata: Mapping[str, Any]) -> tuple[int, int, float]:
        count = _int(metadata, "count", 10, 0, 100_000)
        per_chunk = _int(metadata, "per_chunk", 1, 1, 1000)
        delay = _int(metadata, "delay_ms", 0, 0, 60_000) / 1000
        return count, per_chunk, delay

    async def run(self, ctx: SkillContext) -> AsyncIterator[SkillEvent]:
        count, per_chunk, delay = self._params(ctx.metadata)
        yield Status(TaskState.WORKING)
        for i in range(count):
            if delay and await ctx.sleep(delay):
                return
            if ctx.cancelled.is_set():
                return
            yield Token(f"t{i} ", tokens=per_chunk)


def chunks_of(task: Mapping[str, Any]) -> int:
    """How many tally chunks a task (1.0 JSON) delivered: the words of its text artifact."""
    return sum(len((p.get("text") or "").split()) for a in task.get("artifacts", []) for p in a.get("parts", []))
