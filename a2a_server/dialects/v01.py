"""A2A v0.1: ``tasks/send``, client-chosen task ids, ``sessionId``, ``type`` discriminators.

0.1 has no ``rejected`` or ``auth-required`` state: they render as ``failed`` and ``input-required``.
Artifacts carry ``index``/``append``/``lastChunk`` themselves; there is no direct-message result,
so a reply renders as the completed task whose status message is the reply.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from a2a_server.dialects.base import (
    JSON,
    Dialect,
    SendRequest,
    TaskQuery,
    Wire,
    WireFile,
    drop_none,
    part_from_0x,
    part_to_0x,
    truncate_history,
    validate,
)
from a2a_server.dialects.push import PUSH
from a2a_server.model import (
    Artifact,
    ArtifactEvent,
    LoggedEvent,
    Message,
    MessageEvent,
    Part,
    Role,
    StatusEvent,
    Task,
    TaskEvent,
    TaskState,
    TaskStatus,
)

_STATE = {TaskState.REJECTED: "failed", TaskState.AUTH_REQUIRED: "input-required"}


class _TextPart(Wire):
    type: Literal["text"]
    text: str
    metadata: dict[str, Any] | None = None


class _FilePart(Wire):
    type: Literal["file"]
    file: WireFile
    metadata: dict[str, Any] | None = None


class _DataPart(Wire):
    type: Literal["data"]
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None


_Part = Annotated[_TextPart | _FilePart | _DataPart, Field(discriminator="type")]


class _Message(Wire):
    role: Literal["user", "agent"]
    parts: list[_Part] = Field(min_length=1)
    metadata: dict[str, Any] | None = None


class _SendParams(Wire):
    id: str = Field(min_length=1)
    session_id: str | None = None
    message: _Message
    push_notification: dict[str, Any] | None = None
    history_length: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] | None = None


class _ShortTask(BaseModel):
    """The seed's short form: ``{"task": {"skill": "inference", "input": "..."}}``."""

    model_config = ConfigDict(extra="ignore")
    skill: str | None = None
    input: str
    id: str | None = None
    metadata: dict[str, Any] | None = None


class _ShortParams(BaseModel):
    task: _ShortTask


class _TaskQuery(Wire):
    id: str = Field(min_length=1)
    history_length: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] | None = None


def part_out(p: Part) -> JSON:
    return part_to_0x(p, "type")


def artifact_out(a: Artifact, index: int, append: bool | None = None, last_chunk: bool | None = None) -> JSON:
    return drop_none(
        {
            "name": a.name,
            "description": a.description,
            "parts": [part_out(p) for p in a.parts],
            "index": index,
            "append": append,
            "lastChunk": last_chunk,
            "metadata": a.metadata,
        }
    )


class V01(Dialect):
    version = "0.1"

    def parse_send(self, params: Any) -> SendRequest:
        if isinstance(params, dict) and "task" in params and "message" not in params:
            short = validate(_ShortParams, params).task
            metadata = dict(short.metadata or {})
            return SendRequest(
                message=Message(role=Role.USER, parts=[Part.of_text(short.input)]),
                task_id=short.id,
                skill=short.skill or metadata.get("skill"),
                metadata=metadata,
                client_task_id=short.id is not None,
            )
        p = validate(_SendParams, params)
        push = None
        if p.push_notification is not None:
            push = PUSH["0.1"].parse_in_send(p.push_notification, "pushNotification")
        metadata = {**(p.metadata or {}), **(p.message.metadata or {})}
        message = Message(
            role=Role(p.message.role), parts=[part_from_0x(x) for x in p.message.parts], metadata=p.message.metadata
        )
        return SendRequest(
            message=message,
            task_id=p.id,
            context_id=p.session_id,
            skill=metadata.get("skill"),
            metadata=metadata,
            history_length=p.history_length,
            client_task_id=True,
            push=push,
        )

    def parse_task_query(self, params: Any) -> TaskQuery:
        q = validate(_TaskQuery, params)
        return TaskQuery(id=q.id, history_length=q.history_length)

    def status(self, s: TaskStatus) -> JSON:
        out: JSON = {"state": _STATE.get(s.state, s.state.value), "timestamp": s.timestamp}
        if s.message is not None:
            out["message"] = self.message(s.message)
        return out

    def message(self, m: Message) -> JSON:
        return drop_none({"role": m.role.value, "parts": [part_out(p) for p in m.parts], "metadata": m.metadata})

    def task(self, task: Task, history_length: int | None = None) -> JSON:
        out: JSON = {
            "id": task.id,
            "sessionId": task.context_id,
            "status": self.status(task.status),
            "artifacts": [artifact_out(a, i) for i, a in enumerate(task.artifacts)],
            "history": [self.message(m) for m in truncate_history(task.history, history_length)],
        }
        if task.metadata:
            out["metadata"] = task.metadata
        return out

    def event(self, event: TaskEvent) -> JSON:
        if isinstance(event, StatusEvent):
            return drop_none(
                {
                    "id": event.task_id,
                    "status": self.status(event.status),
                    "final": event.settles,
                    "metadata": event.metadata,
                }
            )
        if isinstance(event, ArtifactEvent):
            artifact = artifact_out(event.artifact, event.index, event.append, event.last_chunk)
            return {"id": event.task_id, "artifact": artifact}
        assert isinstance(event, MessageEvent)
        status = TaskStatus(state=TaskState.COMPLETED, message=event.message)
        return {"id": event.task_id, "status": self.status(status), "final": True}

    def send_result(self, task: Task, reply: Message | None, history_length: int | None) -> JSON:
        return self.task(task, history_length)

    def stream_item(self, item: Task | LoggedEvent) -> JSON:
        if isinstance(item, Task):
            return {"id": item.id, "status": self.status(item.status), "final": item.status.state.settled}
        return self.event(item.event)

    def stream_starts_with_task(self) -> bool:
        return False


DIALECT = V01()
