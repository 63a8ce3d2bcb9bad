"""kill -9 of a real server mid-stream on a billing channel, then a restart on the same SQLite file.

Bug it guards against: a charge written apart from its event (lost, or charged twice on the re-run) after a
crash. Fix: a chunk's charge is inserted in its event's transaction, keyed by (task, event id); the run the dead
process abandoned is refunded at recovery and its re-run is charged once.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ServerProcess, start_server, stop_server
from tests.tally_skill import chunks_of

SKILLS = "tests.tally_skill:TallySkill"
RATE, PER_CHUNK, COUNT = 3, 2, 60


def rpc(url: str, method: str, params: dict[str, Any]) -> Any:
    reply = httpx.post(url + "/a2a", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=20)
    body = reply.json()
    assert "result" in body, body
    return body["result"]


def committed(db: Path, task_id: str) -> tuple[set[int], dict[int, tuple[int, int, int]]]:
    """The ids of the task's committed chunk events, and its charges (event id → tokens, amount, voided)."""
    sql = "SELECT seq, json FROM events WHERE task_id = ? AND kind = 'artifact'"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(sql, (task_id,)).fetchall()
        chunks = {seq for seq, data in rows if any(p.get("text") for p in json.loads(data)["artifact"]["parts"])}
        found = conn.execute("SELECT events, voided FROM charges WHERE task_id = ?", (task_id,)).fetchall()
    charges: dict[int, tuple[int, int, int]] = {}
    for events, voided in found:  # one row per batch: "id:tokens,id:tokens"
        for item in events.split(","):
            seq, _, tokens = item.partition(":")
            assert int(seq) not in charges  # no event charged twice
            charges[int(seq)] = (int(tokens), int(tokens) * RATE, voided)
    return chunks, charges


def test_kill_9_mid_stream_charges_committed_events_and_the_rerun_once(tmp_path: Path) -> None:
    db = tmp_path / "billing.db"
    server: ServerProcess = start_server(tmp_path, "--store", f"sqlite://{db}", skills=SKILLS)
    try:
        channel = rpc(server.url, "OpenChannel", {"deposit": "1000000", "tokenRate": str(RATE)})
        metadata = {"skill": "tally", "channel": channel["id"], "count": COUNT, "per_chunk": PER_CHUNK, "delay_ms": 40}
        message = {"messageId": "crash", "role": "ROLE_USER", "parts": [{"text": "go"}], "metadata": metadata}
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": {"message": message}}
        received, task_id = 0, ""
        with httpx.stream("POST", server.url + "/a2a", json=body, timeout=20) as response:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                result = json.loads(line[5:])["result"]
                task_id = task_id or result["task"]["id"]
                if "artifactUpdate" in result:
                    received += 1
                    if received == 12:
                        server.process.send_signal(signal.SIGKILL)
                        server.process.wait(10)
                        break
    finally:
        stop_server(server)

    chunks, charges = committed(db, task_id)
    # at the crash: exactly one charge per committed chunk event, each its tokens * the rate
    assert len(chunks) >= 12 and set(charges) == chunks
    assert all(tokens == PER_CHUNK and amount == PER_CHUNK * RATE and not voided for tokens, amount, voided in
               charges.values())  # fmt: skip
    abandoned = len(chunks) * PER_CHUNK

    again = start_server(tmp_path, "--store", f"sqlite://{db}", skills=SKILLS)
    try:
        for _ in range(200):  # the re-run: recovery queues it again
            task = rpc(again.url, "GetTask", {"id": task_id})
            if task["status"]["state"] == "TASK_STATE_COMPLETED":
                break
            time.sleep(0.05)  # a bounded poll: 200 * 50 ms
        assert task["status"]["state"] == "TASK_STATE_COMPLETED", task
        assert chunks_of(task) == COUNT
        got = rpc(again.url, "GetChannel", {"id": channel["id"]})
        assert got["charged"] == str(COUNT * PER_CHUNK * RATE) and got["tokens"] == COUNT * PER_CHUNK
        receipt = rpc(again.url, "CloseChannel", {"id": channel["id"]})
    finally:
        stop_server(again)
    assert receipt["totalCharged"] == str(COUNT * PER_CHUNK * RATE)
    assert int(receipt["refunded"]) == 1_000_000 - COUNT * PER_CHUNK * RATE
    (bill,) = receipt["tasks"]
    assert bill["tokens"] == COUNT * PER_CHUNK and bill["abandoned"]["tokens"] == abandoned
    # the log and the ledger agree: every committed chunk event has one charge; the abandoned run's are voided
    chunks_after, charges_after = committed(db, task_id)
    assert set(charges_after) == chunks_after
    live = [seq for seq, (_, _, voided) in charges_after.items() if not voided]
    assert len(live) == COUNT and sum(charges_after[s][1] for s in live) == COUNT * PER_CHUNK * RATE
