"""What a client puts on the wire in each A2A generation, and what it reads back.

Requests are built per dialect (``V01``, ``V03``, ``V10``): method names, message shape, the
``A2A-Version`` header. Results are read by one tolerant function, :func:`parse_result`, that sniffs
the shape instead of trusting the dialect asked for: a server may answer in the generation a task
was created in (ours does, for a 0.3 ``tasks/get`` of a 0.1 task), and a client meant for any A2A
server should print what it got rather than fail on it.

This module is independent of ``a2a_server.dialects`` on purpose: the server's renderers describe
what *we* send; this describes what any peer may send.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

TERMINAL = frozenset({"completed", "canceled", "failed", "rejected"})
INTERRUPTED = frozenset({"input-required", "auth-required"})


@dataclass(frozen=True)
class Chunk:
    """Text of one artifact: a piece to append, or (``append=False``) the artifact's whole text so far."""

    key: str
    text: str
    append: bool


@dataclass
class Update:
    """One JSON-RPC result of any generation, reduced to what the CLI shows."""

    task_id: str | None = None
    state: str | None = None  # 0.3 spelling: "completed", "input-required", ...
    message: str | None = None  # text of the status message, or of a direct reply
    chunks: list[Chunk] = field(default_factory=list)
    usage: JSON | None = None
    reply: bool = False  # a direct Message instead of a task
    snapshot: bool = False  # a whole Task: its artifacts replace what was shown

    @property
    def final(self) -> bool:
        """The last event of a stream: a reply, or a terminal or interrupted state."""
        return self.reply or self.state in TERMINAL or self.state in INTERRUPTED


def _send01(text: str, message_id: str, stream: bool) -> JSON:
    # 0.1 has no messageId and lets the client choose the task id
    return {"id": uuid.uuid4().hex, "message": {"role": "user", "parts": [{"type": "text", "text": text}]}}


def _send03(text: str, message_id: str, stream: bool) -> JSON:
    parts = [{"kind": "text", "text": text}]
    params: JSON = {"message": {"kind": "message", "messageId": message_id, "role": "user", "parts": parts}}
    if not stream:
        params["configuration"] = {"blocking": True}
    return params


def _send10(text: str, message_id: str, stream: bool) -> JSON:
    # 1.0 blocks by default (returnImmediately: false)
    return {"message": {"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": text}]}}


@dataclass(frozen=True)
class Dialect:
    """How to ask, in one generation. ``methods`` maps send/stream/get/cancel/subscribe to wire names."""

    version: str
    methods: dict[str, str]
    headers: dict[str, str]
    _send: Callable[[str, str, bool], JSON]

    def send_params(self, text: str, *, message_id: str | None, metadata: JSON, stream: bool) -> JSON:
        params = self._send(text, message_id or uuid.uuid4().hex, stream)
        if metadata:
            params["metadata"] = metadata
        return params

    def task_params(self, task_id: str) -> JSON:
        return {"id": task_id}

    def endpoint(self, card: JSON) -> str | None:
        """The JSON-RPC URL a card advertises for this generation (None: the card names none).

        Order: a 1.0 ``supportedInterfaces`` entry of our major version, the 0.x ``url`` (when its
        transport is JSON-RPC), a 0.3 ``additionalInterfaces`` entry, any JSON-RPC interface.
        """
        interfaces = [i for i in _dicts(card.get("supportedInterfaces")) if i.get("protocolBinding") == "JSONRPC"]
        major = self.version.split(".")[0]
        candidates = [i.get("url") for i in interfaces if str(i.get("protocolVersion", "")).split(".")[0] == major]
        if card.get("preferredTransport", "JSONRPC") == "JSONRPC":
            candidates.append(card.get("url"))
        candidates += [
            i.get("url") for i in _dicts(card.get("additionalInterfaces")) if i.get("transport") == "JSONRPC"
        ]
        candidates += [i.get("url") for i in interfaces]
        return next((c for c in candidates if isinstance(c, str) and c), None)


