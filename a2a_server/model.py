"""The canonical task model: one shape for every wire generation (no I/O here).

Dialects (``a2a_server.dialects``) translate between this model and the JSON of each protocol
generation; the engine, the bus and the stores only ever see these types.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

_RANDOM = bytearray()


def new_id() -> str:
    """128 random bits from the OS as 32 hex digits (like uuid4().hex), drawn from a pool: one getrandom
    call per 256 ids instead of a syscall and a UUID object per id."""
    global _RANDOM
    if not _RANDOM:
        _RANDOM = bytearray(os.urandom(16 * 256))
    chunk = _RANDOM[-16:]
    del _RANDOM[-16:]
    return chunk.hex()


_SECOND: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """``2026-01-02T03:04:05.678Z``; the part up to the second is formatted once per second (a send takes four)."""
    global _SECOND
    ms = int(time.time() * 1000)
    second = ms // 1000
    if _SECOND[0] != second:
        _SECOND = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_SECOND[1]}.{ms % 1000:03d}Z"


class TaskState(StrEnum):
    SUBMITTED = "submitted"
    WORKING = "working"
    INPUT_REQUIRED = "input-required"
    AUTH_REQUIRED = "auth-required"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def interrupted(self) -> bool:
        return self in _INTERRUPTED

    @property
    def settled(self) -> bool:
        """Terminal or interrupted: a blocking send answers and a stream closes."""
        return self in _TERMINAL or self in _INTERRUPTED


_TERMINAL = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.REJECTED})
_INTERRUPTED = frozenset({TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED})


class Role(StrEnum):
    USER = "user"
    AGENT = "agent"


class Part(BaseModel):
    """One piece of content. ``kind`` says which of the optional fields is set."""

    kind: Literal["text", "file", "data"]
    text: str | None = None
    data: Any = None
    # file parts: exactly one of raw (base64) or url
    raw: str | None = None
    url: str | None = None
    name: str | None = None
    media_type: str | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def of_text(cls, text: str) -> Part:
        return cls(kind="text", text=text)


class Message(BaseModel):
    message_id: str = Field(default_factory=new_id)
    role: Role
    parts: list[Part]
    context_id: str | None = None
    task_id: str | None = None
    metadata: dict[str, Any] | None = None
    reference_task_ids: list[str] | None = None
    extensions: list[str] | None = None

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if p.kind == "text" and p.text is not None)


class Artifact(BaseModel):
    artifact_id: str = Field(default_factory=new_id)
    name: str | None = None
    description: str | None = None
    parts: list[Part]
    metadata: dict[str, Any] | None = None
    extensions: list[str] | None = None


class TaskStatus(BaseModel):
    state: TaskState
    message: Message | None = None
    timestamp: str = Field(default_factory=utc_now)


class Task(BaseModel):
    id: str
    context_id: str
    status: TaskStatus
    artifacts: list[Artifact] = Field(default_factory=list)
    history: list[Message] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None
    # Which wire generation created the task: get/cancel/resubscribe answer in it by default.
    dialect: str = "0.3"
    skill: str = ""
    owner: str = "anonymous"
    # the fencing token of the task's current writer (see ports.TaskStore.take_over); never on the wire
    epoch: int = 0
    # set when the skill answered with a direct message instead of working on a task
    reply: Message | None = None


# An event's task and context ids default to "": a stored event row leaves them to its task.


class StatusEvent(BaseModel):
    task_id: str = ""
    context_id: str = ""
    status: TaskStatus
    metadata: dict[str, Any] | None = None

    @property
    def settles(self) -> bool:
        return self.status.state.settled


class ArtifactEvent(BaseModel):
    task_id: str = ""
    context_id: str = ""
    artifact: Artifact
    append: bool = False
    last_chunk: bool = False
    metadata: dict[str, Any] | None = None
    # position of the artifact in the task (0.1 renders it as ``index``)
    index: int = 0

    @property
    def settles(self) -> bool:
        return False


class MessageEvent(BaseModel):
    """A direct agent reply (no task on the wire): the only event of its stream."""

    task_id: str = ""
    context_id: str = ""
    message: Message

    @property
    def settles(self) -> bool:
        return True


TaskEvent = StatusEvent | ArtifactEvent | MessageEvent


@dataclass(slots=True)
class LoggedEvent:
    """An event as stored in a task's log: ``id`` is per-task and strictly increasing (the SSE ``id:``).

    A plain dataclass, not a model: one is made per event on the hot path from values that are already
    validated (the event) or come from the log itself (the id), and pydantic's model_construct cost ~10 µs each."""

    id: int
    event: TaskEvent
