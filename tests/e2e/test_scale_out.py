"""Scale-out on Redis (issue 10), with real OS processes: 2 API replicas and 2 workers on one redis-server.

Each test starts its own Redis (AOF on) and four ``a2a-server serve --store redis://…`` processes: two with
``--role api`` (A and B), two with ``--role worker``. Workers hold a 2 s lease, so a lost worker's task is taken
over within a few seconds.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, start_server, stop_server
from tests.e2e.test_events import finished, read, send, text_of
from tests.e2e.wire import id_seq, result_frames
from tests.redis_server import RedisServer

WORDS = [f"w{i:02d} " for i in range(40)]
TEXT = "".join(WORDS)
LEASE = 2.0


def rpc(method: str, params: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def send_subscribe(task_id: str, delay_ms: int, text: str = TEXT) -> dict[str, Any]:
    params = {"id": task_id, "message": {"role": "user", "parts": [{"type": "text", "text": text}]}}
    params["metadata"] = {"delay_ms": delay_ms}
    return rpc("tasks/sendSubscribe", params)


def resubscribe(url: str, task_id: str, last_event_id: str) -> list[tuple[str, dict[str, Any]]]:
    body = rpc("tasks/resubscribe", {"id": task_id})
    with httpx.stream("POST", url + "/a2a", json=body, headers={"Last-Event-ID": last_event_id}, timeout=60) as r:
        assert r.status_code == 200, r.read()
        return list(result_frames(r))


def get(url: str, task_id: str) -> dict[str, Any]:
    reply: dict[str, Any] = httpx.post(url + "/a2a", json=rpc("tasks/get", {"id": task_id}), timeout=30).json()
    return reply


@dataclass
class Cluster:
    redis: RedisServer
    a: ServerProcess
    b: ServerProcess
    workers: list[ServerProcess]

    def all(self) -> list[ServerProcess]:
        return [self.a, self.b, *self.workers]

    def runner_of(self, task_id: str, timeout: float = 10) -> ServerProcess:
        """The one worker that runs (or ran) the task: the one whose ``a2a_tasks_active`` gauge is up while it
        runs (one task at a time in these tests), or whose log has the run's outcome line once it ended. (The
        "submitted -> working" steps are DEBUG lines since one INFO line per turn.)"""
        ended = re.compile(rf"task {re.escape(task_id)} \[\w+\] ")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            holders = [w for w in self.workers if active_runs(w) > 0] or [
                w for w in self.workers if ended.search(w.log())
            ]
            if len(holders) == 1:
                return holders[0]
            time.sleep(0.05)
        raise AssertionError(f"no single worker claimed {task_id}:\n" + "\n".join(w.log() for w in self.workers))


def active_runs(worker: ServerProcess) -> float:
    """The worker's ``a2a_tasks_active`` gauge: how many tasks it runs now."""
    metrics = httpx.get(worker.url + "/metrics", timeout=10).text
    found = re.search(r"^a2a_tasks_active (\S+)$", metrics, re.M)
    assert found is not None, metrics
    return float(found.group(1))


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisServer) -> Iterator[Cluster]:
    env = {"A2A_LEASE_SECONDS": str(LEASE), "A2A_CANCEL_GRACE": "1"}
    store = ("--store", redis_server.url)
    procs: list[ServerProcess] = []
    try:
        for role in ("api", "api", "worker", "worker"):
            procs.append(start_server(tmp_path, *store, "--role", role, "--keepalive-seconds", "1", env=env))
        yield Cluster(redis_server, procs[0], procs[1], procs[2:])
    finally:
        for p in procs:
            stop_server(p)


def assert_alive(cluster: Cluster) -> None:
    for p in cluster.all():
        assert p.process.poll() is None, f"a process died:\n{p.log()}"


# ---------------------------------------------------------------- any replica serves any task


