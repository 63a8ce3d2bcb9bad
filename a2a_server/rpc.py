"""JSON-RPC 2.0 envelopes: parse, check, dispatch through jsonrpcserver, render errors per dialect.

jsonrpcserver's own request validation answers every malformed request with the same "failed
schema validation" text and rejects a whole batch for one bad member; we check each envelope
ourselves so the error names what was wrong, and hand each valid member to jsonrpcserver's
dispatcher (method lookup, calling, Success/Error results, notifications).
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from jsonrpcserver import Error, Success
from jsonrpcserver.async_dispatcher import dispatch_request
from jsonrpcserver.dispatcher import create_request, to_response
from jsonrpcserver.response import ErrorResponse, SuccessResponse
from jsonrpcserver.sentinels import NODATA, NOID

from a2a_server.dialects import BY_VERSION, V03, V10, Dialect
from a2a_server.errors import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    A2AError,
    InvalidParams,
    MethodNotFound,
)
from a2a_server.methods import METHODS, MethodSpec
from a2a_server.operations import HANDLERS, Call, StreamPlan, check_params, wants_stream
from a2a_server.service import TaskService

log = logging.getLogger("a2a_server.rpc")

JSON = dict[str, Any]


class Streamed:
    """A single request whose answer is an SSE stream: a plan's events, or (``plan`` None) one error event."""

    def __init__(self, request_id: Any, plan: StreamPlan | None, error: JSON | None = None) -> None:
        self.request_id = request_id
        self.plan = plan
        self.error = error


def error_response(dialect: Dialect, code: int, message: str, request_id: Any = None, details: Any = None) -> JSON:
    return {"jsonrpc": "2.0", "error": dialect.error(code, message, details), "id": request_id}


def caller_dialect(call: Call) -> Dialect:
    # a caller that sends A2A-Version (even one we do not speak) follows 1.0's rules for errors
    return V10 if call.version == "1.0" or call.version_error is not None else V03


