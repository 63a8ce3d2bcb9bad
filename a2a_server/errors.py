"""A2A errors as raised inside the server; dialects render them for the caller's generation.

JsonRpcError (jsonrpcserver)
└── A2AError                     code + message + 1.0 reason
    ├── InvalidParams            -32602
    ├── TaskNotFound             -32001
    ├── TaskNotCancelable        -32002
    ├── PushNotSupported         -32003
    ├── UnsupportedOperation     -32004
    ├── ExtendedCardNotConfigured -32007
    └── VersionNotSupported      -32009
"""

from __future__ import annotations

from typing import Any

from jsonrpcserver.exceptions import JsonRpcError

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


class A2AError(JsonRpcError):
    code_value = INTERNAL_ERROR

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(self.code_value, message, details)
        self.details = details


class InvalidRequest(A2AError):
    code_value = INVALID_REQUEST


class InvalidParams(A2AError):
    code_value = INVALID_PARAMS


class MethodNotFound(A2AError):
    code_value = METHOD_NOT_FOUND


class TaskNotFound(A2AError):
    code_value = -32001

    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task not found: {task_id}", {"taskId": task_id})


class TaskNotCancelable(A2AError):
    code_value = -32002


class PushNotSupported(A2AError):
    code_value = -32003

    def __init__(self) -> None:
        super().__init__("Push notifications are not supported by this agent (capabilities.pushNotifications is false)")


class UnsupportedOperation(A2AError):
    code_value = -32004


class ExtendedCardNotConfigured(A2AError):
    code_value = -32007

    def __init__(self) -> None:
        super().__init__("This agent has no extended agent card configured")


class VersionNotSupported(A2AError):
    code_value = -32009
