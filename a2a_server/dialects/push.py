"""Push notification configs on the wire, per generation: parse them into ``PushConfigIn``, render ``PushConfig``
back, and render the notification a webhook receives (0.x: the Task; 1.0: the ``StreamResponse`` event).

    0.1  tasks/pushNotification/set|get   {id, pushNotificationConfig: {url, token, authentication{schemes}}}
    0.3  tasks/pushNotificationConfig/*   {taskId, pushNotificationConfig: {id, url, token, authentication}}
                                          get/delete {id, pushNotificationConfigId}; list {id} → [config]
    1.0  *TaskPushNotificationConfig*     {taskId, id, url, token, authentication{scheme, credentials}}
                                          get/delete {taskId, id}; list {taskId} → {configs, nextPageToken}

Every generation also reads and shows two keys of our own: ``artifacts`` (true: notify artifact updates too) and
``signingSecret`` (the HMAC key of ``X-A2A-Signature``; the server draws one when it is not given), and reads
show ``delivery`` (how far delivery got: state, lastEventId, attempts, delivered, lastStatus, nextTry).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError
from pydantic.alias_generators import to_camel

from a2a_server import cursor
from a2a_server.dialects.base import JSON, Dialect, PushConfigIn, Wire, drop_none
from a2a_server.errors import InvalidParams
from a2a_server.model import LoggedEvent, StatusEvent, Task
from a2a_server.ports import PushConfig

# the key of the body's metadata that carries the event id (also in the X-A2A-Event-Id header)
EVENT_ID_KEY = "a2a-server/eventId"


class _Auth0x(Wire):
    schemes: list[str] = Field(min_length=1)
    credentials: str | None = None


class _Auth10(Wire):
    scheme: str = Field(min_length=1)
    credentials: str | None = None


class _Config(Wire):
    url: str = Field(min_length=1)
    id: str | None = Field(default=None, min_length=1)
    token: str | None = None
    artifacts: bool = False
    signing_secret: str | None = Field(default=None, min_length=16)


class _Config0x(_Config):
    authentication: _Auth0x | None = None


class _Config10(_Config):
    authentication: _Auth10 | None = None


def _validate(model: type[_Config], raw: Any, prefix: str) -> PushConfigIn:
    try:
        c = model.model_validate(raw)
    except ValidationError as exc:
        problems = [(".".join([prefix, *(str(p) for p in e["loc"])]).strip("."), e["msg"]) for e in exc.errors()]
        text = "; ".join(f"{where or 'params'}: {msg}" for where, msg in problems)
        raise InvalidParams(f"Invalid params: {text}", param=problems[0][0] or None) from None
    scheme = credentials = None
    auth = getattr(c, "authentication", None)
    if isinstance(auth, _Auth0x):
        scheme, credentials = auth.schemes[0], auth.credentials
    elif isinstance(auth, _Auth10):
        scheme, credentials = auth.scheme, auth.credentials
    field = f"{prefix}.url" if prefix else "url"
    return PushConfigIn(c.url, field, c.id, c.token, scheme, credentials, c.artifacts, c.signing_secret)


def _json_names(params: Any) -> Any:
    """ProtoJSON parsers accept a field's proto name as well as its JSON name (``task_id`` for ``taskId``): the
    1.0 conformance suite's JSON-RPC client sends the proto names for the push methods. The config itself is a
    ``Wire`` model, which takes both already (the same ``to_camel``); these are the keys read by hand."""
    if not isinstance(params, dict) or not any("_" in k for k in params):
        return params
    out = dict(params)
    for key in params:
        if "_" in key:
            out.setdefault(to_camel(key), out.pop(key))
    return out


def _string(params: Any, key: str) -> str:
    value = params.get(key) if isinstance(params, dict) else None
    if not isinstance(value, str) or not value:
        raise InvalidParams(f"Invalid params: {key} is required (a non-empty string)", param=key)
    return value


def _optional(params: Any, key: str) -> str | None:
    value = params.get(key) if isinstance(params, dict) else None
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidParams(f"Invalid params: {key} must be a string", param=key)
    return value


def _delivery(c: PushConfig) -> JSON:
    d = c.delivery
    return drop_none({
        "state": d.state,
        "lastEventId": cursor.sse_id(c.task_id, d.cursor) if d.cursor else None,
        "attempts": d.attempts,
        "delivered": d.delivered,
        "lastStatus": d.last_status,
        "lastAttempt": d.last_attempt,
        "nextTry": d.next_try,
    })  # fmt: skip


def _ours(c: PushConfig) -> JSON:
    return {"artifacts": c.artifacts, "signingSecret": c.secret, "delivery": _delivery(c)}


def _config_0x(c: PushConfig) -> JSON:
    auth = None
    if c.auth_scheme is not None:
        auth = drop_none({"schemes": [c.auth_scheme], "credentials": c.auth_credentials})
    return drop_none({"id": c.id, "url": c.url, "token": c.token, "authentication": auth})


class PushWire:
    """One generation's push shapes. ``set`` → (task id, config); ``ref`` → (task id, config id or None)."""

    version = ""

    def parse_set(self, params: Any) -> tuple[str, PushConfigIn]:
        raise NotImplementedError

    def parse_ref(self, params: Any, *, need_id: bool) -> tuple[str, str | None]:
        raise NotImplementedError

    def parse_task(self, params: Any) -> str:
        return _string(params, "id")

    def parse_in_send(self, raw: Any, prefix: str) -> PushConfigIn:
        return _validate(_Config0x, raw, prefix)

    def config(self, c: PushConfig) -> JSON:
        raise NotImplementedError

    def configs(self, cs: list[PushConfig]) -> Any:
        return [self.config(c) for c in cs]

    def deleted(self) -> Any:
        return None

    needs_task = True  # the notification renders the whole task (read from the store)

    def notification(self, dialect: Dialect, task_id: str, logged: LoggedEvent, task: Task | None) -> JSON | None:
        """The body a receiver gets for ``logged`` (None: nothing to send for it), rendered by ``dialect`` (this
        generation's). 0.x: the task as of a status change (``task`` as stored now, with that status)."""
        if not isinstance(logged.event, StatusEvent) or task is None:
            return None
        out = dialect.task(task.model_copy(update={"status": logged.event.status}))
        out["metadata"] = {**(out.get("metadata") or {}), EVENT_ID_KEY: cursor.sse_id(task_id, logged.id)}
        return out


