"""A2A errors as raised inside the server; each face renders them (JSON-RPC per dialect, OpenAI, REST).

Every error carries what a face needs, so that none reads the message text: the JSON-RPC ``code``, the
1.0 ``reason`` (ErrorInfo), the ``http_status`` a REST or OpenAI face answers with, the offending
``param`` when one parameter was wrong, and ``cause``, a finer machine-readable word where a face needs
one (``queue_full``, ``context_length_exceeded``, ``shutting_down``).

A2AError                          code    http
├── InvalidRequest                -32600  400
├── MethodNotFound                -32601  404
├── InvalidParams                 -32602  400
│   ├── ChannelNotFound                   404   a billing channel that is not there (or another caller's)
│   └── ChannelClosed                     409   a closed or expired billing channel
├── TaskNotFound                  -32001  404
├── TaskNotCancelable             -32002  409
├── PushNotSupported              -32003  400
├── UnsupportedOperation          -32004  400
│   ├── TaskBusy                          409   a message for a task that is still running
│   └── ShuttingDown                      503
├── ExtendedCardNotConfigured     -32007  400
├── VersionNotSupported           -32009  400
└── StoreUnavailable              -32603  503   the shared store (Redis) is unreachable; cause=store_unavailable
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# 1.0 ErrorInfo.reason for each code (spec 1.0 §9.5); also used for the generic JSON-RPC codes.
REASONS: dict[int, str] = {
    PARSE_ERROR: "PARSE_ERROR",
    INVALID_REQUEST: "INVALID_REQUEST",
    METHOD_NOT_FOUND: "METHOD_NOT_FOUND",
    INVALID_PARAMS: "INVALID_PARAMS",
    INTERNAL_ERROR: "INTERNAL_ERROR",
    -32001: "TASK_NOT_FOUND",
    -32002: "TASK_NOT_CANCELABLE",
    -32003: "PUSH_NOTIFICATION_NOT_SUPPORTED",
    -32004: "UNSUPPORTED_OPERATION",
    -32005: "CONTENT_TYPE_NOT_SUPPORTED",
    -32006: "INVALID_AGENT_RESPONSE",
    -32007: "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
    -32008: "EXTENSION_SUPPORT_REQUIRED",
    -32009: "VERSION_NOT_SUPPORTED",
}


class A2AError(Exception):
    code_value = INTERNAL_ERROR
    http_status = 500

    def __init__(
        self, message: str, details: dict[str, Any] | None = None, *, param: str | None = None, cause: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = self.code_value
        self.message = message
        self.details = details
        self.param = param
        self.cause = cause

    @property
    def reason(self) -> str:
        return REASONS.get(self.code, "INTERNAL_ERROR")


class InvalidRequest(A2AError):
    code_value = INVALID_REQUEST
    http_status = 400


class InvalidParams(A2AError):
    code_value = INVALID_PARAMS
    http_status = 400


class ChannelNotFound(InvalidParams):
    http_status = 404

    def __init__(self, channel_id: str, param: str) -> None:
        super().__init__(f"Invalid params: {param}: no billing channel {channel_id!r}", {"channelId": channel_id},
                         param=param, cause="channel_not_found")  # fmt: skip


class ChannelClosed(InvalidParams):
    http_status = 409


class MethodNotFound(A2AError):
    code_value = METHOD_NOT_FOUND
    http_status = 404


class TaskNotFound(A2AError):
    code_value = -32001
    http_status = 404

    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task not found: {task_id}", {"taskId": task_id}, param="id")


class TaskNotCancelable(A2AError):
    code_value = -32002
    http_status = 409


class PushNotSupported(A2AError):
    code_value = -32003
    http_status = 400

    def __init__(self) -> None:
        super().__init__("Push notifications are not supported by this agent (capabilities.pushNotifications is false)")


class UnsupportedOperation(A2AError):
    code_value = -32004
    http_status = 400


class TaskBusy(UnsupportedOperation):
    http_status = 409


class ShuttingDown(UnsupportedOperation):
    http_status = 503

    def __init__(self) -> None:
        super().__init__("The server is shutting down and takes no new tasks", cause="shutting_down")


class ExtendedCardNotConfigured(A2AError):
    code_value = -32007
    http_status = 400

    def __init__(self) -> None:
        super().__init__("This agent has no extended agent card configured")


class VersionNotSupported(A2AError):
    code_value = -32009
    http_status = 400


# ------------------------------------------------------------------ callers (keys, scopes, limits)
# A2A defines no codes for these (the spec leaves authentication to HTTP): ours, in the server-defined range.
UNAUTHENTICATED = -32040
PERMISSION_DENIED = -32041
RESOURCE_EXHAUSTED = -32042
REASONS.update({UNAUTHENTICATED: "UNAUTHENTICATED", PERMISSION_DENIED: "PERMISSION_DENIED",
                RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED"})  # fmt: skip


class Unauthenticated(A2AError):
    """No key, or a key this server does not know (HTTP 401 + ``WWW-Authenticate: Bearer``)."""

    code_value = UNAUTHENTICATED
    http_status = 401


class PermissionDenied(A2AError):
    """A known key without the scope the operation needs (HTTP 403)."""

    code_value = PERMISSION_DENIED
    http_status = 403


class TooManyRequests(A2AError):
    """A limit of the caller's was reached (HTTP 429 + ``Retry-After``: ``retry_after`` seconds)."""

    code_value = RESOURCE_EXHAUSTED
    http_status = 429

    def __init__(self, message: str, retry_after: float, *, cause: str) -> None:
        super().__init__(message, {"retryAfterSeconds": max(1, round(retry_after))}, cause=cause)
        self.retry_after = max(1, round(retry_after))


class StoreUnavailable(A2AError):
    """The shared task store (Redis) cannot be reached right now: HTTP 503, JSON-RPC -32603 with the cause in the
    message; the caller may retry (the backend reconnects by itself)."""

    http_status = 503