def test_a_task_started_through_a_streams_through_b_and_resumes_there_exactly(cluster: Cluster) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream("POST", cluster.a.url + "/a2a", json=send_subscribe("ab-1", 40), timeout=60) as r:
        for item in result_frames(r):
            seen.append(item)
            if len(seen) == 8:
                break  # the client goes away from A; the task goes on on its worker
    rest = resubscribe(cluster.b.url, "ab-1", seen[-1][0])
    everything = resubscribe(cluster.b.url, "ab-1", "0")
    ids = [id_seq(i) for i, _ in seen + rest]
    assert ids == list(range(1, len(ids) + 1)), "a gap or a duplicate between A and B"
    assert [r for _, r in seen + rest] == [r for _, r in everything]
    assert rest[-1][1]["status"]["state"] == "completed" and rest[-1][1]["final"] is True
    streamed = "".join(r["artifact"]["parts"][0]["text"] for _, r in seen + rest if "artifact" in r)
    assert streamed == TEXT
    for replica in (cluster.a, cluster.b):
        task = get(replica.url, "ab-1")["result"]
        assert task["status"]["state"] == "completed" and task["artifacts"][0]["parts"][0]["text"] == TEXT
    assert_alive(cluster)


def test_the_api_replicas_run_no_skill_and_the_workers_answer_no_a2a_request(cluster: Cluster) -> None:
    worker = cluster.workers[0]
    assert httpx.post(worker.url + "/a2a", json=rpc("tasks/get", {"id": "x"})).status_code == 404
    assert httpx.get(worker.url + "/readyz").json() == {"ready": True}
    assert "a2a_" in httpx.get(worker.url + "/metrics").text
    assert httpx.get(cluster.a.url + "/readyz").json() == {"ready": True}
    done = httpx.post(cluster.a.url + "/a2a", json=rpc("tasks/send", {"id": "role-1", "message": {
        "role": "user", "parts": [{"type": "text", "text": "who runs me"}]}}), timeout=30).json()["result"]  # fmt: skip
    assert done["status"]["state"] == "completed"
    assert "-> working" not in cluster.a.log() + cluster.b.log()  # the API replicas ran nothing
    assert cluster.runner_of("role-1") in cluster.workers


# ---------------------------------------------------------------- a task survives its worker


def test_a_worker_killed_mid_run_loses_its_task_to_the_other_which_completes_it(cluster: Cluster) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    started = time.monotonic()
    with httpx.stream("POST", cluster.a.url + "/a2a", json=send_subscribe("kill-1", 60), timeout=60) as r:
        for item in result_frames(r):
            seen.append(item)
            if len(seen) == 8:
                victim = cluster.runner_of("kill-1")
                victim.process.send_signal(signal.SIGKILL)
                victim.process.wait(timeout=10)
    # the same stream went on: requeued on the other worker, then the whole answer again, then completed
    ids = [id_seq(i) for i, _ in seen]
    assert ids == list(range(1, len(ids) + 1)), "a gap or a duplicate across the worker's death"
    states = [r["status"]["state"] for _, r in seen if "status" in r]
    said = [r["status"].get("message", {}).get("parts", [{}])[0].get("text") for _, r in seen if "status" in r]
    requeued = [t for t in said if t and t.startswith("requeued after worker loss")]
    assert requeued == ["requeued after worker loss; the output streamed so far is discarded and restarts from the "
                        "beginning"], said  # fmt: skip
    assert states[-1] == "completed" and seen[-1][1]["final"] is True
    survivor = next(w for w in cluster.workers if w is not victim)
    assert "claimed by runner" in survivor.log() and "(delivery 2)" in survivor.log()
    task = get(cluster.b.url, "kill-1")["result"]
    # the re-run restarted the artifact: the task holds the whole answer once, not the partial one beside it
    assert task["status"]["state"] == "completed" and len(task["artifacts"]) == 1, task["artifacts"]
    assert task["artifacts"][0]["parts"][0]["text"] == TEXT
    assert resubscribe(cluster.b.url, "kill-1", "0") == seen  # the log holds exactly what was streamed
    print(f"SIGKILL → completed on the other worker in {time.monotonic() - started:.1f} s (lease {LEASE} s)")
    assert all(p.process.poll() is None for p in (cluster.a, cluster.b, survivor))


