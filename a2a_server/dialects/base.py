"""What every dialect provides, and the canonical requests it parses into."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from a2a_server.errors import REASONS, InvalidParams
from a2a_server.model import Artifact, LoggedEvent, Message, Part, Task, TaskEvent

JSON = dict[str, Any]
M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True)
class SendRequest:
    """A send/stream request in canonical form."""

    message: Message
    task_id: str | None = None
    context_id: str | None = None
    skill: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    blocking: bool = True
    history_length: int | None = None
    # v0.1 clients choose the task id; later generations let the server choose.
    client_task_id: bool = False
    # a push notification config given with the message (0.1 pushNotification, 0.3 pushNotificationConfig, 1.0
    # taskPushNotificationConfig)
    push: PushConfigIn | None = None


@dataclass(slots=True)
class PushConfigIn:
    """A push notification config as a client gave it (``dialects.push`` parses it); ``field`` is where its url
    sat in the params, so that a refused URL names it."""

    url: str
    field: str
    id: str | None = None
    token: str | None = None
    auth_scheme: str | None = None
    auth_credentials: str | None = None
    artifacts: bool = False
    secret: str | None = None


@dataclass(slots=True)
class TaskQuery:
    id: str
    history_length: int | None = None


class Wire(BaseModel):
    """Inbound wire shapes: camelCase on the wire, unknown keys ignored (newer peers send more)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class WireFile(Wire):
    """The file content of a 0.1/0.3 file part."""

    name: str | None = None
    mime_type: str | None = None
    bytes: str | None = None
    uri: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WireFile:
        if (self.bytes is None) == (self.uri is None):
            raise ValueError("a file needs exactly one of 'bytes' or 'uri'")
        return self


def part_from_0x(p: Any) -> Part:
    """A validated 0.1/0.3 part (text, file or data; the two differ only in their discriminator key)."""
    if hasattr(p, "file"):
        f: WireFile = p.file
        return Part(kind="file", raw=f.bytes, url=f.uri, name=f.name, media_type=f.mime_type, metadata=p.metadata)
    if hasattr(p, "data"):
        return Part(kind="data", data=p.data, metadata=p.metadata)
    return Part(kind="text", text=p.text, metadata=p.metadata)


def part_to_0x(p: Part, discriminator: str) -> JSON:
    """A part in 0.1 (``discriminator="type"``) or 0.3 (``"kind"``) shape."""
    if p.kind == "text":
        out: JSON = {discriminator: "text", "text": p.text or ""}
    elif p.kind == "file":
        file = drop_none({"name": p.name, "mimeType": p.media_type, "bytes": p.raw, "uri": p.url})
        out = {discriminator: "file", "file": file}
    else:
        out = {discriminator: "data", "data": p.data}
    if p.metadata:
        out["metadata"] = p.metadata
    return out


def artifact_json(a: Artifact, part_out: Callable[[Part], JSON]) -> JSON:
    """An artifact in 0.3 or 1.0 shape (the same keys; only the parts differ)."""
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


def validate(model: type[M], params: Any) -> M:
    """Validate ``params`` into ``model``; a failure names every offending field."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidParams(f"Invalid params: {problems}") from None


def drop_none(d: JSON) -> JSON:
    return {k: v for k, v in d.items() if v is not None}


def truncate_history(history: list[Message], history_length: int | None) -> list[Message]:
    if history_length is None:
        return history
    return history[-history_length:] if history_length > 0 else []


class Dialect(ABC):
    version: str

    @abstractmethod
    def parse_send(self, params: Any) -> SendRequest: ...

    @abstractmethod
    def parse_task_query(self, params: Any) -> TaskQuery: ...

    @abstractmethod
    def task(self, task: Task, history_length: int | None = None) -> JSON: ...

    @abstractmethod
    def message(self, message: Message) -> JSON: ...

    @abstractmethod
    def event(self, event: TaskEvent) -> JSON: ...

    @abstractmethod
    def send_result(self, task: Task, reply: Message | None, history_length: int | None) -> JSON:
        """The result of a non-streaming send: the task, or the direct reply where the dialect has one."""

    @abstractmethod
    def stream_item(self, item: Task | LoggedEvent) -> JSON:
        """The ``result`` of one SSE frame."""

    def stream_starts_with_task(self) -> bool:
        """Whether a new stream opens with a Task snapshot (0.3 and 1.0) or with the first status (0.1)."""
        return True

    def error_data(self, code: int, details: dict[str, Any] | None) -> Any:
        return details

    def error(self, code: int, message: str, details: dict[str, Any] | None = None) -> JSON:
        err: JSON = {"code": code, "message": message}
        data = self.error_data(code, details)
        if data is not None:
            err["data"] = data
        return err


def error_info(code: int, details: dict[str, Any] | None) -> list[JSON]:
    """The 1.0 error ``data``: an array holding one google.rpc.ErrorInfo."""
    info: JSON = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": REASONS.get(code, "UNKNOWN"),
        "domain": "a2a-protocol.org",
    }
    if details:
        info["metadata"] = {k: str(v) for k, v in details.items()}
    return [info]
