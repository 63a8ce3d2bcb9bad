"""POST /v1/chat/completions and GET /v1/models: the OpenAI-compatible face of the same task engine.

A chat completion is an A2A task. The skill whose ``models()`` lists the requested model runs it, given the
chat as a data part ``{"messages": [...]}`` and the sampling parameters (``model`` included) as metadata. The
response carries ``X-A2A-Task-Id``: tasks/get, tasks/cancel and the token stream see the same work, and a
client that disconnects does not cancel it.

Streaming (``"stream": true``, or ``Accept: text/event-stream`` when ``stream`` is absent)::

    role chunk ─► content chunks ─► finish chunk ─► usage chunk (include_usage) ─► data: [DONE]
    failed / canceled / rejected mid-stream ─► data: {"error": {...}} and no [DONE]

The headers wait (at most ``HOLD`` seconds) until the task has text, explains a wait ("loading model",
"queued") or settles, so that a task rejected at once (queue full) still gets its HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_server.dialects.base import SendRequest
from a2a_server.errors import A2AError, InvalidParams, TooManyRequests
from a2a_server.http.auth import principal_of
from a2a_server.http.jsonrpc import dumps
from a2a_server.http.sse import sse_response
from a2a_server.http.state import AppState, app_state
from a2a_server.http.tokens import chunk_text, follow
from a2a_server.model import LoggedEvent, Message, Part, Role, Task, TaskEvent, TaskState
from a2a_server.service import ANONYMOUS, TaskService
from a2a_server.skill import ModelInfo, Skill

HOLD = 1.0
# the word a skill puts in its final metadata ("error") when it refuses a task because its queue is full
QUEUE_FULL = "queue_full"
TASK_HEADER = "X-A2A-Task-Id"
# OpenAI name -> the skill's metadata name; later entries win (max_completion_tokens over max_tokens)
# fmt: off
SAMPLING = ("temperature", "top_p", "top_k", "stop", "seed", "repetition_penalty",
            "presence_penalty", "frequency_penalty")
# fmt: on
PARAMS = {"max_tokens": "max_tokens", "max_completion_tokens": "max_tokens"} | {name: name for name in SAMPLING}
UNSUPPORTED = ("tools", "functions", "logprobs", "top_logprobs", "audio", "prediction")


@dataclass
class ApiError(Exception):
    """An answer in the OpenAI error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    type: str = "invalid_request_error"
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        # the openai client retries 409 and 5xx by itself; a canceled or failed task must not run again
        retry = {"x-should-retry": "false"} if self.status in (409, 500) else {}
        return _json(self.body(), self.status, {**retry, **self.headers})


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status, headers, media_type="application/json")


def task_error(task: Task) -> ApiError:
    """How a task that settled in a state other than completed answers an OpenAI client."""
    status = task.status
    state, text = status.state, status.message.text if status.message is not None else ""
    if state == TaskState.REJECTED and (task.metadata or {}).get("error") == QUEUE_FULL:
        return ApiError(503, text, None, "queue_full", "server_error", {"Retry-After": "1"})
    if state == TaskState.REJECTED:
        return ApiError(400, text or "the task was rejected", None, "task_rejected")
    if state == TaskState.CANCELED:
        return ApiError(409, text or "the task was canceled", None, "task_canceled")
    if state.interrupted:
        return ApiError(422, text or "the task needs more input; continue it over A2A", None, "input_required")
    return ApiError(500, text or f"the task ended {state.value}", None, "task_failed", "server_error")


def served_models(skills: Iterable[Skill]) -> dict[str, tuple[Skill, ModelInfo]]:
    """Every model an enabled skill serves (``BaseSkill.models()``); the first skill listing an id runs it."""
    found: dict[str, tuple[Skill, ModelInfo]] = {}
    for skill in skills:
        models = getattr(skill, "models", None)
        for info in models() if callable(models) else []:
            if isinstance(info, ModelInfo):
                found.setdefault(info.id, (skill, info))
    return found


def _pick(state: AppState, model: str) -> tuple[Skill, ModelInfo]:
    models = served_models(state.skills)
    if model not in models:
        known = ", ".join(models) or "none"
        raise ApiError(404, f"The model {model!r} does not exist here; models: {known}", "model", "model_not_found")
    return models[model]


def _model_json(state: AppState, info: ModelInfo) -> dict[str, Any]:
    created = int(state.started.timestamp())
    out = {"id": info.id, "object": "model", "created": created, "owned_by": info.owned_by, "state": info.state}
    return out if info.context_length is None else {**out, "context_length": info.context_length}


