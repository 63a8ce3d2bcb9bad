"""Event cursors on the wire: the SSE ``id:`` of an event and the ``Last-Event-ID`` a client sends back.

An SSE id is ``<task id>:<n>``, where n is the event's id in the task's log (1, 2, 3, …), so the
server can tell an id of another task from one of this task. A bare ``n`` is accepted too, for
people typing curl commands.
"""

from __future__ import annotations


class BadCursor(ValueError):
    pass


def sse_id(task_id: str, seq: int) -> str:
    return f"{task_id}:{seq}"


def parse(raw: str, task_id: str, last: int) -> int:
    """The log id after which to resume; BadCursor says what is wrong with ``raw``."""
    text = raw.strip()
    owner, sep, number = text.rpartition(":")
    if sep and owner != task_id:
        raise BadCursor(f"Last-Event-ID {text!r} is an event of task {owner!r}, not of task {task_id!r}")
    try:
        seq = int(number)
    except ValueError:
        raise BadCursor(f"Last-Event-ID must be '<task id>:<n>' or a number, got {text!r}") from None
    if seq < 0 or seq > last:
        raise BadCursor(f"Last-Event-ID {text!r} is beyond the last event ({last}) of task {task_id!r}")
    return seq
