"""A2A v0.2/v0.3: slash method names, ``kind`` discriminators, lower-case enums, ``final`` on status events."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from a2a_server.dialects.base import (
    JSON,
    Dialect,
    SendRequest,
    TaskQuery,
    drop_none,
    truncate_history,
    validate,
)
from a2a_server.errors import PushNotSupported
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
    TaskStatus,
)


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class _File(_Wire):
    name: str | None = None
    mime_type: str | None = None
    bytes: str | None = None
    uri: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _File:
        if (self.bytes is None) == (self.uri is None):
            raise ValueError("a file needs exactly one of 'bytes' or 'uri'")
        return self


class _TextPart(_Wire):
    kind: Literal["text"]
    text: str
    metadata: dict[str, Any] | None = None


class _FilePart(_Wire):
    kind: Literal["file"]
    file: _File
    metadata: dict[str, Any] | None = None


class _DataPart(_Wire):
    kind: Literal["data"]
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None


_Part = Annotated[_TextPart | _FilePart | _DataPart, Field(discriminator="kind")]


class _Message(_Wire):
    kind: Literal["message"] = "message"
    message_id: str = Field(min_length=1)
    role: Literal["user", "agent"]
    parts: list[_Part] = Field(min_length=1)
    task_id: str | None = None
    context_id: str | None = None
    metadata: dict[str, Any] | None = None
    reference_task_ids: list[str] | None = None
    extensions: list[str] | None = None


class _Config(_Wire):
    accepted_output_modes: list[str] | None = None
    blocking: bool | None = None
    history_length: int | None = Field(default=None, ge=0)
    push_notification_config: dict[str, Any] | None = None


class _SendParams(_Wire):
    message: _Message
    configuration: _Config | None = None
    metadata: dict[str, Any] | None = None


class _TaskQuery(_Wire):
    id: str = Field(min_length=1)
    history_length: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] | None = None


def _part_in(p: _TextPart | _FilePart | _DataPart) -> Part:
    if isinstance(p, _TextPart):
        return Part(kind="text", text=p.text, metadata=p.metadata)
    if isinstance(p, _FilePart):
        f = p.file
        return Part(kind="file", raw=f.bytes, url=f.uri, name=f.name, media_type=f.mime_type, metadata=p.metadata)
    return Part(kind="data", data=p.data, metadata=p.metadata)


def message_in(m: _Message) -> Message:
    return Message(
        message_id=m.message_id,
        role=Role(m.role),
        parts=[_part_in(p) for p in m.parts],
        context_id=m.context_id,
        task_id=m.task_id,
        metadata=m.metadata,
        reference_task_ids=m.reference_task_ids,
        extensions=m.extensions,
    )


def part_out(p: Part) -> JSON:
    if p.kind == "text":
        out: JSON = {"kind": "text", "text": p.text or ""}
    elif p.kind == "file":
        out = {
            "kind": "file",
            "file": drop_none({"name": p.name, "mimeType": p.media_type, "bytes": p.raw, "uri": p.url}),
        }
    else:
        out = {"kind": "data", "data": p.data}
    if p.metadata:
        out["metadata"] = p.metadata
    return out


def artifact_out(a: Artifact) -> JSON:
    return drop_none(
        {
            "artifactId": a.artifact_id,
            "name": a.name,
            "description": a.description,
            "parts": [part_out(p) for p in a.parts],
            "metadata": a.metadata,
            "extensions": a.extensions,
        }
    )


class V03(Dialect):
    version = "0.3"

    def parse_send(self, params: Any) -> SendRequest:
        p = validate(_SendParams, params)
        message = message_in(p.message)
        metadata = {**(p.metadata or {}), **(message.metadata or {})}
        config = p.configuration or _Config()
        if config.push_notification_config is not None:
            raise PushNotSupported()
        return SendRequest(
            message=message,
            task_id=message.task_id,
            context_id=message.context_id,
            skill=metadata.get("skill"),
            metadata=metadata,
            blocking=config.blocking is not False,
            history_length=config.history_length,
        )

    def parse_task_query(self, params: Any) -> TaskQuery:
        q = validate(_TaskQuery, params)
        return TaskQuery(id=q.id, history_length=q.history_length)

    def status(self, s: TaskStatus) -> JSON:
        out: JSON = {"state": s.state.value, "timestamp": s.timestamp}
        if s.message is not None:
            out["message"] = self.message(s.message)
        return out

    def message(self, m: Message) -> JSON:
        return drop_none(
            {
                "kind": "message",
                "messageId": m.message_id,
                "role": m.role.value,
                "parts": [part_out(p) for p in m.parts],
                "taskId": m.task_id,
                "contextId": m.context_id,
                "metadata": m.metadata,
                "referenceTaskIds": m.reference_task_ids,
                "extensions": m.extensions,
            }
        )

    def task(self, task: Task, history_length: int | None = None) -> JSON:
        out: JSON = {
            "kind": "task",
            "id": task.id,
            "contextId": task.context_id,
            "status": self.status(task.status),
            "artifacts": [artifact_out(a) for a in task.artifacts],
            "history": [self.message(m) for m in truncate_history(task.history, history_length)],
        }
        if task.metadata:
            out["metadata"] = task.metadata
        return out

    def event(self, event: TaskEvent) -> JSON:
        if isinstance(event, StatusEvent):
            return drop_none(
                {
                    "kind": "status-update",
                    "taskId": event.task_id,
                    "contextId": event.context_id,
                    "status": self.status(event.status),
                    "final": event.settles,
                    "metadata": event.metadata,
                }
            )
        if isinstance(event, ArtifactEvent):
            return drop_none(
                {
                    "kind": "artifact-update",
                    "taskId": event.task_id,
                    "contextId": event.context_id,
                    "artifact": artifact_out(event.artifact),
                    "append": event.append,
                    "lastChunk": event.last_chunk,
                    "metadata": event.metadata,
                }
            )
        assert isinstance(event, MessageEvent)
        return self.message(event.message)

    def send_result(self, task: Task, reply: Message | None, history_length: int | None) -> JSON:
        return self.message(reply) if reply is not None else self.task(task, history_length)

    def stream_item(self, item: Task | LoggedEvent) -> JSON:
        return self.task(item) if isinstance(item, Task) else self.event(item.event)


DIALECT = V03()
