"""What an event buffered for a live subscriber costs in memory, estimated without serializing it.

The bus (``bus.py``) bounds each subscriber's buffer in bytes with these estimates: a subscriber that stops
reading (a client that connects, asks for a stream and never reads) must cost a bounded amount whatever
the size of the events. The estimate is the text the event carries plus a fixed cost for the objects
around it; it is cheap (a few attribute reads per part) because it runs once per published event that has
a subscriber.
"""

from __future__ import annotations

from a2a_server.model import ArtifactEvent, LoggedEvent, MessageEvent, Part, StatusEvent
from a2a_server.ports import GlobalEvent

# Python objects of one event (LoggedEvent, the event model, its artifact or status, one part, ids and
# timestamps as strings), measured with tracemalloc for a one-word artifact chunk: ~1.9 KB.
EVENT_OVERHEAD = 2048
# each part beyond the first: a Part model and its dict
PART_OVERHEAD = 300
# a data part's value is not measured (that would mean walking or serializing it); this is its guess
DATA_PART = 512


def _parts(parts: list[Part]) -> int:
    size = PART_OVERHEAD * (len(parts) - 1) if parts else 0
    for part in parts:
        text = part.text if part.text is not None else part.raw
        if text is not None:
            size += len(text)
        elif part.data is not None:
            size += DATA_PART
    return size


def logged_bytes(logged: LoggedEvent) -> int:
    """The estimated memory one logged event holds while it waits in a subscriber's buffer."""
    event = logged.event
    if isinstance(event, ArtifactEvent):
        return EVENT_OVERHEAD + _parts(event.artifact.parts)
    if isinstance(event, StatusEvent):
        message = event.status.message
        return EVENT_OVERHEAD + (_parts(message.parts) if message is not None else 0)
    if isinstance(event, MessageEvent):
        return EVENT_OVERHEAD + _parts(event.message.parts)
    return EVENT_OVERHEAD


def global_bytes(event: GlobalEvent) -> int:
    return logged_bytes(event.logged) + 200  # the cursor and the task's ids and labels