class _V01(PushWire):
    version = "0.1"

    def parse_set(self, params: Any) -> tuple[str, PushConfigIn]:
        task_id = _string(params, "id")
        return task_id, _validate(_Config0x, params.get("pushNotificationConfig"), "pushNotificationConfig")

    def parse_ref(self, params: Any, *, need_id: bool) -> tuple[str, str | None]:
        return _string(params, "id"), None

    def config(self, c: PushConfig) -> JSON:
        inner = _config_0x(c)
        inner.pop("id")
        return {"id": c.task_id, "pushNotificationConfig": inner, **_ours(c)}


class _V03(PushWire):
    version = "0.3"

    def parse_set(self, params: Any) -> tuple[str, PushConfigIn]:
        task_id = _string(params, "taskId")
        return task_id, _validate(_Config0x, params.get("pushNotificationConfig"), "pushNotificationConfig")

    def parse_ref(self, params: Any, *, need_id: bool) -> tuple[str, str | None]:
        task_id = _string(params, "id")
        return task_id, _string(params, "pushNotificationConfigId") if need_id else _optional(
            params, "pushNotificationConfigId"
        )

    def config(self, c: PushConfig) -> JSON:
        return {"taskId": c.task_id, "pushNotificationConfig": _config_0x(c), **_ours(c)}


class _V10(PushWire):
    version = "1.0"

    def parse_set(self, params: Any) -> tuple[str, PushConfigIn]:
        params = _json_names(params)
        task_id = _string(params, "taskId")
        return task_id, _validate(_Config10, params, "")

    def parse_ref(self, params: Any, *, need_id: bool) -> tuple[str, str | None]:
        params = _json_names(params)
        return _string(params, "taskId"), _string(params, "id")

    def parse_task(self, params: Any) -> str:
        return _string(_json_names(params), "taskId")

    def parse_in_send(self, raw: Any, prefix: str) -> PushConfigIn:
        return _validate(_Config10, raw, prefix)

    def config(self, c: PushConfig) -> JSON:
        auth = None
        if c.auth_scheme is not None:
            auth = drop_none({"scheme": c.auth_scheme, "credentials": c.auth_credentials})
        out = drop_none({"id": c.id, "taskId": c.task_id, "url": c.url, "token": c.token, "authentication": auth})
        return {**out, **_ours(c)}

    def configs(self, cs: list[PushConfig]) -> Any:
        return {"configs": [self.config(c) for c in cs], "nextPageToken": ""}

    def deleted(self) -> Any:
        return {}

    needs_task = False

    def notification(self, dialect: Dialect, task_id: str, logged: LoggedEvent, task: Task | None) -> JSON | None:
        """The ``StreamResponse`` of the event (a status or artifact update, or a direct message)."""
        out = dialect.stream_item(logged)
        for inner in out.values():
            inner["metadata"] = {**(inner.get("metadata") or {}), EVENT_ID_KEY: cursor.sse_id(task_id, logged.id)}
        return out


PUSH: dict[str, PushWire] = {"0.1": _V01(), "0.2": _V03(), "0.3": _V03(), "1.0": _V10()}