async def list_models(request: Request) -> Response:
    state = app_state(request)
    return _json({"object": "list", "data": [_model_json(state, i) for _, i in served_models(state.skills).values()]})


async def get_model(request: Request) -> Response:
    state = app_state(request)
    try:
        return _json(_model_json(state, _pick(state, request.path_params["model"])[1]))
    except ApiError as exc:
        return exc.response()


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    stream: bool
    include_usage: bool
    metadata: dict[str, Any]
    # the skill's metadata name -> the OpenAI parameter it came from, to name it in a validation error
    names: dict[str, str]


def _content(value: Any, where: str) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
        return "".join(str(p.get("text", "")) for p in value)
    raise ApiError(400, f"'{where}' must be a string or a list of text parts (only text is supported)", where)


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ApiError(400, "'messages' must be a non-empty array of {role, content}", "messages", "invalid_value")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            raise ApiError(400, f"'messages[{i}]' must be an object with a string 'role'", f"messages[{i}]")
        role = "system" if item["role"] == "developer" else item["role"]
        out.append({"role": role, "content": _content(item.get("content"), f"messages[{i}].content")})
    return out


def parse_chat(body: Any, accept: str) -> ChatRequest:
    """Check what is OpenAI's to check (shape, unsupported features); the skill validates the values."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required: an id from GET /v1/models", "model", "missing_required_parameter")
    messages = _messages(body.get("messages"))
    for name in UNSUPPORTED:
        if body.get(name):
            raise ApiError(400, f"'{name}' is not supported by this server", name, "unsupported_parameter")
    if body.get("n") not in (None, 1):
        raise ApiError(400, "'n' must be 1: this server generates one choice", "n", "unsupported_value")
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "text"):
        raise ApiError(400, "'response_format' must be {'type': 'text'}", "response_format", "unsupported_value")
    stream, options = body.get("stream"), body.get("stream_options")
    if stream is not None and not isinstance(stream, bool):
        raise ApiError(400, f"'stream' must be a boolean, got {stream!r}", "stream", "invalid_type")
    if options is not None and not isinstance(options, dict):
        raise ApiError(400, "'stream_options' must be an object", "stream_options", "invalid_type")
    metadata, names = {"model": model}, {"model": "model"}
    for name, target in PARAMS.items():
        if body.get(name) is not None:
            metadata[target], names[target] = body[name], name
    # a billing channel (the token-billing extension) rides in OpenAI's own ``metadata`` map: {"channel": id}
    extra = body.get("metadata")
    if isinstance(extra, dict) and extra.get("channel") is not None:
        metadata["channel"], names["metadata.channel"] = extra["channel"], "metadata.channel"
    streaming = stream if stream is not None else "text/event-stream" in accept
    return ChatRequest(model, messages, streaming, bool((options or {}).get("include_usage")), metadata, names)


async def _read_json(request: Request, limit: int) -> Any:
    too_large = ApiError(413, f"the request body is larger than {limit} bytes", None, "request_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
        return json.loads(body)
    except ClientDisconnect:
        raise ApiError(400, "the client disconnected while sending the body") from None
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser's stack
        raise ApiError(400, f"the request body is not valid JSON: {exc}", None, "invalid_json") from None


async def _submit(service: TaskService, skill: Skill, chat: ChatRequest, owner: str) -> str:
    message = Message(role=Role.USER, parts=[Part(kind="data", data={"messages": chat.messages})])
    try:
        req = SendRequest(message, skill=skill.name, metadata=chat.metadata)
        return (await service.submit(req, "0.3", owner=owner)).task.id
    except InvalidParams as exc:  # the skill's validation names the metadata key; answer with the OpenAI name
        param = chat.names.get(exc.param, exc.param) if exc.param else None
        text = exc.message.removeprefix("Invalid params: ")  # the JSON-RPC faces' prefix, not the skill's words
        raise ApiError(400, text, param, exc.cause or "invalid_value") from None
    except A2AError as exc:
        kind = "server_error" if exc.http_status >= 500 else "invalid_request_error"
        retry = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else {}
        raise ApiError(exc.http_status, exc.message, exc.param, exc.cause, kind, retry) from None


async def chat_completions(request: Request) -> Response:
    state = app_state(request)
    try:
        chat = parse_chat(await _read_json(request, state.settings.max_body_bytes), request.headers.get("accept", ""))
        owner = principal_of(request).name  # the task is the caller's: every read below is of their own task
        task_id = await _submit(state.service, _pick(state, chat.model)[0], chat, owner)
    except ApiError as exc:
        return exc.response()
    headers = {TASK_HEADER: task_id}
    completion = Completion(task_id, chat.model, int(time.time()), chat.include_usage, owner)
    held = await _hold(state.service, task_id, owner) if chat.stream else []
    try:
        if not chat.stream:
            return _json(await completion.whole(state.service), 200, headers)
        if held and held[-1].event.settles:
            task = await state.service.get(task_id, owner)
            if task.status.state != TaskState.COMPLETED:
                raise task_error(task)
    except ApiError as error:
        error.headers.update(headers)
        return error.response()
    return sse_response(state.settings, completion.chunks(state.service, held), headers)


def _commits(event: TaskEvent) -> bool:
    """Whether the streaming response should start: the task has text, explains a wait, or settled."""
    status = getattr(event, "status", None)
    return event.settles or bool(chunk_text(event)) or (status is not None and status.message is not None)


async def _hold(service: TaskService, task_id: str, owner: str) -> list[LoggedEvent]:
    held: list[LoggedEvent] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(HOLD), contextlib.aclosing(follow(service, task_id, 0, owner)) as events:
            async for logged in events:
                held.append(logged)
                if _commits(logged.event):
                    break
    return held


@dataclass
class Completion:
    """Renders one task as a ``chat.completion``, or as ``chat.completion.chunk`` frames while it runs."""

    task_id: str
    model: str
    created: int
    include_usage: bool
    owner: str = ANONYMOUS

    def _base(self, kind: str) -> dict[str, Any]:
        return {"id": f"chatcmpl-{self.task_id}", "object": kind, "created": self.created, "model": self.model}

    @staticmethod
    def _usage(task: Task, chunks: int) -> tuple[dict[str, int | str], str]:
        """Usage and finish_reason from the skill's final metadata; a skill that reports none counts text chunks.
        ``cost`` (base units, a decimal string) is passed on when the skill priced the run."""
        raw = (task.metadata or {}).get("usage")
        raw = raw if isinstance(raw, dict) else {}
        prompt, completion = int(raw.get("prompt_tokens", 0)), int(raw.get("completion_tokens", chunks))
        usage: dict[str, int | str] = {
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion
        }  # fmt: skip
        if isinstance(cost := raw.get("cost"), str):
            usage["cost"] = cost
        reason = raw.get("finish_reason")
        if reason == "budget_exhausted":  # a billing channel ran dry: the answer was cut short, as by max_tokens
            return usage, "length"
        return usage, reason if reason in ("stop", "length", "content_filter") else "stop"

    async def whole(self, service: TaskService) -> dict[str, Any]:
        chunks = 0
        async with contextlib.aclosing(follow(service, self.task_id, 0, self.owner)) as events:
            async for logged in events:
                chunks += bool(chunk_text(logged.event))
        task = await service.get(self.task_id, self.owner)
        if task.status.state != TaskState.COMPLETED:
            raise task_error(task)
        parts = task.reply.parts if task.reply is not None else [p for a in task.artifacts for p in a.parts]
        text = "".join(p.text or "" for p in parts if p.kind == "text")
        usage, reason = self._usage(task, chunks)
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reason}
        return {**self._base("chat.completion"), "choices": [choice], "usage": usage}

    async def _events(self, service: TaskService, held: list[LoggedEvent]) -> AsyncGenerator[LoggedEvent, None]:
        """What the hold already read, then the rest."""
        for logged in held:
            yield logged
        if not (held and held[-1].event.settles):
            async for logged in follow(service, self.task_id, held[-1].id if held else 0, self.owner):
                yield logged

    def _chunk(self, delta: dict[str, str], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        usage = {"usage": None} if self.include_usage else {}
        return dumps({**self._base("chat.completion.chunk"), "choices": [choice], **usage})

    async def chunks(self, service: TaskService, held: list[LoggedEvent]) -> AsyncIterator[str]:
        service.metrics.streams.inc()
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            chunks = 0
            async with contextlib.aclosing(self._events(service, held)) as events:
                async for logged in events:
                    if text := chunk_text(logged.event):
                        chunks += 1
                        yield self._chunk({"content": text})
            # the engine saves the task before it publishes the settling event: the stored task is final here
            task = await service.get(self.task_id, self.owner)
            if task.status.state != TaskState.COMPLETED:
                shutdown = ApiError(503, "the server is shutting down", None, "shutting_down", "server_error")
                yield dumps((task_error(task) if task.status.state.settled else shutdown).body())
                return
            usage, reason = self._usage(task, chunks)
            yield self._chunk({}, reason)
            if self.include_usage:
                yield dumps({**self._base("chat.completion.chunk"), "choices": [], "usage": usage})
            yield "[DONE]"
        finally:
            service.metrics.streams.dec()


ROUTES: list[BaseRoute] = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
]
