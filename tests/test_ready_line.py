"""Bug: "a2a-server ready" was logged 4-5 s before the model was ready (the skill loads it in the background).
Fix: the ready line waits until every skill says it is ready, and says where to go next."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from a2a_server import BaseSkill, Settings, SkillCard, SkillContext, SkillEvent, Token, create_app


class Slow(BaseSkill):
    name = "slow"

    def __init__(self) -> None:
        self.loaded = False

    def card(self) -> SkillCard:
        return SkillCard(id="slow", name="Slow", description="Ready once loaded.")

    def ready(self) -> str | None:
        return None if self.loaded else "loading model"

    async def run(self, ctx: SkillContext) -> AsyncIterator[SkillEvent]:
        yield Token("x")


async def test_ready_is_said_once_every_skill_is_ready(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="a2a_server")
    skill = Slow()
    app = create_app(Settings(store="memory", retention_days=0, port=8123), skills=[skill])
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.3)
        said = [r.getMessage() for r in caplog.records]
        assert any("waiting for slow" in m for m in said), said
        assert not any("a2a-server ready" in m for m in said), said
        skill.loaded = True
        for _ in range(100):
            said = [r.getMessage() for r in caplog.records]
            if any("a2a-server ready" in m for m in said):
                break
            await asyncio.sleep(0.05)
        assert any("a2a-server ready" in m for m in said), said
        assert any(m.startswith("console: http://127.0.0.1:8123/") and "curl" in m for m in said), said