_METHODS_0X = {"get": "tasks/get", "cancel": "tasks/cancel", "subscribe": "tasks/resubscribe"}
V01 = Dialect("0.1", {"send": "tasks/send", "stream": "tasks/sendSubscribe", **_METHODS_0X}, {}, _send01)
V03 = Dialect("0.3", {"send": "message/send", "stream": "message/stream", **_METHODS_0X}, {}, _send03)
V10 = Dialect(
    "1.0",
    {
        "send": "SendMessage",
        "stream": "SendStreamingMessage",
        "get": "GetTask",
        "cancel": "CancelTask",
        "subscribe": "SubscribeToTask",
    },
    {"A2A-Version": "1.0"},
    _send10,
)
DIALECTS = {d.version: d for d in (V01, V03, V10)}

_WRAPPERS = ("task", "message", "statusUpdate", "artifactUpdate")


def parse_result(result: Any) -> Update:
    """Any generation's send/stream/get/cancel result: Task, Message, status or artifact update."""
    if not isinstance(result, dict):
        raise ValueError(f"expected a JSON object as result, got {type(result).__name__}")
    if len(result) == 1 and next(iter(result)) in _WRAPPERS:  # 1.0 StreamResponse / SendMessageResponse
        wrapper, body = next(iter(result.items()))
        return _parse(_dict(body), kind=wrapper)
    kind = {"task": "task", "message": "message", "status-update": "statusUpdate", "artifact-update": "artifactUpdate"}
    return _parse(result, kind=kind.get(str(result.get("kind")), _sniff_v01(result)))


def _sniff_v01(obj: JSON) -> str:
    if "artifact" in obj:
        return "artifactUpdate"
    if "parts" in obj and "role" in obj:
        return "message"
    return "statusUpdate" if "final" in obj else "task"


def _parse(obj: JSON, *, kind: str) -> Update:
    task_id = obj.get("taskId") or obj.get("id")
    update = Update(task_id=task_id if isinstance(task_id, str) else None)
    if kind == "message":
        update.reply, update.message = True, parts_text(obj.get("parts"))
        return update
    if kind == "artifactUpdate":
        artifact = _dict(obj.get("artifact"))
        append = bool(obj.get("append", artifact.get("append", False)))
        update.chunks.append(Chunk(_artifact_key(artifact), parts_text(artifact.get("parts")), append))
        return update
    status = _dict(obj.get("status"))
    state = status.get("state")
    if isinstance(state, str):
        # 1.0 spells TaskState as the proto enum name; everything else uses the 0.3 spelling
        update.state = state.lower().removeprefix("task_state_").replace("_", "-")
    status_message = status.get("message")
    if isinstance(status_message, dict):
        update.message = parts_text(status_message.get("parts")) or None
    usage = _dict(obj.get("metadata")).get("usage") or _dict(status.get("metadata")).get("usage")
    update.usage = usage if isinstance(usage, dict) else None
    if kind == "task":
        update.snapshot = True
        update.chunks = [
            Chunk(_artifact_key(a, i), parts_text(a.get("parts")), False)
            for i, a in enumerate(_dicts(obj.get("artifacts")))
        ]
    return update


def parts_text(parts: Any) -> str:
    """The text of a list of parts of any generation; files and data are shown by name / as JSON."""
    out = []
    for part in _dicts(parts):
        if isinstance(part.get("text"), str):
            out.append(part["text"])
        elif "data" in part:
            out.append(json.dumps(part["data"]))
        else:
            file = _dict(part.get("file")) or part  # 0.x nests the file; 1.0 keeps it on the part
            name = file.get("name") or file.get("filename") or file.get("uri") or file.get("url") or "?"
            out.append(f"[file {name}]")
    return "".join(out)


def _artifact_key(artifact: JSON, position: int = 0) -> str:
    key = artifact.get("artifactId") or artifact.get("index", artifact.get("name", position))
    return str(key)


def _dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[JSON]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
