"""A2A v1.0: PascalCase methods, ProtoJSON (``TASK_STATE_*``, ``ROLE_*``), oneof parts and results.

There is no ``kind`` and no ``final``: a stream is a Task followed by updates (or exactly one Message),
each wrapped in a ``StreamResponse``; error ``data`` is an array of ``google.rpc.ErrorInfo``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from a2a_server.dialects.base import (
    JSON,
    Dialect,
    SendRequest,
    TaskQuery,
    Wire,
    artifact_json,
    drop_none,
    error_info,
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

_ROLE_OUT = {Role.USER: "ROLE_USER", Role.AGENT: "ROLE_AGENT"}
_ROLE_IN = {"ROLE_USER": Role.USER, "ROLE_AGENT": Role.AGENT}
STATE_OUT = {s: "TASK_STATE_" + s.value.upper().replace("-", "_") for s in TaskState}
STATE_IN = {v: k for k, v in STATE_OUT.items()}


class _Part(Wire):
    text: str | None = None
    raw: str | None = None
    url: str | None = None
    data: Any = None
    filename: str | None = None
    media_type: str | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _oneof(self) -> _Part:
        chosen = [k for k in ("text", "raw", "url", "data") if k in self.model_fields_set]
        if len(chosen) != 1:
            raise ValueError(f"a part needs exactly one of text, raw, url or data (got {chosen or 'none'})")
        return self


class _Message(Wire):
    message_id: str = Field(min_length=1)
    role: Literal["ROLE_USER", "ROLE_AGENT"]
    parts: list[_Part] = Field(min_length=1)
    task_id: str | None = None
    context_id: str | None = None
    metadata: dict[str, Any] | None = None
    reference_task_ids: list[str] | None = None
    extensions: list[str] | None = None


class _Config(Wire):
    accepted_output_modes: list[str] | None = None
    task_push_notification_config: dict[str, Any] | None = None
    history_length: int | None = Field(default=None, ge=0)
    return_immediately: bool = False


class _SendParams(Wire):
    tenant: str | None = None
    message: _Message
    configuration: _Config | None = None
    metadata: dict[str, Any] | None = None


class _TaskQuery(Wire):
    id: str = Field(min_length=1)
    history_length: int | None = Field(default=None, ge=0)
    tenant: str | None = None


class ListQuery(Wire):
    tenant: str | None = None
    context_id: str | None = None
    status: str | None = None
    page_size: int = Field(default=50, ge=1, le=100)
    page_token: str | None = None
    history_length: int | None = Field(default=None, ge=0)
    status_timestamp_after: str | None = None
    include_artifacts: bool = False

    @model_validator(mode="after")
    def _known_state(self) -> ListQuery:
        if self.status not in (None, "TASK_STATE_UNSPECIFIED") and self.status not in STATE_IN:
            raise ValueError(f"status must be one of {', '.join(STATE_IN)}")
        return self

    @property
    def state(self) -> TaskState | None:
        return STATE_IN.get(self.status or "")


def _part_in(p: _Part) -> Part:
    meta = p.metadata
    if "text" in p.model_fields_set:
        return Part(kind="text", text=p.text, metadata=meta, media_type=p.media_type)
    if "data" in p.model_fields_set:
        return Part(kind="data", data=p.data, metadata=meta, media_type=p.media_type)
    return Part(kind="file", raw=p.raw, url=p.url, name=p.filename, media_type=p.media_type, metadata=meta)


def part_out(p: Part) -> JSON:
    if p.kind == "text":
        out: JSON = {"text": p.text or ""}
    elif p.kind == "data":
        out = {"data": p.data}
    elif p.raw is not None:
        out = {"raw": p.raw}
    else:
        out = {"url": p.url}
    if p.name:
        out["filename"] = p.name
    if p.media_type:
        out["mediaType"] = p.media_type
    if p.metadata:
        out["metadata"] = p.metadata
    return out


def artifact_out(a: Artifact) -> JSON:
    return artifact_json(a, part_out)


class V10(Dialect):
    version = "1.0"

    def parse_send(self, params: Any) -> SendRequest:
        p = validate(_SendParams, params)
        m = p.message
        message = Message(
            message_id=m.message_id,
            role=_ROLE_IN[m.role],
            parts=[_part_in(x) for x in m.parts],
            context_id=m.context_id,
            task_id=m.task_id,
            metadata=m.metadata,
            reference_task_ids=m.reference_task_ids,
            extensions=m.extensions,
        )
        config = p.configuration or _Config()
        push = None
        if config.task_push_notification_config is not None:
            push = PUSH["1.0"].parse_in_send(
                config.task_push_notification_config, "configuration.taskPushNotificationConfig"
            )
        metadata = {**(p.metadata or {}), **(m.metadata or {})}
        return SendRequest(
            message=message,
            task_id=m.task_id,
            context_id=m.context_id,
            skill=metadata.get("skill"),
            metadata=metadata,
            blocking=not config.return_immediately,
            history_length=config.history_length,
            push=push,
        )

    def parse_task_query(self, params: Any) -> TaskQuery:
        q = validate(_TaskQuery, params)
        return TaskQuery(id=q.id, history_length=q.history_length)

    def status(self, s: TaskStatus) -> JSON:
        out: JSON = {"state": STATE_OUT[s.state], "timestamp": s.timestamp}
        if s.message is not None:
            out["message"] = self.message(s.message)
        return out

    def message(self, m: Message) -> JSON:
        return drop_none(
            {
                "messageId": m.message_id,
                "contextId": m.context_id,
                "taskId": m.task_id,
                "role": _ROLE_OUT[m.role],
                "parts": [part_out(p) for p in m.parts],
                "metadata": m.metadata,
                "extensions": m.extensions,
                "referenceTaskIds": m.reference_task_ids,
            }
        )

    def task(self, task: Task, history_length: int | None = None, artifacts: bool = True) -> JSON:
        out: JSON = {"id": task.id, "contextId": task.context_id, "status": self.status(task.status)}
        if artifacts and task.artifacts:
            out["artifacts"] = [artifact_out(a) for a in task.artifacts]
        history = truncate_history(task.history, history_length)
        if history:
            out["history"] = [self.message(m) for m in history]
        if task.metadata:
            out["metadata"] = task.metadata
        return out

    def event(self, event: TaskEvent) -> JSON:
        if isinstance(event, StatusEvent):
            return {
                "statusUpdate": drop_none(
                    {
                        "taskId": event.task_id,
                        "contextId": event.context_id,
                        "status": self.status(event.status),
                        "metadata": event.metadata,
                    }
                )
            }
        if isinstance(event, ArtifactEvent):
            update: JSON = {
                "taskId": event.task_id,
                "contextId": event.context_id,
                "artifact": artifact_out(event.artifact),
            }
            if event.append:
                update["append"] = True
            if event.last_chunk:
                update["lastChunk"] = True
            if event.metadata:
                update["metadata"] = event.metadata
            return {"artifactUpdate": update}
        assert isinstance(event, MessageEvent)
        return {"message": self.message(event.message)}

    def send_result(self, task: Task, reply: Message | None, history_length: int | None) -> JSON:
        if reply is not None:
            return {"message": self.message(reply)}
        return {"task": self.task(task, history_length)}

    def stream_item(self, item: Task | LoggedEvent) -> JSON:
        return {"task": self.task(item)} if isinstance(item, Task) else self.event(item.event)

    def error_data(self, code: int, details: dict[str, Any] | None) -> Any:
        return error_info(code, details)


DIALECT = V10()
