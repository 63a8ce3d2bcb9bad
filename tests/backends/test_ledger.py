"""The ledger backends on their own: charges per batch, folding when a run ends, voiding an abandoned run, reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from a2a_server.backends.ledger import MemoryLedger
from a2a_server.backends.sqlite import SQLiteStore
from a2a_server.backends.sqlite_ledger import SQLiteLedger
from a2a_server.ledger import Channel, ChannelState, Debit
from a2a_server.model import Artifact, ArtifactEvent, Part, Task, TaskState, TaskStatus


def chunk(task_id: str, text: str = "w ") -> ArtifactEvent:
    artifact = Artifact(artifact_id="a", parts=[Part.of_text(text)])
    return ArtifactEvent(task_id=task_id, context_id="c", artifact=artifact, append=True, last_chunk=False, index=0)


async def charge(ledger: MemoryLedger, store: SQLiteStore, task_id: str, chunks: int, tokens: int = 2) -> None:
    debits = []
    for i in range(chunks):
        assert ledger.reserve("ch", tokens * 5)
        debits.append(Debit(i, "ch", tokens, tokens * 5))
    batch = [chunk(task_id) for _ in range(chunks)]
    await ledger.append_charged(store, task_id, batch, debits, snapshot=None, epoch=1, create=False)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_fold_void_and_reload(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "l.db"
    store = await SQLiteStore.open(path)
    ledger = MemoryLedger() if kind == "memory" else await SQLiteLedger.open_on(store)
    await ledger.open(Channel("ch", "anonymous", 1000, 5, "2026-01-01T00:00:00.000Z"))
    task = Task(id="t", context_id="c", status=TaskStatus(state=TaskState.WORKING), dialect="1.0", skill="echo",
                owner="anonymous", epoch=1)  # fmt: skip
    await store.create(task)
    await ledger.bind("ch", "t")
    await charge(ledger, store, "t", 3)  # events 1-3
    await charge(ledger, store, "t", 2)  # events 4-5
    assert len(ledger.charges["t"]) == 2 and ledger.charged_events("t") == {1, 2, 3, 4, 5}
    ledger.settle("t")  # the run ended: one record
    assert len(ledger.charges["t"]) == 1 and ledger.charged_events("t") == {1, 2, 3, 4, 5}
    await charge(ledger, store, "t", 2)  # a later turn: events 6-7
    assert await ledger.void("t", 5) == 4  # only that turn's run is voided
    channel = ledger.peek("ch")
    assert channel is not None and channel.charged == 50 and channel.tokens == 10 and channel.reserved == 0
    receipt = await ledger.close("ch", ChannelState.CLOSED, "2026-01-01T00:01:00.000Z")
    (bill,) = receipt.tasks
    assert (bill.tokens, bill.charged, bill.voided_tokens, bill.voided) == (10, 50, 4, 20)
    if kind == "sqlite":
        await store.close()
        again_store = await SQLiteStore.open(path)
        again = await SQLiteLedger.open_on(again_store)
        assert (await again.receipt("ch")).to_wire() == receipt.to_wire()  # the same receipt after a restart
        assert again.charged_events("t") == {1, 2, 3, 4, 5, 6, 7}
        await again_store.close()
    else:
        await store.close()
