"""One handler per operation of the method table; each works on the canonical model through a dialect.

A handler returns a JSON-ready result, or a ``StreamPlan`` that the HTTP layer turns into SSE
after dispatch (so validation errors still come back as plain JSON-RPC responses).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from a2a_server import cursor
from a2a_server.dialects import V10, Dialect
from a2a_server.dialects.base import JSON, SendRequest, validate
from a2a_server.dialects.push import PUSH
from a2a_server.dialects.v10 import ListQuery
from a2a_server.errors import (
    ExtendedCardNotConfigured,
    InvalidParams,
    UnsupportedOperation,
)
from a2a_server.methods import Op
from a2a_server.model import LoggedEvent, MessageEvent, StatusEvent, TaskState
from a2a_server.service import ANONYMOUS, Channels, TaskFollow, TaskService


@dataclass(slots=True)
class Call:
    """What the transport knows about one request, beyond its params."""

    version: str | None = None  # normalized A2A-Version ("0.1", "0.2", "0.3", "1.0")
    # POST /a2a/stream, or a request that asked for SSE (Accept: text/event-stream): task-creating methods stream
    stream_path: bool = False
    last_event_id: str | None = None  # the raw Last-Event-ID header (see cursor.py)
    version_error: str | None = None  # an A2A-Version we do not speak: every request gets -32009
    blocking_timeout: float = 60.0
    owner: str = ANONYMOUS  # the caller's principal
    # an admin key reads every principal's tasks (it still creates and continues tasks as itself)
    admin: bool = False
    # the extended agent card in a generation's shape ("1.0", "0.3"); None: not configured (auth off)
    card: Callable[[str], JSON] | None = None

    @property
    def reader(self) -> str | None:
        """The owner that reads (get, cancel, subscribe, list) are scoped to: None for an admin."""
        return None if self.admin else self.owner


@dataclass(slots=True)
class StreamPlan:
    """An SSE stream to open: the events of ``follow``'s task after ``after``, optionally led by a snapshot."""

    dialect: Dialect
    task_id: str
    after: int
    follow: TaskFollow | None  # None: only the snapshot
    snapshot: JSON | None = None
    # the snapshot replaces the run's opening ``submitted`` status (new tasks) instead of preceding it
    snapshot_replaces_submitted: bool = False
    # instead of ``follow``: the task's events through every turn until it is terminal (1.0 SubscribeToTask)
    turns: AsyncGenerator[list[LoggedEvent], None] | None = None


def wants_stream(call: Call, params: Any) -> bool:
    """Whether a task-creating request is answered with its stream: the stream path or ``Accept``, or a job-style
    ``"stream": true`` in its params."""
    return call.stream_path or (isinstance(params, dict) and params.get("stream") is True)


def check_params(op: Op, dialect: Dialect, params: Any) -> None:
    """Parse ``params`` as ``op`` would, running nothing (InvalidParams when they are wrong)."""
    if op in (Op.SEND, Op.STREAM):
        dialect.parse_send(params)
    elif op in (Op.GET, Op.CANCEL, Op.RESUBSCRIBE):
        dialect.parse_task_query(params)
    elif op is Op.LIST:
        validate(ListQuery, params)


Handler = Callable[[TaskService, Call, Dialect, Any], Awaitable["JSON | StreamPlan"]]


