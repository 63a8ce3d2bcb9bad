"""What a re-run of a task (its runner was lost mid-run) takes over from the run it replaces.

A lost run may have streamed part of its answer. The re-run starts its generation from the beginning, so it
restarts that artifact rather than adding a second one beside it: its first chunk carries the same artifact id with
``append: false`` (A2A: replace the artifact's content), and its opening status says that the output restarts. A
client that assembles artifacts by id then holds the re-run's answer only, and so does the stored task.
"""

from __future__ import annotations

from a2a_server.model import Artifact, ArtifactEvent, StatusEvent
from a2a_server.ports import EventLog

REQUEUED = "requeued after worker loss"
RESTARTS = "; the output streamed so far is discarded and restarts from the beginning"


async def abandoned_output(events: EventLog, task_id: str) -> Artifact | None:
    """The artifact the lost run(s) of this turn streamed (the first one after the last settled status), if any."""
    found: Artifact | None = None
    for logged in await events.read_after(task_id, 0):
        ev = logged.event
        if isinstance(ev, StatusEvent) and ev.status.state.settled:
            found = None  # an earlier turn's answer was delivered: it stays
        elif isinstance(ev, ArtifactEvent) and found is None:
            found = Artifact(artifact_id=ev.artifact.artifact_id, name=ev.artifact.name, parts=[])
    return found


def opening(restarted: Artifact | None) -> str:
    """The text of a re-run's first status."""
    return REQUEUED if restarted is None else REQUEUED + RESTARTS
