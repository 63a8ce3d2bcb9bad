"""``conformance``: the behaviours the official conformance suite (a2a-tck) asks for, by messageId prefix.

Any other message: working, then completed after about a second (long enough to be canceled); the 0.3 suite's
plain messages (``test-…``, ``<name>-message-id-<uuid>``) wait for input instead: the suite cancels or continues
them after a blocking send. A message that arrives for the task while it works (``ctx.next_message``) runs its own
script on the same task.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from a2a_server import (
    Artifact,
    ArtifactOut,
    BaseSkill,
    Message,
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
    accepts_followups = True

    def card(self) -> SkillCard:
        return SkillCard(
            id="conformance",
            name="Conformance",
            description="Reacts to the A2A conformance suite's messageId prefixes (tck-*); else completes after ~1 s.",
            tags=["a2a", "conformance", "tck"],
            examples=["tck-complete-task", "tck-stream-artifact-chunked"],
        )

    async def run(self, ctx: SkillContext) -> AsyncIterator[SkillEvent]:
        if ctx.message.message_id.startswith("tck-message-response"):
            yield Reply([Part.of_text("Direct message response")])
            return
        # a message for the task while it still works (the 1.0 suite sends ``tck-complete-task``) runs its own script
        message: Message | None = ctx.message
        while message is not None:
            mid = message.message_id
            final = next((status for prefix, status in _FINAL.items() if mid.startswith(prefix)), None)
            if final is not None:
                yield final
                return
            if mid.startswith("tck-stream-002"):
                return
            yield Status(TaskState.WORKING)
            wait = 0.0
            if mid.startswith(_TEXT):
                yield _artifact(Part.of_text("Generated text content"))
            elif mid.startswith("tck-artifact-file-url"):
                yield _artifact(
                    Part(kind="file", url="https://example.com/output.txt", name="output.txt", media_type="text/plain")
                )
            elif mid.startswith(("tck-artifact-file", "tck-stream-artifact-file")):
                yield _artifact(
                    Part(kind="file", raw="SGVsbG8gZnJvbSBUQ0s=", name="output.txt", media_type="text/plain")
                )
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
                wait = 2 * float(os.environ.get("TCK_STREAMING_TIMEOUT", "2.0"))
            elif mid.startswith("test-") or "-message-id-" in mid:
                # the 0.3 suite's plain messages (``test-…``, ``<name>-message-id-<uuid>``; a blocking send):
                # it then cancels the task or continues it by taskId. Its reference agent stays working ~1 s; a
                # blocking send would wait that out and find it completed, so the task waits for input instead
                yield Status(TaskState.INPUT_REQUIRED, "Send another message to continue, or cancel the task")
                return
            else:
                wait = 1.0
            # None on timeout (then the task completes) or on cancel (then it is canceled)
            message = await ctx.next_message(wait) if wait else None


_TEXT = ("tck-artifact-text", "tck-stream-001", "tck-stream-003", "tck-stream-ordering-001", "tck-stream-artifact-text")
_FINAL = {
    "tck-reject-task": Status(TaskState.REJECTED, "Task rejected"),
    "tck-input-required": Status(TaskState.INPUT_REQUIRED, "Please provide more input"),
    "tck-complete-task": Status(TaskState.COMPLETED, "Hello from TCK"),
    # as a follow-up (not the first message) a direct reply cannot replace the task: it completes it
    "tck-message-response": Status(TaskState.COMPLETED, "Direct message response"),
}
