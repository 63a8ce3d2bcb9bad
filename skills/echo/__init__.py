"""``echo``: streams the input back, one chunk per word with its following whitespace.

The chunks concatenate to the input exactly. ``delay_ms`` (message or params metadata) pauses
before each chunk, for tests and demos of streaming and cancel.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from a2a_server import (
    BaseSkill,
    InvalidSkillParams,
    Message,
    SkillCard,
    SkillContext,
    SkillEvent,
    Status,
    TaskState,
    Token,
)

_WORDS = re.compile(r"\s*\S+\s*|\s+")


def _delay(metadata: Mapping[str, Any]) -> float:
    raw = metadata.get("delay_ms", 0)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= 60_000:
        raise InvalidSkillParams(f"delay_ms must be a number from 0 to 60000, got {raw!r}")
    return float(raw) / 1000.0


class EchoSkill(BaseSkill):
    name = "echo"

    def card(self) -> SkillCard:
        return SkillCard(
            id="echo",
            name="Echo",
            description="Streams the input text back, one artifact chunk per word; metadata.delay_ms slows it down.",
            tags=["echo", "test", "streaming"],
            examples=["hello streaming world"],
        )

    def validate(self, message: Message, metadata: Mapping[str, Any]) -> None:
        _delay(metadata)

    async def run(self, ctx: SkillContext) -> AsyncIterator[SkillEvent]:
        delay = _delay(ctx.metadata)
        yield Status(TaskState.WORKING)
        # leading whitespace belongs to the first word, so the chunks add up to the input exactly
        words = _WORDS.findall(ctx.text)
        for i, word in enumerate(words):
            if delay and await ctx.sleep(delay):
                return
            if ctx.cancelled.is_set():
                return
            yield Token(word, last=i == len(words) - 1)
