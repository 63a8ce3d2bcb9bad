"""The seed's whole flow on a real server: ``a2a-server channels open`` → stream → cancel early → ``channels close``.

The stream is the plain token stream in the seed's typed shape (what its TypeScript client reads); after the
cancel it is read to its end, so the client holds every token event that was delivered (committed), and the
receipt must charge exactly those: token events received * tokenRate.
"""

from __future__ import annotations

import json
import uuid

import httpx

from tests.conftest import ServerProcess
from tests.e2e.cli_harness import run_cli

RATE = 100_000_000_000_000  # 0.0001 of an 18-decimal unit, as in the seed
DEPOSIT = 1_000_000_000_000_000_000


def test_open_stream_cancel_close_charges_what_the_client_received(server: ServerProcess) -> None:
    opened = run_cli("channels", "open", server.url, "--deposit", str(DEPOSIT), "--rate", str(RATE), "--json")
    assert opened.returncode == 0, opened.stderr
    channel = json.loads(opened.stdout)
    assert channel["state"] == "open" and channel["deposit"] == str(DEPOSIT)

    words = " ".join(f"w{i}" for i in range(40))
    message = {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"text": words}],
               "metadata": {"skill": "echo", "delay_ms": 80, "channel": channel["id"]}}  # fmt: skip
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
            "params": {"message": message, "configuration": {"returnImmediately": True}}}  # fmt: skip
    task_id = httpx.post(server.url + "/a2a", json=body, timeout=10).json()["result"]["task"]["id"]

    received: list[dict[str, object]] = []
    url = f"{server.url}/a2a/tasks/{task_id}/stream?format=typed"
    with httpx.stream("GET", url, timeout=20) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            frame = json.loads(line.removeprefix("data: "))
            received.append(frame)
            if frame["type"] == "token" and len([f for f in received if f["type"] == "token"]) == 3:
                cancel = {"jsonrpc": "2.0", "id": 2, "method": "CancelTask", "params": {"id": task_id}}
                answer = httpx.post(server.url + "/a2a", json=cancel, timeout=10).json()
                assert "result" in answer, answer
    tokens = [f for f in received if f["type"] == "token"]
    last = received[-1]
    assert last["type"] == "error" and last["error"] == "canceled"
    assert 3 <= len(tokens) < 40
    usage = last["usage"]
    assert isinstance(usage, dict) and usage["completionTokens"] == len(tokens)
    assert usage["cost"] == str(len(tokens) * RATE)

    shown = run_cli("channels", "get", server.url, channel["id"])
    assert shown.returncode == 0 and f"charged: {len(tokens) * RATE}" in shown.stdout, shown.stdout

    closed = run_cli("channels", "close", server.url, channel["id"])
    assert closed.returncode == 0, closed.stderr
    lines = closed.stdout.splitlines()
    assert lines[0] == f"channelId: {channel['id']}"
    assert f"totalCharged: {len(tokens) * RATE}" in lines
    assert f"refunded: {DEPOSIT - len(tokens) * RATE}" in lines
    assert f"task: {task_id}  tokens={len(tokens)}  charged={len(tokens) * RATE}" in lines
    again = run_cli("channels", "close", server.url, channel["id"], "--json")
    assert json.loads(again.stdout)["totalCharged"] == str(len(tokens) * RATE)  # the same receipt


def test_cli_errors_are_one_clear_line(server: ServerProcess) -> None:
    bad = run_cli("channels", "open", server.url, "--deposit", "1.5", "--rate", "1")
    assert bad.returncode == 1 and "deposit" in bad.stderr and bad.stderr.count("\n") == 1
    missing = run_cli("channels", "get", server.url, "nope")
    assert missing.returncode == 1 and "nope" in missing.stderr