async def send(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    req = _seed_channel(dialect.parse_send(params), params)
    if wants_stream(call, params):
        return await _open_stream(service, call, dialect, req)
    timeout = call.blocking_timeout
    task = await service.send(req, dialect.version, blocking=req.blocking, timeout=timeout, owner=call.owner)
    return dialect.send_result(task, task.reply, req.history_length)


async def stream(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    return await _open_stream(service, call, dialect, _seed_channel(dialect.parse_send(params), params))


async def _open_stream(service: TaskService, call: Call, dialect: Dialect, req: SendRequest) -> StreamPlan:
    submitted = await service.submit(req, dialect.version, owner=call.owner, follow=True)
    # no await since submit: the run has not started, so this is the task as submitted
    task = submitted.task
    snapshot = dialect.stream_item(task) if dialect.stream_starts_with_task() else None
    after = submitted.after  # a continued (input-required) task already has a log: this stream starts after it
    return StreamPlan(dialect, task.id, after, submitted.follow, snapshot, snapshot_replaces_submitted=after == 0)


async def get(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    q = dialect.parse_task_query(params)
    task = await service.shown(await service.get(q.id, call.reader), call.reader)  # failing webhooks shown
    return dialect.task(task, q.history_length)


async def cancel(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    q = dialect.parse_task_query(params)
    return dialect.task(await service.cancel(q.id, call.reader), q.history_length)


async def resubscribe(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    q = dialect.parse_task_query(params)
    task, last = await service.snapshot(q.id, call.reader)
    if call.last_event_id is not None:
        try:
            after = cursor.parse(call.last_event_id, task.id, await service.resumable_after(task.id, last))
        except cursor.BadCursor as exc:
            raise InvalidParams(f"Invalid params: {exc}", {"taskId": task.id, "lastEventId": str(last)},
                                param="Last-Event-ID") from None  # fmt: skip
        return StreamPlan(dialect, task.id, after, service.follow(task, after))
    if dialect is V10 and task.status.state.terminal:
        raise UnsupportedOperation(
            f"Task {task.id} is {task.status.state.value}; SubscribeToTask needs a task that is not terminal",
            {"taskId": task.id},
        )
    snapshot = dialect.stream_item(await service.shown(task, call.reader))  # failing webhooks shown
    if dialect is V10:
        # 1.0: the stream closes only at a terminal state, so it stays open through an input-required turn
        return StreamPlan(dialect, task.id, last, None, snapshot, turns=service.turns(task, last))
    follower = None if task.status.state.settled else service.follow(task, last)
    return StreamPlan(dialect, task.id, last, follower, snapshot)


async def list_tasks(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    q = validate(ListQuery, params if params is not None else {})
    page = await service.list(
        call.reader,
        context_id=q.context_id,
        state=q.state,
        updated_after=q.status_timestamp_after,
        page_size=q.page_size,
        page_token=q.page_token,
    )
    assert dialect is V10
    return {
        "tasks": [V10.task(t, q.history_length, artifacts=q.include_artifacts) for t in page.tasks],
        "nextPageToken": page.next_page_token,
        "pageSize": q.page_size,
        "totalSize": page.total_size,
    }


async def push_set(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    wire = PUSH[dialect.version]
    task_id, given = wire.parse_set(params)
    return wire.config(await service.push.set(task_id, given, dialect.version, call.owner))


async def push_get(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    wire = PUSH[dialect.version]
    task_id, config_id = wire.parse_ref(params, need_id=False)
    return wire.config(await service.push.get(task_id, config_id, call.owner))


async def push_list(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    wire = PUSH[dialect.version]
    result: JSON = wire.configs(await service.push.list(wire.parse_task(params), call.owner))
    return result


async def push_delete(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    wire = PUSH[dialect.version]
    task_id, config_id = wire.parse_ref(params, need_id=True)
    await service.push.delete(task_id, config_id, call.owner)
    result: JSON = wire.deleted()
    return result


async def extended_card(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    if call.card is None:
        raise ExtendedCardNotConfigured()
    return call.card("1.0" if dialect is V10 else "0.3")


def _channels(service: TaskService) -> Channels:
    if service.channels is None:
        raise UnsupportedOperation("Billing channels are not available on this server")
    return service.channels


async def channel_open(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    return (await _channels(service).open(params, call.owner)).to_wire()


async def channel_get(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    return (await _channels(service).get(params, call.owner)).to_wire()


async def channel_list(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    return {"channels": [c.to_wire() for c in await _channels(service).list(call.owner)]}


async def channel_close(service: TaskService, call: Call, dialect: Dialect, params: Any) -> JSON | StreamPlan:
    return (await _channels(service).close(params, call.owner)).to_wire()


def _seed_channel(req: SendRequest, params: Any) -> SendRequest:
    """``params.channel`` (the seed's style) is ``metadata.channel``."""
    if isinstance(params, dict) and "channel" in params:
        req.metadata.setdefault("channel", params["channel"])
    return req


HANDLERS: dict[Op, Handler] = {
    Op.SEND: send,
    Op.STREAM: stream,
    Op.GET: get,
    Op.LIST: list_tasks,
    Op.CANCEL: cancel,
    Op.RESUBSCRIBE: resubscribe,
    Op.PUSH_SET: push_set,
    Op.PUSH_GET: push_get,
    Op.PUSH_LIST: push_list,
    Op.PUSH_DELETE: push_delete,
    Op.EXTENDED_CARD: extended_card,
    Op.CHANNEL_OPEN: channel_open,
    Op.CHANNEL_GET: channel_get,
    Op.CHANNEL_LIST: channel_list,
    Op.CHANNEL_CLOSE: channel_close,
}


async def frames(plan: StreamPlan) -> AsyncIterator[list[tuple[int, JSON]]]:
    """Batches of (event id, JSON-RPC result) of one stream, in order; ends after the settling event.
    Closes the plan's follower."""
    if plan.turns is not None:
        async with contextlib.aclosing(plan.turns) as turns:
            async for batch in _frames(plan, turns):
                yield batch
        return
    if plan.follow is None:
        if plan.snapshot is not None:
            yield [(plan.after, plan.snapshot)]
        return
    async with plan.follow as follower:
        async for batch in _frames(plan, follower.batches()):
            yield batch


async def _frames(plan: StreamPlan, batches: AsyncIterator[list[LoggedEvent]]) -> AsyncIterator[list[tuple[int, JSON]]]:
    dialect, pending = plan.dialect, plan.snapshot
    if pending is not None and not plan.snapshot_replaces_submitted:
        # a re-attached stream opens with the task as it is now, without waiting for its next event
        yield [(plan.after, pending)]
        pending = None
    async for batch in batches:
        out: list[tuple[int, JSON]] = []
        for le in batch:
            if pending is not None:
                # a new task: its first event says whether the answer is a direct Message or a Task
                ev = le.event
                if isinstance(ev, MessageEvent):
                    yield [(le.id, dialect.stream_item(le))]  # a direct reply is the whole stream
                    return
                first = pending
                pending = None
                if isinstance(ev, StatusEvent) and ev.status.state == TaskState.SUBMITTED:
                    out.append((le.id, first))
                    continue
                out.append((plan.after, first))
            out.append((le.id, dialect.stream_item(le)))
        yield out
