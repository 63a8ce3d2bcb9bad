"""A2A v0.2/v0.3: slash method names, ``kind`` discriminators, lower-case enums, ``final`` on status events."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from a2a_server.dialects.base import (
    JSON,
    Dialect,
    SendRequest,
    TaskQuery,
    Wire,
    WireFile,
    artifact_json,
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
    TaskStatus,
)


class _TextPart(Wire):
    kind: Literal["text"]
    text: str
    metadata: dict[str, Any] | None = None


class _FilePart(Wire):
    kind: Literal["file"]
    file: WireFile
    metadata: dict[str, Any] | None = None


class _DataPart(Wire):
    kind: Literal["data"]
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None


_Part = Annotated[_TextPart | _FilePart | _DataPart, Field(discriminator="kind")]


class _Message(Wire):
    kind: Literal["message"] = "message"
    message_id: str = Field(min_length=1)
    role: Literal["user", "agent"]
    parts: list[_Part] = Field(min_length=1)
    task_id: str | None = None
    context_id: str | None = None
    metadata: dict[str, Any] | None = None
    reference_task_ids: list[str] | None = None
    extensions: list[str] | None = None


class _Config(Wire):
    accepted_output_modes: list[str] | None = None
    blocking: bool | None = None
    history_length: int | None = Field(default=None, ge=0)
    push_notification_config: dict[str, Any] | None = None


class _SendParams(Wire):
    message: _Message
    configuration: _Config | None = None
    metadata: dict[str, Any] | None = None


class _TaskQuery(Wire):
    id: str = Field(min_length=1)
    history_length: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] | None = None


def message_in(m: _Message) -> Message:
    return Message(
        message_id=m.message_id,
        role=Role(m.role),
        parts=[part_from_0x(p) for p in m.parts],
        context_id=m.context_id,
        task_id=m.task_id,
        metadata=m.metadata,
        reference_task_ids=m.reference_task_ids,
        extensions=m.extensions,
    )


def part_out(p: Part) -> JSON:
    return part_to_0x(p, "kind")


def artifact_out(a: Artifact) -> JSON:
    return artifact_json(a, part_out)


class V03(Dialect):
    version = "0.3"

    def parse_send(self, params: Any) -> SendRequest:
        p = validate(_SendParams, params)
        message = message_in(p.message)
        metadata = {**(p.metadata or {}), **(message.metadata or {})}
        config = p.configuration or _Config()
        push = None
        if config.push_notification_config is not None:
            push = PUSH["0.3"].parse_in_send(config.push_notification_config, "configuration.pushNotificationConfig")
        return SendRequest(
            message=message,
            task_id=message.task_id,
            context_id=message.context_id,
            skill=metadata.get("skill"),
            metadata=metadata,
            blocking=config.blocking is not False,
            history_length=config.history_length,
            push=push,
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
