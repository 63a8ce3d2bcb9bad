"""GET /a2a/events: one stream of many tasks, against real server processes (SQLite file, restarts)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, start_server, stop_server
from tests.e2e.wire import rpc, uid

TIMEOUT = 30.0
V10 = {"A2A-Version": "1.0"}
Frame = tuple[int, dict[str, Any]]


def send(url: str, text: str, context: str, *, blocking: bool = True, **metadata: Any) -> str:
    message = {"messageId": uid(), "role": "ROLE_USER", "parts": [{"text": text}], "contextId": context}
    params = {"message": message, "metadata": {"skill": "echo", **metadata}}
    if not blocking:
        params["configuration"] = {"returnImmediately": True}
    answer = httpx.post(url + "/a2a", json=rpc("SendMessage", params), headers=V10, timeout=TIMEOUT).json()
    task_id: str = answer["result"]["task"]["id"]
    return task_id


def read(url: str, until: Callable[[list[Frame]], bool], query: str = "", last: int | None = None) -> list[Frame]:
    """Frames of /a2a/events (raw wire) until ``until(frames)`` holds; then the client disconnects."""
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    out: list[Frame] = []
    with httpx.stream("GET", f"{url}/a2a/events{query}", headers=headers, timeout=TIMEOUT) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        frame_id: int | None = None
        for line in r.iter_lines():
            if line.startswith("id:"):
                frame_id = int(line[3:].strip())
            elif line.startswith("data:"):
                assert frame_id is not None, "every frame has an id"
                out.append((frame_id, json.loads(line[5:])))
                if until(out):
                    return out
    raise AssertionError(f"the stream ended after {len(out)} frames")


def task_of(data: dict[str, Any]) -> str:
    ((kind, body),) = data.items()
    assert kind in ("statusUpdate", "artifactUpdate", "message"), kind
    task_id: str = body["taskId"]
    return task_id


def finished(*task_ids: str) -> Callable[[list[Frame]], bool]:
    def done(frames: list[Frame]) -> bool:
        ended = {
            d["statusUpdate"]["taskId"]
            for _, d in frames
            if d.get("statusUpdate", {}).get("status", {}).get("state") == "TASK_STATE_COMPLETED"
        }
        return set(task_ids) <= ended

    return done


def text_of(frames: list[Frame], task_id: str) -> str:
    return "".join(
        p.get("text", "")
        for _, d in frames
        if "artifactUpdate" in d and d["artifactUpdate"]["taskId"] == task_id
        for p in d["artifactUpdate"]["artifact"]["parts"]
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path, "--keepalive-seconds", "1")
    yield srv
    stop_server(srv)


def test_one_stream_carries_every_task_in_the_global_order(served: ServerProcess) -> None:
    a, b = uid(), uid()
    texts = {send(served.url, "one two three", a): "one two three", send(served.url, "four five", b): "four five"}
    third = send(served.url, "six", a)
    texts[third] = "six"
    frames = read(served.url, finished(*texts))
    cursors = [c for c, _ in frames]
    assert cursors == sorted(set(cursors)), "global cursors increase and never repeat"
    assert {task_of(d) for _, d in frames} == set(texts)
    for task_id, text in texts.items():
        assert text_of(frames, task_id) == text
    # the order of the log: every event of the first task comes before the third task was even created
    first_task_end = max(c for c, d in frames if task_of(d) == next(iter(texts)))
    assert first_task_end < min(c for c, d in frames if task_of(d) == third)


def test_filters_by_context_skill_and_state(served: ServerProcess) -> None:
    a, b = uid(), uid()
    in_a, in_b = send(served.url, "alpha beta", a), send(served.url, "gamma", b)
    frames = read(served.url, finished(in_a), query=f"?contextId={a}")
    assert {task_of(d) for _, d in frames} == {in_a}
    completed = read(served.url, finished(in_a, in_b), query="?state=TASK_STATE_COMPLETED")
    assert all(d["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED" for _, d in completed)
    assert {task_of(d) for _, d in completed} == {in_a, in_b}
    same = read(served.url, finished(in_a, in_b), query="?state=completed&skill=echo")
    assert same == completed
    for query, word in (("?state=asleep", "asleep"), ("?colour=red", "colour")):
        r = httpx.get(f"{served.url}/a2a/events{query}", timeout=TIMEOUT)
        assert r.status_code == 400 and word in r.json()["message"], r.text
    r = httpx.get(f"{served.url}/a2a/events", headers={"Last-Event-ID": "abc"}, timeout=TIMEOUT)
    assert r.status_code == 400 and "Last-Event-ID" in r.json()["message"]


def test_disconnect_and_resume_has_no_gap_and_no_duplicate(served: ServerProcess) -> None:
    context = uid()
    words = " ".join(f"w{i}" for i in range(30))
    task_id = send(served.url, words, context, blocking=False, delay_ms=30)
    query = f"?contextId={context}"
    head = read(served.url, lambda f: len(f) >= 5, query=query)  # live, then the client goes away
    rest = read(served.url, finished(task_id), query=query, last=head[-1][0])
    whole = read(served.url, finished(task_id), query=query)
    assert head + rest == whole
    assert text_of(whole, task_id) == words


def test_resume_across_a_restart_on_the_same_file(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    first = start_server(tmp_path, "--store", f"sqlite://{db}")
    try:
        before = send(first.url, "before the restart", uid())
        seen = read(first.url, finished(before))
    finally:
        stop_server(first)
    second = start_server(tmp_path, "--store", f"sqlite://{db}")
    try:
        after = send(second.url, "after it", uid())
        resumed = read(second.url, finished(after), last=seen[-1][0])
        assert {task_of(d) for _, d in resumed} == {after}
        assert resumed[0][0] > seen[-1][0]
        assert read(second.url, finished(before, after)) == seen + resumed
    finally:
        stop_server(second)


def test_from_now_skips_the_stored_log_and_last_event_id_wins(served: ServerProcess) -> None:
    """Bug: a page listing tasks (the console) replayed every stored event, every token included, on each load.
    Fix: ``?from=now`` starts at the next new event; a reconnect's Last-Event-ID still resumes exactly."""
    old = send(served.url, "stored before", uid())
    stored = read(served.url, finished(old))
    context = uid()
    task_id = send(served.url, "w " * 30, context, blocking=False, delay_ms=30)
    fresh = read(served.url, finished(task_id), query="?from=now")
    assert old not in {task_of(d) for _, d in fresh} and fresh[0][0] > stored[-1][0]
    resumed = read(served.url, finished(old), query="?from=now", last=0)
    assert resumed[: len(stored)] == stored
    r = httpx.get(f"{served.url}/a2a/events?from=yesterday", timeout=TIMEOUT)
    assert r.status_code == 400 and "from" in r.json()["message"]
