"""THE table of wire methods: name → (dialect, operation, streaming), and the 1.0 HTTP+JSON routes onto them.

Adding a wire method is one row here and, for a new operation, one handler in ``operations.py``.
A REST route (``REST_ROUTES``) names the JSON-RPC method whose operation it runs, so both bindings share it.
A ``None`` dialect marks a name shared by 0.1 and 0.3 with different shapes (``tasks/get`` …):
the ``A2A-Version`` header picks the dialect, else the dialect the task was created in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from a2a_server.dialects import V01, V03, V10, Dialect


class Op(Enum):
    SEND = "send"
    STREAM = "stream"
    GET = "get"
    LIST = "list"
    CANCEL = "cancel"
    RESUBSCRIBE = "resubscribe"
    PUSH_SET = "push-set"
    PUSH_GET = "push-get"
    PUSH_LIST = "push-list"
    PUSH_DELETE = "push-delete"
    EXTENDED_CARD = "extended-card"
    # billing channels (the token-billing extension, issue 12)
    CHANNEL_OPEN = "channel-open"
    CHANNEL_GET = "channel-get"
    CHANNEL_LIST = "channel-list"
    CHANNEL_CLOSE = "channel-close"


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    dialect: Dialect | None
    op: Op

    @property
    def streaming(self) -> bool:
        return self.op in (Op.STREAM, Op.RESUBSCRIBE)

    @property
    def creates_task(self) -> bool:
        return self.op in (Op.SEND, Op.STREAM)


_ROWS: list[tuple[str, Dialect | None, Op]] = [
    # v0.1
    ("tasks/send", V01, Op.SEND),
    ("tasks/sendSubscribe", V01, Op.STREAM),
    ("tasks/pushNotification/set", V01, Op.PUSH_SET),
    ("tasks/pushNotification/get", V01, Op.PUSH_GET),
    # shared by v0.1 and v0.3
    ("tasks/get", None, Op.GET),
    ("tasks/cancel", None, Op.CANCEL),
    ("tasks/resubscribe", None, Op.RESUBSCRIBE),
    # v0.2 / v0.3
    ("message/send", V03, Op.SEND),
    ("message/stream", V03, Op.STREAM),
    ("tasks/pushNotificationConfig/set", V03, Op.PUSH_SET),
    ("tasks/pushNotificationConfig/get", V03, Op.PUSH_GET),
    ("tasks/pushNotificationConfig/list", V03, Op.PUSH_LIST),
    ("tasks/pushNotificationConfig/delete", V03, Op.PUSH_DELETE),
    ("agent/getAuthenticatedExtendedCard", V03, Op.EXTENDED_CARD),
    # v1.0
    ("SendMessage", V10, Op.SEND),
    ("SendStreamingMessage", V10, Op.STREAM),
    ("GetTask", V10, Op.GET),
    ("ListTasks", V10, Op.LIST),
    ("CancelTask", V10, Op.CANCEL),
    ("SubscribeToTask", V10, Op.RESUBSCRIBE),
    ("CreateTaskPushNotificationConfig", V10, Op.PUSH_SET),
    ("GetTaskPushNotificationConfig", V10, Op.PUSH_GET),
    ("ListTaskPushNotificationConfigs", V10, Op.PUSH_LIST),
    ("DeleteTaskPushNotificationConfig", V10, Op.PUSH_DELETE),
    ("GetExtendedAgentCard", V10, Op.EXTENDED_CARD),
    # billing channels (urn:a2a-server:ext:token-billing:v1): 0.x names shared by 0.1 and 0.3, then 1.0
    ("channels/open", None, Op.CHANNEL_OPEN),
    ("channels/get", None, Op.CHANNEL_GET),
    ("channels/list", None, Op.CHANNEL_LIST),
    ("channels/close", None, Op.CHANNEL_CLOSE),
    ("OpenChannel", V10, Op.CHANNEL_OPEN),
    ("GetChannel", V10, Op.CHANNEL_GET),
    ("ListChannels", V10, Op.CHANNEL_LIST),
    ("CloseChannel", V10, Op.CHANNEL_CLOSE),
]

METHODS: dict[str, MethodSpec] = {name: MethodSpec(name, dialect, op) for name, dialect, op in _ROWS}


@dataclass(frozen=True, slots=True)
class RestRoute:
    """One route of the 1.0 HTTP+JSON binding (A2A-PROTOCOL.md §5), relative to the binding's base URL."""

    http_method: str
    path: str  # Starlette syntax; ``{id}`` / ``{taskId}`` become params of the same name
    spec: MethodSpec


# order matters: the ``:verb`` forms before ``/tasks/{id}``, which would match them too
_REST_ROWS: list[tuple[str, str, str]] = [
    ("POST", "/message:send", "SendMessage"),
    ("POST", "/message:stream", "SendStreamingMessage"),
    ("POST", "/tasks/{id}:cancel", "CancelTask"),
    # GET in the proto, POST in the spec's table (A2A#1574): both
    ("GET", "/tasks/{id}:subscribe", "SubscribeToTask"),
    ("POST", "/tasks/{id}:subscribe", "SubscribeToTask"),
    ("POST", "/tasks/{taskId}/pushNotificationConfigs", "CreateTaskPushNotificationConfig"),
    ("GET", "/tasks/{taskId}/pushNotificationConfigs", "ListTaskPushNotificationConfigs"),
    ("GET", "/tasks/{taskId}/pushNotificationConfigs/{id}", "GetTaskPushNotificationConfig"),
    ("DELETE", "/tasks/{taskId}/pushNotificationConfigs/{id}", "DeleteTaskPushNotificationConfig"),
    ("GET", "/tasks/{id}", "GetTask"),
    ("GET", "/tasks", "ListTasks"),
    ("GET", "/extendedAgentCard", "GetExtendedAgentCard"),
    # billing channels: ``:close`` before ``/channels/{id}``
    ("POST", "/channels/{id}:close", "CloseChannel"),
    ("POST", "/channels", "OpenChannel"),
    ("GET", "/channels", "ListChannels"),
    ("GET", "/channels/{id}", "GetChannel"),
]

REST_ROUTES: list[RestRoute] = [RestRoute(verb, path, METHODS[name]) for verb, path, name in _REST_ROWS]
