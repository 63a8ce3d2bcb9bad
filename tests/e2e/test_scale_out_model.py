"""Scale-out on Redis with the real model (issue 10): a worker SIGKILLed in mid-generation loses its task to the other.

One API replica and two ``--role worker --skills inference`` processes (SmolLM2, one ggml thread each, to spare the
two cores) on one redis-server started by the test. A 1.0 ``SendStreamingMessage`` through the replica streams a
long answer; once some of it has streamed, the worker that holds the task is killed with SIGKILL. Its lease expires,
the other worker claims the job again (delivery 2), and the same stream goes on: a status that says the task was
requeued and that its partial output restarts, then the answer again from the start under the same artifact id with
``append: false`` (replace), then completed. Every SSE id appears once, in order.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, start_server, stop_server
from tests.e2e.test_scale_out import active_runs
from tests.e2e.wire import V10_HEADERS, id_seq, result_frames, rpc, send10
from tests.redis_server import RedisServer

pytestmark = pytest.mark.model
LEASE = 3.0  # seconds: a lost worker's task is taken over within a few seconds
TIMEOUT = 240.0  # generous: two model processes and other jobs share two cores; a hang still fails
PROMPT = "Write a long story about a dragon who learns to bake bread. Tell it in many paragraphs."
MAX_TOKENS = 200
KILL_AFTER = 4  # artifact chunks streamed before the holder is killed

Frame = tuple[str, dict[str, Any]]


def said(result: dict[str, Any]) -> str:
    """The text of a status update's message ("" when it has none)."""
    parts = result["statusUpdate"]["status"].get("message", {}).get("parts", [])
    return "".join(p.get("text", "") for p in parts)


def task_of(result: dict[str, Any]) -> str:
    if "task" in result:
        return str(result["task"]["id"])
    update = result.get("statusUpdate") or result.get("artifactUpdate") or {}
    return str(update.get("taskId", ""))


def wait_ready(server: ServerProcess) -> None:
    deadline = time.monotonic() + TIMEOUT
    while (ready := httpx.get(server.url + "/readyz", timeout=10)).status_code != 200:
        assert server.process.poll() is None, server.log()
        assert time.monotonic() < deadline, f"not ready: {ready.text}\n{server.log()}"
        time.sleep(0.2)


def holder(workers: list[ServerProcess]) -> ServerProcess:
    """The one worker that runs a task now (its a2a_tasks_active gauge; only one task runs in the test)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        holders = [w for w in workers if active_runs(w) > 0]
        if len(holders) == 1:
            return holders[0]
        time.sleep(0.05)
    raise AssertionError("no single worker runs the task:\n" + "\n".join(w.log() for w in workers))


@pytest.fixture
def model_cluster(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[ServerProcess, list[ServerProcess]]]:
    env = {"A2A_LEASE_SECONDS": str(LEASE), "A2A_INFERENCE_THREADS": "1"}
    store = ("--store", redis_server.url)
    procs: list[ServerProcess] = []
    try:
        procs.append(start_server(tmp_path, *store, "--role", "api", "--keepalive-seconds", "1", skills="inference"))
        for _ in range(2):  # one after the other: the second loads its model once the first is done with the cores
            procs.append(start_server(tmp_path, *store, "--role", "worker", skills="inference", env=env))
            wait_ready(procs[-1])
        yield procs[0], procs[1:]
    finally:
        for p in procs:
            stop_server(p)


def test_a_worker_killed_mid_generation_loses_the_task_to_the_other_which_restarts_the_answer(
    model_cluster: tuple[ServerProcess, list[ServerProcess]],
) -> None:
    api, workers = model_cluster
    params = send10(PROMPT, temperature=0, max_tokens=MAX_TOKENS)
    seen: list[Frame] = []
    task_id, victim, chunks_before_kill = "", None, 0
    started = time.monotonic()
    request: dict[str, Any] = rpc("SendStreamingMessage", params)
    headers = dict(V10_HEADERS)
    while time.monotonic() - started < TIMEOUT:  # the stream, resumed with Last-Event-ID if it drops
        try:
            with httpx.stream("POST", api.url + "/a2a", json=request, headers=headers, timeout=TIMEOUT) as r:
                assert r.status_code == 200, r.read()
                for item in result_frames(r):
                    seen.append(item)
                    task_id = task_id or task_of(item[1])
                    chunks = sum("artifactUpdate" in result for _, result in seen)
                    if victim is None and chunks == KILL_AFTER:
                        victim = holder(workers)
                        victim.process.send_signal(signal.SIGKILL)
                        victim.process.wait(timeout=10)
                        chunks_before_kill = chunks
        except httpx.TransportError:
            pass
        if seen and "statusUpdate" in seen[-1][1] and seen[-1][1]["statusUpdate"]["status"]["state"] in (
            "TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED"
        ):  # fmt: skip
            break
        assert task_id, f"the stream dropped before it named its task: {seen}"
        request = rpc("SubscribeToTask", {"id": task_id})
        headers = {**V10_HEADERS, "Last-Event-ID": next(i for i, _ in reversed(seen) if i)}
    elapsed = time.monotonic() - started
    assert victim is not None, f"the answer ended before {KILL_AFTER} chunks: {seen}"
    survivor = next(w for w in workers if w is not victim)

    # every event id once, in order, across the worker's death (and any resume)
    ids = [id_seq(i) for i, _ in seen if i]
    assert ids == list(range(ids[0], ids[0] + len(ids))), f"a gap or a duplicate: {ids}"
    statuses = [(n, r["statusUpdate"]) for n, (_, r) in enumerate(seen) if "statusUpdate" in r]
    assert statuses[-1][1]["status"]["state"] == "TASK_STATE_COMPLETED", statuses[-1]
    # the stream shows the requeue, and says that the partial answer restarts
    requeues = [n for n, _ in statuses if said(seen[n][1]).startswith("requeued after worker loss")]
    assert len(requeues) == 1, [said(seen[n][1]) for n, _ in statuses]
    requeue = requeues[0]
    assert "restarts from the beginning" in said(seen[requeue][1])
    before = [r["artifactUpdate"] for _, r in seen[:requeue] if "artifactUpdate" in r]
    after = [r["artifactUpdate"] for _, r in seen[requeue:] if "artifactUpdate" in r]
    assert len(before) >= chunks_before_kill and after, (before, after)
    # the re-run restarts the same artifact: same id, its first chunk replaces (append false), the rest append
    artifact_id = before[0]["artifact"]["artifactId"]
    assert {a["artifact"]["artifactId"] for a in before + after} == {artifact_id}
    assert not after[0].get("append", False) and all(a.get("append") for a in after[1:])
    answer = "".join(p.get("text", "") for a in after for p in a["artifact"]["parts"])
    assert answer.strip(), "the re-run streamed an empty answer"
    assert re.search(r"\(delivery 2\)", survivor.log()), survivor.log()

    # the stored task holds the re-run's answer only, under the one artifact
    got = httpx.post(api.url + "/a2a", json=rpc("GetTask", {"id": task_id}), headers=V10_HEADERS, timeout=30).json()
    task = got["result"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert [a["artifactId"] for a in task["artifacts"]] == [artifact_id]
    assert "".join(p.get("text", "") for p in task["artifacts"][0]["parts"]) == answer
    print(f"SIGKILL after {chunks_before_kill} chunks -> completed on the other worker in {elapsed:.1f} s (lease "
          f"{LEASE} s); {len(before)} chunks lost, {len(after)} streamed again, {len(answer)} chars")  # fmt: skip
    assert api.process.poll() is None and survivor.process.poll() is None
