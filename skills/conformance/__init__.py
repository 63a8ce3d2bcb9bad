"""``conformance``: the behaviours the official conformance suite (a2a-tck) asks for, by messageId prefix.

Any other message: working, then completed after about a second (long enough to be canceled).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from a2a_server import (
    Artifact,
    ArtifactOut,
    BaseSkill,
    Part,
    Reply,
    SkillCard,
    SkillContext,
    SkillEvent,
    Status,
    TaskState,
)


def _artifact(*parts: Part, artifact_id: str | None = None) -> ArtifactOut:
    artifact = (
        Artifact(parts=list(parts)) if artifact_id is None else Artifact(artifact_id=artifact_id, parts=list(parts))
    )
    return ArtifactOut(artifact)


class ConformanceSkill(BaseSkill):
    name = "conformance"
    rerunnable = True  # scripted and side-effect free

    def card(self) -> SkillCard:
        return SkillCard(
            id="conformance",
            name="Conformance",
            description="Reacts to the A2A conformance suite's messageId prefixes (tck-*); else completes after ~1 s.",
            tags=["a2a", "conformance", "tck"],
            examples=["tck-complete-task", "tck-stream-artifact-chunked"],
        )

    async def run(self, ctx: SkillContext) -> AsyncIterator[SkillEvent]:
        mid = ctx.message.message_id
        if mid.startswith("tck-message-response"):
            yield Reply([Part.of_text("Direct message response")])
            return
        if mid.startswith("tck-reject-task"):
            yield Status(TaskState.REJECTED, "Task rejected")
            return
        if mid.startswith("tck-input-required"):
            yield Status(TaskState.INPUT_REQUIRED, "Please provide more input")
            return
        if mid.startswith("tck-complete-task"):
            yield Status(TaskState.COMPLETED, "Hello from TCK")
            return
        if mid.startswith("tck-stream-002"):
            return
        yield Status(TaskState.WORKING)
        if mid.startswith(
            (
                "tck-artifact-text",
                "tck-stream-001",
                "tck-stream-003",
                "tck-stream-ordering-001",
                "tck-stream-artifact-text",
            )
        ):
            yield _artifact(Part.of_text("Generated text content"))
        elif mid.startswith("tck-artifact-file-url"):
            yield _artifact(
                Part(kind="file", url="https://example.com/output.txt", name="output.txt", media_type="text/plain")
            )
        elif mid.startswith(("tck-artifact-file", "tck-stream-artifact-file")):
            yield _artifact(Part(kind="file", raw="SGVsbG8gZnJvbSBUQ0s=", name="output.txt", media_type="text/plain"))
        elif mid.startswith("tck-artifact-data"):
            yield _artifact(Part(kind="data", data={"key": "value", "count": 42}))
        elif mid.startswith("tck-stream-artifact-chunked"):
            first = _artifact(Part.of_text("chunk-1 "))
            yield first
            yield ArtifactOut(
                Artifact(artifact_id=first.artifact.artifact_id, parts=[Part.of_text("chunk-2")]),
                append=True,
                last_chunk=True,
            )
        elif mid.startswith("test-resubscribe-message-id"):
            await ctx.sleep(2 * float(os.environ.get("TCK_STREAMING_TIMEOUT", "2.0")))
        else:
            await ctx.sleep(1.0)
