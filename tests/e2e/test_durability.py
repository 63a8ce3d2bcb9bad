"""Durable tasks and exact resume across a crash (kill -9) and a graceful shutdown, on SQLite."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ServerProcess, start_server, stop_server
from tests.e2e.wire import id_seq, result_frames

WORDS = [f"w{i:02d} " for i in range(60)]
TEXT = "".join(WORDS)


def rpc(method: str, params: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def resubscribe(url: str, task_id: str, last_event_id: str) -> list[tuple[str, dict[str, Any]]]:
    body = rpc("tasks/resubscribe", {"id": task_id})
    headers = {"Last-Event-ID": last_event_id}
    with httpx.stream("POST", url + "/a2a", json=body, headers=headers, timeout=20) as response:
        assert response.status_code == 200, response.read()
        return list(result_frames(response))


def test_kill_9_mid_stream_then_restart_resumes_exactly(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    server = start_server(tmp_path, "--store", f"sqlite://{db}")
    try:
        done = httpx.post(server.url + "/a2a", json=rpc("tasks/send", {"task": {"skill": "echo", "input": "keep me"}}))
        completed_id = done.json()["result"]["id"]
        before: list[tuple[str, dict[str, Any]]] = []
        params = {"id": "crash-1", "message": {"role": "user", "parts": [{"type": "text", "text": TEXT}]}}
        params["metadata"] = {"delay_ms": 50}
        with httpx.stream("POST", server.url + "/a2a", json=rpc("tasks/sendSubscribe", params), timeout=20) as r:
            for item in result_frames(r):
                before.append(item)
                if len(before) == 12:
                    server.process.send_signal(signal.SIGKILL)
                    server.process.wait(timeout=10)
                    break
    finally:
        stop_server(server)

    # the database a crashed process left behind is sound
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    restarted = start_server(tmp_path, "--store", f"sqlite://{db}")
    try:
        after = resubscribe(restarted.url, "crash-1", before[-1][0])
        everything = resubscribe(restarted.url, "crash-1", "0")
        ids = [id_seq(i) for i, _ in before + after]
        assert ids == list(range(1, len(ids) + 1)), "a gap or a duplicate across the crash"
        assert [r for _, r in before + after] == [r for _, r in everything]
        final = after[-1][1]
        assert final["status"]["state"] == "failed" and final["final"] is True
        assert final["status"]["message"]["parts"][0]["text"] == "interrupted by server restart"
        streamed = "".join(r["artifact"]["parts"][0]["text"] for _, r in before + after if "artifact" in r)
        assert TEXT.startswith(streamed) and len(streamed) >= len(WORDS[0]) * 9

        task = httpx.post(restarted.url + "/a2a", json=rpc("tasks/get", {"id": "crash-1"})).json()["result"]
        assert task["status"]["state"] == "failed"
        kept = httpx.post(restarted.url + "/a2a", json=rpc("tasks/get", {"id": completed_id})).json()["result"]
        assert kept["status"]["state"] == "completed"
        assert kept["artifacts"][0]["parts"][0]["text"] == "keep me"
        history = resubscribe(restarted.url, completed_id, "0")
        assert [r["status"]["state"] for _, r in history if "status" in r] == ["submitted", "working", "completed"]
    finally:
        stop_server(restarted)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_sigterm_lets_short_tasks_finish_and_fails_the_rest_with_a_final_event(tmp_path: Path) -> None:
    server: ServerProcess = start_server(tmp_path, env={"A2A_SHUTDOWN_GRACE": "1"})
    try:
        params = {"id": "slow-1", "message": {"role": "user", "parts": [{"type": "text", "text": TEXT}]}}
        params["metadata"] = {"delay_ms": 200}
        seen: list[dict[str, Any]] = []
        with httpx.stream("POST", server.url + "/a2a", json=rpc("tasks/sendSubscribe", params), timeout=30) as r:
            for _, result in result_frames(r):
                seen.append(result)
                if len(seen) == 3:
                    started = time.monotonic()
                    server.process.send_signal(signal.SIGTERM)
        # the open stream got its final event: failed, with the reason
        assert seen[-1]["final"] is True and seen[-1]["status"]["state"] == "failed"
        assert seen[-1]["status"]["message"]["parts"][0]["text"] == "interrupted by server shutdown"
        # uvicorn re-raises the SIGTERM it handled once its shutdown is complete
        assert server.process.wait(timeout=20) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 15
        assert "Application shutdown complete" in server.log()
    finally:
        stop_server(server)