def test_a_paused_worker_past_its_lease_is_fenced_when_it_wakes(cluster: Cluster) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream("POST", cluster.a.url + "/a2a", json=send_subscribe("stop-1", 60), timeout=60) as r:
        for item in result_frames(r):
            seen.append(item)
            if len(seen) == 6:
                paused = cluster.runner_of("stop-1")
                paused.process.send_signal(signal.SIGSTOP)
            if len(seen) > 6 and "status" in item[1] and "requeued" in json.dumps(item[1]):
                time.sleep(0.5)
                paused.process.send_signal(signal.SIGCONT)  # it wakes past its lease, mid-run on the other
    ids = [id_seq(i) for i, _ in seen]
    assert ids == list(range(1, len(ids) + 1)), "the woken worker wrote into the task"
    assert seen[-1][1]["status"]["state"] == "completed"
    deadline = time.monotonic() + 10
    fenced = re.compile(r"stop-1: (stopped writing, another runner holds it now|its lease went to another runner)")
    while not fenced.search(paused.log()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fenced.search(paused.log()), paused.log()
    assert resubscribe(cluster.b.url, "stop-1", "0") == seen
    assert_alive(cluster)


# ---------------------------------------------------------------- cancel from any replica


def test_cancel_through_b_stops_a_run_started_through_a_within_the_bound(cluster: Cluster) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream("POST", cluster.a.url + "/a2a", json=send_subscribe("cancel-1", 100), timeout=60) as r:
        for item in result_frames(r):
            seen.append(item)
            if len(seen) == 5:
                asked = time.monotonic()
                reply = httpx.post(cluster.b.url + "/a2a", json=rpc("tasks/cancel", {"id": "cancel-1"}), timeout=30)
                answered = time.monotonic()
        ended = time.monotonic()
    assert reply.json()["result"]["status"]["state"] == "canceled"
    assert seen[-1][1]["status"]["state"] == "canceled" and seen[-1][1]["final"] is True
    ids = [id_seq(i) for i, _ in seen]
    assert ids == list(range(1, len(ids) + 1))
    streamed = "".join(r["artifact"]["parts"][0]["text"] for _, r in seen if "artifact" in r)
    assert len(streamed) < len(TEXT)  # stopped, not run to the end
    print(f"cancel through B: answered in {(answered - asked) * 1000:.0f} ms, A's stream closed "
          f"{(ended - asked) * 1000:.0f} ms after the request")  # fmt: skip
    # the skill sleeps 100 ms between words: a cancel that took the 100 ms bound would let one more word out at most
    assert ended - asked < 1.0
    assert_alive(cluster)


# ---------------------------------------------------------------- Redis restarted mid-run


def test_a_redis_restart_mid_run_loses_nothing_and_crashes_nothing(cluster: Cluster) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    during: list[httpx.Response] = []
    acknowledged: list[tuple[str, dict[str, Any]]] = []
    aof = cluster.redis.directory
    loads = cluster.redis.log().count("DB loaded from append only file")
    with httpx.stream("POST", cluster.a.url + "/a2a", json=send_subscribe("redis-1", 60), timeout=90) as r:
        for item in result_frames(r):
            seen.append(item)
            if len(seen) == 6:
                acknowledged = list(seen)  # streamed to a caller, so committed to Redis before the restart
                before = cluster.redis.process
                cluster.redis.stop()  # SIGTERM: the AOF is flushed, as in an operator's restart
                during.append(httpx.post(cluster.b.url + "/a2a", json=rpc("tasks/get", {"id": "redis-1"}), timeout=30))
                during.append(httpx.get(cluster.b.url + "/a2a/rest/v1/tasks/redis-1", timeout=30))
                during.append(httpx.get(cluster.b.url + "/readyz", timeout=30))
                time.sleep(0.5)
                cluster.redis.start()
    rpc_error = during[0].json()["error"]
    assert rpc_error["code"] == -32603 and "Redis" in rpc_error["message"], rpc_error
    assert during[1].status_code == 503, during[1].text
    assert during[2].status_code == 503 and "Redis" in during[2].text
    ids = [id_seq(i) for i, _ in seen]
    assert ids == list(range(1, len(ids) + 1)), "a gap or a duplicate across the Redis restart"
    assert seen[-1][1]["status"]["state"] == "completed"
    assert resubscribe(cluster.b.url, "redis-1", "0") == seen  # every event streamed is still in the log
    assert get(cluster.b.url, "redis-1")["result"]["status"]["state"] == "completed"
    assert httpx.get(cluster.b.url + "/readyz").json() == {"ready": True}
    # a restart, not only a pause: a new redis-server process, on the same port, loaded the same AOF directory
    assert cluster.redis.process is not None and cluster.redis.process is not before
    assert cluster.redis.directory == aof and any(aof.rglob("*.aof")), list(aof.rglob("*"))
    assert cluster.redis.log().count("DB loaded from append only file") > loads, cluster.redis.log()
    # what was acknowledged before the restart is all still there, read from the start on both replicas
    for replica in (cluster.a, cluster.b):
        assert resubscribe(replica.url, "redis-1", "0")[: len(acknowledged)] == acknowledged
    # new tasks work through both replicas once Redis is back
    for replica, name in ((cluster.a, "after-a"), (cluster.b, "after-b")):
        done = httpx.post(replica.url + "/a2a", json=rpc("tasks/send", {"id": name, "message": {
            "role": "user", "parts": [{"type": "text", "text": "back again"}]}}), timeout=60).json()  # fmt: skip
        assert done["result"]["status"]["state"] == "completed", done
        assert done["result"]["artifacts"][0]["parts"][0]["text"] == "back again"
    # the global stream (/a2a/events from its beginning) holds every event of the task once, in order, then the new
    everything = read(cluster.b.url, finished("redis-1", "after-a", "after-b"), last=0)
    cursors = [c for c, _ in everything]
    assert cursors == sorted(set(cursors))
    ours = [d for _, d in everything if "redis-1" in json.dumps(d)]
    assert len(ours) == len(seen), (len(ours), len(seen))
    assert text_of(everything, "redis-1") == "".join(
        r["artifact"]["parts"][0]["text"] for _, r in seen if "artifact" in r
    )
    assert_alive(cluster)


# ---------------------------------------------------------------- /a2a/events across replicas


def test_a2a_events_on_b_carries_the_tasks_sent_through_a_in_the_global_order(cluster: Cluster) -> None:
    first = send(cluster.a.url, "one two three", "ctx-x")
    second = send(cluster.b.url, "four five", "ctx-x")
    frames = read(cluster.b.url, finished(first, second))
    cursors = [c for c, _ in frames]
    assert cursors == sorted(set(cursors))  # increasing, each once
    assert (text_of(frames, first), text_of(frames, second)) == ("one two three", "four five")
    resumed = read(cluster.a.url, finished(second), last=cursors[2])  # resume on the other replica
    assert [c for c, _ in resumed] == cursors[3:]
    assert_alive(cluster)


def test_regression_the_card_on_redis_does_not_promise_push_notifications(cluster: Cluster) -> None:
    """The card said ``pushNotifications: true`` on a Redis store, whose push methods all answer -32003 (it keeps
    no push configs yet): a client that trusted the card failed at its first push call. Every generation's card
    says false there now (true on SQLite and memory: tests/e2e/test_schemas.py)."""
    for version in ("1.0", "0.3", None):
        headers = {"A2A-Version": version} if version else {}
        body = httpx.get(cluster.a.url + "/.well-known/agent-card.json", headers=headers, timeout=10).json()
        assert body["capabilities"]["pushNotifications"] is False, (version, body["capabilities"])
    message = {"messageId": "m-push", "role": "user", "parts": [{"kind": "text", "text": "hi"}]}
    sent = httpx.post(cluster.a.url + "/a2a", json=rpc("message/send", {"message": message}), timeout=30).json()
    params = {"taskId": sent["result"]["id"], "pushNotificationConfig": {"url": "http://127.0.0.1:9/hook"}}
    answer = httpx.post(cluster.a.url + "/a2a", json=rpc("tasks/pushNotificationConfig/set", params), timeout=10)
    assert answer.json()["error"]["code"] == -32003, answer.text  # what the card now says
