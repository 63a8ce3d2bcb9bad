"""A test skill that answers with the conversation it was given: the texts of ``ctx.history``, one per line,
then the new message. It shows exactly what a context's earlier tasks leak into a new one."""

from __future__ import annotations

from collections.abc import AsyncIterator

from a2a_server import BaseSkill, SkillCard, SkillContext, SkillEvent, Status, TaskState, Token


class HistorySkill(BaseSkill):
    name = "history"

    def card(self) -> SkillCard:
        return SkillCard(id="history", name="History", description="Answers with the conversation it was given.")

    async def run(self, ctx: SkillContext) -> AsyncIterator[SkillEvent]:
        yield Status(TaskState.WORKING)
        yield Token("\n".join([*(m.text for m in ctx.history), ctx.text]), last=True)
