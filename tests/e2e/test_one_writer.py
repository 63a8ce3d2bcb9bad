"""One writer per store: a second server on the same SQLite file refuses to start and touches nothing.

Bug: ``make serve`` in one terminal and ``a2a-server serve --port 9000`` in another both opened the default
``tasks.db``; the second one's start-up recovery marked the first one's running tasks ``failed`` while the first
went on writing to them (a ``failed`` event in the middle of a task that later completed, and a gap on the
stream). Fix: the store is held under an OS lock (flock on ``<file>.lock``) for the life of the process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port, start_server, stop_server
from tests.e2e.wire import rpc, send01, uid

TIMEOUT = 30.0


def serve(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "a2a_server", "serve", "--port", str(free_port()), "--skills", "echo",
           "--store", f"sqlite://{db}", *args]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)


def test_a_second_server_on_the_same_file_refuses_and_the_first_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    first = start_server(tmp_path, "--store", f"sqlite://{db}")
    try:
        # a task running while the second server tries to start
        message = {
            "kind": "message",
            "messageId": uid(),
            "role": "user",
            "parts": [{"kind": "text", "text": "w " * 40}],
        }
        params = {
            "message": message,
            "configuration": {"blocking": False},
            "metadata": {"skill": "echo", "delay_ms": 40},
        }
        running = httpx.post(first.url + "/a2a", json=rpc("message/send", params), timeout=TIMEOUT).json()["result"]
        second = serve(db)
        assert second.returncode != 0
        said = second.stdout + second.stderr
        assert f"pid {first.process.pid}" in said and "--store" in said, said
        assert "Traceback" not in said, said
        # nothing was touched: the first server still serves and writes
        still = rpc("tasks/send", send01("still here", f"after-{uid()}", skill="echo"))
        done = httpx.post(first.url + "/a2a", json=still, timeout=TIMEOUT).json()
        assert done["result"]["status"]["state"] == "completed"
        with httpx.stream("POST", first.url + "/a2a", json=rpc("tasks/resubscribe", {"id": running["id"]}),
                          headers={"Last-Event-ID": "0"}, timeout=TIMEOUT) as r:  # fmt: skip
            lines = list(r.iter_lines())
        ids = [int(line.split(":")[-1]) for line in lines if line.startswith("id:")]
        states = [
            json.loads(line[5:])["result"].get("status", {}).get("state") for line in lines if line.startswith("data:")
        ]
        assert ids == list(range(1, len(ids) + 1)), ids  # no gap
        assert "failed" not in states and states[-1] == "completed", states
    finally:
        stop_server(first)


def test_a_store_left_by_a_killed_server_is_taken_over_at_once(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    first = start_server(tmp_path, "--store", f"sqlite://{db}")
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=TIMEOUT)
    second = start_server(tmp_path, "--store", f"sqlite://{db}")  # no lock file to delete by hand
    try:
        assert httpx.get(second.url + "/readyz", timeout=TIMEOUT).status_code == 200
    finally:
        stop_server(second)


def test_roles_other_than_all_need_a_shared_store(tmp_path: Path) -> None:
    for role in ("api", "worker"):
        result = serve(tmp_path / "tasks.db", "--role", role)
        said = result.stdout + result.stderr
        assert result.returncode != 0 and "--role all" in said and "Traceback" not in said, said