class Dispatcher:
    def __init__(self, service: TaskService) -> None:
        self.service = service
        self._methods: dict[str, Callable[..., Any]] = {name: self._bound(spec) for name, spec in METHODS.items()}

    def _bound(self, spec: MethodSpec) -> Callable[..., Any]:
        async def method(call: Call, *args: Any, **kwargs: Any) -> Any:
            return await self._call(spec, call, *args, **kwargs)

        # jsonrpcserver binds the params against inspect.signature(method) on every call: computed for a
        # partial it costs ~140 µs; a function's precomputed __signature__ is returned at once
        method.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
        return method

    async def handle(self, body: bytes, call: Call) -> JSON | list[JSON] | Streamed | None:
        """The answer to one HTTP body: a response, a batch of them, a stream, or None (notifications only)."""
        dialect = caller_dialect(call)
        try:
            payload = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            return error_response(dialect, PARSE_ERROR, f"Invalid JSON payload: {exc}")
        except RecursionError:
            return error_response(dialect, PARSE_ERROR, f"Invalid JSON payload: nested deeper than {MAX_DEPTH} levels")
        if _too_deep(payload, body):
            return error_response(
                dialect, INVALID_REQUEST, f"Invalid request: JSON nested deeper than {MAX_DEPTH} levels"
            )
        if isinstance(payload, list):
            if not payload:
                return error_response(dialect, INVALID_REQUEST, "Invalid request: an empty batch")
            answers = [await self._one(item, call, in_batch=True) for item in payload]
            batch = [a for a in answers if isinstance(a, dict)]
            return batch or None
        return await self._one(payload, call, in_batch=False)

    async def _one(self, item: Any, call: Call, in_batch: bool) -> JSON | Streamed | None:
        dialect = caller_dialect(call)
        problem = _envelope_problem(item)
        request_id = item.get("id") if isinstance(item, dict) and _valid_id(item.get("id")) else None
        if problem is not None:
            code, message = problem
            return error_response(dialect, code, message, request_id)
        if call.version_error is not None:
            return error_response(V10, VERSION_NOT_SUPPORTED, call.version_error, request_id)
        spec = METHODS.get(item["method"])
        if "id" not in item:
            # A2A defines no notifications: running one silently would start a task nobody can find. What is
            # wrong with it besides the id is said first (the 0.3 suite expects -32601 / -32602 for those)
            return self._without_id(spec, item, call)
        streams = spec is not None and (
            spec.streaming or (spec.creates_task and wants_stream(call, item.get("params")))
        )
        if in_batch and spec is not None and streams:
            return error_response(
                dialect, INVALID_REQUEST, f"Invalid request: {spec.name} streams and cannot be batched", request_id
            )
        # jsonrpcserver's per-request dispatch (method lookup, argument binding, calling, Either results);
        # its async_dispatch would also schema-check the envelope (done above, with better messages) and
        # wrap the single request in asyncio.gather (a task per request)
        request, result = await dispatch_request(self._methods, call, create_request(item))
        if request.id is NOID:
            return None
        answer = self._answer(to_response(request, result), dialect)
        if streams and isinstance(answer, dict) and "error" in answer and dialect is not V10 and not in_batch:
            # 0.x clients read a streaming method's answer as SSE, errors included (the 1.0 suite takes either)
            return Streamed(answer["id"], None, answer)
        return answer

    def _without_id(self, spec: MethodSpec | None, item: JSON, call: Call) -> JSON:
        dialect = caller_dialect(call)
        method = item["method"]
        if spec is None:
            return error_response(dialect, METHOD_NOT_FOUND, f"Method not found: {method!r} is not an A2A method")
        params = item.get("params")
        try:
            if not isinstance(params, dict):
                raise InvalidParams("Invalid params: params must be an object (by-name)")
            check_params(spec.op, spec.dialect or BY_VERSION.get(call.version or "0.3", V03), params)
        except A2AError as exc:
            return error_response(dialect, exc.code, exc.message, details=exc.details)
        message = f"Invalid request: 'id' is required (A2A has no notifications); {method!r} was not run"
        return error_response(dialect, INVALID_REQUEST, message)

    def _answer(self, response: Any, dialect: Dialect) -> JSON | Streamed:
        # an oslash Either: Right carries _value (success), Left carries _error
        value = getattr(response, "_value", None) or getattr(response, "_error", None)
        if isinstance(value, SuccessResponse):
            if isinstance(value.result, StreamPlan):
                return Streamed(value.id, value.result)
            return {"jsonrpc": "2.0", "result": value.result, "id": value.id}
        assert isinstance(value, ErrorResponse)
        data = None if value.data is NODATA else value.data
        if isinstance(data, str):
            # raised by jsonrpcserver itself (unknown method, uncaught exception): not yet in the caller's dialect
            if value.code == METHOD_NOT_FOUND:
                return error_response(dialect, value.code, f"Method not found: {data!r} is not an A2A method", value.id)
            return error_response(dialect, value.code, f"{value.message}: {data}", value.id)
        error: JSON = {"code": value.code, "message": value.message}
        if data is not None:
            error["data"] = data
        return {"jsonrpc": "2.0", "error": error, "id": value.id}

    async def _call(self, spec: MethodSpec, call: Call, *args: Any, **kwargs: Any) -> Any:
        dialect = caller_dialect(call)
        try:
            if args:
                raise InvalidParams("Invalid params: params must be an object (by-name), not an array")
            dialect = await self._dialect(spec, call, kwargs)
            started = time.perf_counter()
            result = await HANDLERS[spec.op](self.service, call, dialect, kwargs)
            self.service.metrics.latency_histogram(spec.name).observe(time.perf_counter() - started)
        except A2AError as exc:
            data = dialect.error_data(exc.code, exc.details)
            return Error(exc.code, exc.message, NODATA if data is None else data)
        return Success(result)

    async def _dialect(self, spec: MethodSpec, call: Call, params: JSON) -> Dialect:
        version = call.version
        if spec.dialect is not None:
            if version is not None and (version == "1.0") != (spec.dialect is V10):
                raise MethodNotFound(f"Method not found: {spec.name} is not an A2A {version} method")
            return spec.dialect
        if version == "1.0":
            raise MethodNotFound(f"Method not found: {spec.name} is not an A2A 1.0 method (1.0 uses PascalCase names)")
        if version is not None:
            return BY_VERSION[version]
        # shared 0.1/0.3 name without a header: answer in the dialect the task was created in
        task_id = params.get("id")
        task = await self.service.find(task_id, call.reader) if isinstance(task_id, str) else None
        return BY_VERSION[task.dialect] if task is not None else V03


MAX_DEPTH = 64
VERSION_NOT_SUPPORTED = -32009


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _too_deep(payload: Any, body: bytes) -> bool:
    """Whether ``payload`` nests more than MAX_DEPTH containers (checked without recursion)."""
    if body.count(b"{") + body.count(b"[") <= MAX_DEPTH:
        return False  # fewer openers than the limit in the whole text (no walk: most requests end here)
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return False


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))


def _envelope_problem(item: Any) -> tuple[int, str] | None:
    if not isinstance(item, dict):
        return INVALID_REQUEST, f"Invalid request: a request must be a JSON object, got {type(item).__name__}"
    if item.get("jsonrpc") != "2.0":
        got = json.dumps(item.get("jsonrpc")) if "jsonrpc" in item else "nothing"
        return INVALID_REQUEST, f"Invalid request: 'jsonrpc' must be \"2.0\", got {got}"
    if "method" not in item:
        return INVALID_REQUEST, "Invalid request: 'method' is missing"
    if not isinstance(item["method"], str) or not item["method"]:
        return INVALID_REQUEST, "Invalid request: 'method' must be a non-empty string"
    if "id" in item and not _valid_id(item["id"]):
        return INVALID_REQUEST, "Invalid request: 'id' must be a string, a number or null"
    if "params" in item and not isinstance(item["params"], (dict, list)):
        return INVALID_PARAMS, f"Invalid params: params must be an object, got {type(item['params']).__name__}"
    return None
