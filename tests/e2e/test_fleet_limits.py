"""Caller limits on a Redis store hold for the fleet, not per replica (``backends/redis_limits.py``).

Two real server processes share one real redis-server and one keys file: a caller's burst and its running
tasks are counted once across both, so going through the other replica does not buy a second allowance; another
caller's allowance is its own. Without Redis each process counts for itself (tests/e2e/test_caller_limits.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, start_server, stop_server
from tests.e2e.auth_harness import add_key
from tests.redis_server import RedisServer

V10 = {"A2A-Version": "1.0"}


def _send(text: str, **metadata: Any) -> dict[str, Any]:
    message = {"messageId": f"m-{time.monotonic_ns()}", "role": "ROLE_USER", "parts": [{"text": text}]}
    params = {"message": message, "configuration": {"returnImmediately": True}, "metadata": metadata}
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}


@pytest.fixture
def pair(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[ServerProcess, ServerProcess, dict[str, str]]]:
    keys_file = tmp_path / "keys.json"
    keys = {name: add_key(keys_file, name) for name in ("alice", "bob")}
    # a tiny rate (bursts of 6, refilled at 0.2/s: one token in 5 s) and two running tasks per caller
    env = {"A2A_RATE_LIMIT": "0.2", "A2A_RATE_BURST": "6", "A2A_MAX_RUNNING_TASKS": "2"}
    args = ("--store", redis_server.url, "--api-keys-file", str(keys_file), "--keepalive-seconds", "1")
    a = start_server(tmp_path, *args, env=env)
    try:
        b = start_server(tmp_path, *args, env=env)
    except BaseException:
        stop_server(a)
        raise
    try:
        yield a, b, keys
    finally:
        stop_server(a)
        stop_server(b)


def _post(url: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + "/a2a", json=body, headers={**V10, "Authorization": f"Bearer {key}"}, timeout=30)


def test_one_burst_per_caller_across_replicas(pair: tuple[ServerProcess, ServerProcess, dict[str, str]]) -> None:
    a, b, keys = pair
    body = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}
    # six requests alternate between the replicas: the one bucket of 6 is empty after them
    statuses = [_post((a, b)[i % 2].url, keys["alice"], body).status_code for i in range(6)]
    assert statuses == [200] * 6, statuses
    refused = [_post(server.url, keys["alice"], body) for server in (a, b)]
    for answer in refused:  # the seventh and eighth, through either replica
        assert answer.status_code == 429, answer.text
        assert float(answer.headers["Retry-After"]) >= 1, answer.headers
        assert "rate_limit" in answer.text, answer.text
    # bob's bucket is his own
    assert _post(b.url, keys["bob"], body).status_code == 200


def test_running_tasks_are_capped_across_replicas(pair: tuple[ServerProcess, ServerProcess, dict[str, str]]) -> None:
    a, b, keys = pair
    # two long tasks, one through each replica (echo, 40 words 250 ms apart: ~10 s)
    long_text = " ".join(f"w{i}" for i in range(40))
    started = [_post(server.url, keys["alice"], _send(long_text, delay_ms=250)).json() for server in (a, b)]
    assert all("result" in s for s in started), started
    # a third, through either replica: over the cap of two
    third = _post(a.url, keys["alice"], _send("one more"))
    assert third.status_code == 429, third.text
    assert "max_running_tasks" in third.text and "has 2 running" in third.text, third.text
    # another caller is not held back by alice's tasks
    assert "result" in _post(b.url, keys["bob"], _send("bob's")).json()
