"""GET /a2a/events: one stream of many tasks, for orchestrators (our extension; no A2A peer has it).

Every event of every task that matches the query, in the global order of the log:
``?contextId=`` ``&skill=`` ``&state=`` (the task's state at the time of the event, in any generation's
spelling: ``working`` or the 1.0 enum name). Each frame is ``id: <global cursor>`` and ``data:`` a 1.0
``StreamResponse`` (``statusUpdate`` / ``artifactUpdate`` / ``message``) that names its ``taskId``;
``Last-Event-ID: <cursor>`` resumes exactly after that frame, across restarts too (the cursor is the log's
own order). Without it the stream starts at the oldest stored event, or with ``?from=now`` at the next new one
(a page that lists tasks from ListTasks first need not replay the log); that stream opens with a frame that
carries only ``id:``, so that a browser's EventSource resumes from there if it reconnects before any event.
Keepalives as on every stream; a reader too slow for its buffer catches up from the log.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sse_starlette import ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from a2a_server.dialects import V10
from a2a_server.dialects.v10 import STATE_IN
from a2a_server.http.auth import principal_of
from a2a_server.http.jsonrpc import dumps, json_response
from a2a_server.http.sse import sse_response
from a2a_server.http.state import app_state
from a2a_server.model import TaskState
from a2a_server.service import EventFilter, TaskService

_QUERY = ("contextId", "skill", "state", "from")
MAX_CURSOR = 2**63 - 1


def _bad(message: str) -> Response:
    return json_response({"error": "invalid_request", "message": message}, 400)


def _state(raw: str) -> TaskState | None:
    name = raw.strip()
    return STATE_IN.get(name) or next((s for s in TaskState if s.value == name.lower()), None)


async def events(request: Request) -> Response:
    state = app_state(request)
    query = request.query_params
    unknown = sorted(set(query) - set(_QUERY))
    if unknown:
        return _bad(f"unknown query parameter {unknown[0]!r}; /a2a/events takes {', '.join(_QUERY)}")
    task_state = None
    if (raw_state := query.get("state")) is not None:
        task_state = _state(raw_state)
        if task_state is None:
            return _bad(f"state {raw_state!r} is not a task state; one of {', '.join(s.value for s in TaskState)}")
    start = query.get("from", "start")
    if start not in ("start", "now"):
        return _bad(f"from {start!r}: expected 'start' (every stored event, the default) or 'now' (new events only)")
    after = 0
    if (raw := request.headers.get("last-event-id")) is not None and raw.strip():
        # ASCII digits only ("²".isdigit() is true, int() refuses it) and no larger than the log's ids can be
        # (SQLite's INTEGER: a larger one failed inside the stream, after its 200)
        text = raw.strip()
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_CURSOR:
            return _bad(f"Last-Event-ID {raw!r} is not a cursor of /a2a/events (an integer from 0 to {MAX_CURSOR})")
        after = int(text)
    elif start == "now":  # a reconnecting EventSource sends Last-Event-ID, which wins over from=now
        after = await state.service.last_cursor()
    # only the caller's own tasks (an admin key: everyone's)
    owner = principal_of(request).reader
    where = EventFilter(context_id=query.get("contextId"), skill=query.get("skill"), state=task_state, owner=owner)
    return sse_response(state.settings, _frames(state.service, where, after, mark=start == "now"))


async def _frames(service: TaskService, where: EventFilter, after: int, mark: bool) -> AsyncIterator[bytes]:
    service.metrics.streams.inc()
    try:
        if mark:  # an id without data sets EventSource.lastEventId and dispatches nothing
            yield ServerSentEvent(id=str(after)).encode()
        async with contextlib.aclosing(service.follow_all(where, after)) as batches:
            async for batch in batches:
                # every event that is ready goes out in one write
                yield b"".join(
                    ServerSentEvent(data=dumps(V10.event(g.logged.event)), id=str(g.cursor)).encode() for g in batch
                )
    finally:
        service.metrics.streams.dec()


ROUTES: list[BaseRoute] = [Route("/a2a/events", events, methods=["GET"])]
