"""Two principals on one real server: bob tries every read, stream, cancel, list, firehose and continuation on
alice's tasks, on every transport, and gets "not found" every time (0 successes); alice's tasks are untouched.

Each refusal must be exactly the not-found of its face (-32001, REST 404 NOT_FOUND, the token stream's 404), never
another error that would reveal that the task exists. Positive controls: alice, and the admin key, get the same
calls answered, so a refusal is the owner check and not a broken request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.client.auth import AuthInterceptor
from a2a.client.card_resolver import parse_agent_card
from a2a.types import CancelTaskRequest, GetTaskRequest, SubscribeToTaskRequest, TaskNotFoundError

from tests.conftest import stop_server
from tests.e2e.auth_harness import ApiKey, KeyedServer, keyed_server
from tests.e2e.wire import read_stream, rpc, send01, send03, send10, uid, wait_for_state

TIMEOUT = 10.0
V10 = {"A2A-Version": "1.0"}


@pytest.fixture(scope="module")
def ks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedServer]:
    scopes = {"alice": "send,read", "bob": "send,read", "root": "admin"}
    skills = "echo,conformance,tests.e2e.history_skill:HistorySkill,tests.e2e.fake_models:WordsSkill"
    # webhooks to a closed loopback port: configs exist, nothing leaves the machine
    srv = keyed_server(tmp_path_factory.mktemp("iso"), scopes, "--push-allow", "127.0.0.1", skills=skills)
    yield srv
    stop_server(srv.server)


@pytest.fixture
async def http(ks: KeyedServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ks.url, timeout=TIMEOUT) as c:
        yield c


@dataclass
class Alices:
    done: str  # completed (echo)
    waiting: str  # input-required (conformance)
    running: str  # a long echo, still working
    context: str
    cursor: str  # an SSE id of the running task


async def _alices(http: httpx.AsyncClient, ks: KeyedServer) -> Alices:
    h = ks.headers("alice")
    context = uid()
    first = send03("a b c")
    first["message"]["contextId"] = context
    done = await http.post("/a2a", json=rpc("message/send", first), headers=h)
    waiting = await http.post("/a2a", json=rpc("message/send", send03("x", message_id=f"test-{uid()}",
                                                                      skill="conformance")), headers=h)  # fmt: skip
    params = send03(" ".join(["word"] * 200), blocking=False, delay_ms=200)
    running = await http.post("/a2a", json=rpc("message/send", params), headers=h)
    ids = [r.json()["result"]["id"] for r in (done, waiting, running)]
    await wait_for_state(http, "/a2a", ids[1], {"input-required"}, headers=h)
    await wait_for_state(http, "/a2a", ids[2], {"working"}, headers=h)
    return Alices(ids[0], ids[1], ids[2], context, f"{ids[2]}:1")


def _not_found_rpc(answer: httpx.Response) -> bool:
    body = answer.json()
    return answer.status_code == 200 and "result" not in body and body["error"]["code"] == -32001


def _not_found_rest(answer: httpx.Response) -> bool:
    return answer.status_code == 404 and answer.json()["error"]["status"] == "NOT_FOUND"


async def test_another_principal_gets_not_found_on_every_transport(http: httpx.AsyncClient, ks: KeyedServer) -> None:
    a = await _alices(http, ks)
    bob, bob10 = ks.headers("bob"), ks.headers("bob", **V10)
    refusals: dict[str, bool] = {}

    async def jsonrpc(name: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        refusals[name] = _not_found_rpc(await http.post("/a2a", json=body, headers=headers))

    for task in (a.done, a.waiting, a.running):
        # 0.3 (and the shared 0.1 names), 1.0
        await jsonrpc(f"0.3 tasks/get {task}", rpc("tasks/get", {"id": task}), bob)
        await jsonrpc(f"0.3 tasks/cancel {task}", rpc("tasks/cancel", {"id": task}), bob)
        await jsonrpc(f"0.1 tasks/get {task}", rpc("tasks/get", {"id": task}), {**bob, "A2A-Version": "0.1"})
        await jsonrpc(f"1.0 GetTask {task}", rpc("GetTask", {"id": task}), bob10)
        await jsonrpc(f"1.0 CancelTask {task}", rpc("CancelTask", {"id": task}), bob10)
        await jsonrpc(f"1.0 SubscribeToTask {task}", rpc("SubscribeToTask", {"id": task}), bob10)
        # continuations: a message for alice's task
        cont03 = send03("let me in")
        cont03["message"]["taskId"] = task
        await jsonrpc(f"0.3 message/send continue {task}", rpc("message/send", cont03), bob)
        cont10 = send10("let me in")
        cont10["message"]["taskId"] = task
        await jsonrpc(f"1.0 SendMessage continue {task}", rpc("SendMessage", cont10), bob10)
        # 0.x resubscribe: its error is the one event of an SSE stream
        for lei in (None, f"{task}:1"):
            extra = {"Last-Event-ID": lei} if lei else {}
            stream = await read_stream(http, "/a2a/stream", rpc("tasks/resubscribe", {"id": task}), {**bob, **extra})
            results = [json.loads(f.data) for f in stream.events]
            refusals[f"0.3 tasks/resubscribe {task} {lei}"] = [r["error"]["code"] for r in results] == [-32001]
        # REST
        rest = "/a2a/rest"
        refusals[f"REST get {task}"] = _not_found_rest(await http.get(f"{rest}/tasks/{task}", headers=bob))
        refusals[f"REST cancel {task}"] = _not_found_rest(await http.post(f"{rest}/tasks/{task}:cancel", headers=bob))
        refusals[f"REST subscribe {task}"] = _not_found_rest(
            await http.get(f"{rest}/tasks/{task}:subscribe", headers=bob)
        )
        body = {"message": {"messageId": uid(), "role": "ROLE_USER", "parts": [{"text": "hi"}], "taskId": task}}
        refusals[f"REST continue {task}"] = _not_found_rest(
            await http.post(f"{rest}/message:send", json=body, headers=bob)
        )

    # the plain token stream (it waits a moment for a task that may be about to appear: the three at once)
    async def token_stream(task: str) -> None:
        answer = await http.get(f"/a2a/tasks/{task}/stream", headers={**bob, "Last-Event-ID": f"{task}:0"})
        refusals[f"token stream {task}"] = answer.status_code == 404 and answer.json()["error"] == "task_not_found"

    await asyncio.gather(*(token_stream(t) for t in (a.done, a.waiting, a.running)))
    leaks = [name for name, refused in refusals.items() if not refused]
    assert leaks == [], f"{len(leaks)} of {len(refusals)} attempts were not a plain not-found: {leaks}"
    assert len(refusals) == 3 * 15  # every attempt above ran

    # alice's tasks are as she left them, and her own calls work (the refusals were the owner check)
    alice = ks.headers("alice")
    states = {}
    for task in (a.done, a.waiting, a.running):
        got = (await http.post("/a2a", json=rpc("tasks/get", {"id": task}), headers=alice)).json()["result"]
        states[task] = got["status"]["state"]
        assert [m["parts"][0]["text"] for m in got["history"] if m["role"] == "user"][-1] != "let me in"
    assert states == {a.done: "completed", a.waiting: "input-required", a.running: "working"}
    # the admin key reads and cancels anyone's task
    root = ks.headers("root")
    canceled = (await http.post("/a2a", json=rpc("tasks/cancel", {"id": a.running}), headers=root)).json()
    assert canceled["result"]["status"]["state"] == "canceled"


async def test_a_client_chosen_id_of_another_principal_changes_nothing(
    http: httpx.AsyncClient, ks: KeyedServer
) -> None:
    """0.1 clients choose task ids: bob choosing the id of alice's waiting task must not create, continue or
    read it (the id is taken, so he is told so without any of its content)."""
    a = await _alices(http, ks)
    answer = await http.post("/a2a", json=rpc("tasks/send", send01("hijack", a.waiting)), headers=ks.headers("bob"))
    body = answer.json()
    assert "result" not in body and "hijack" not in answer.text and "Please" not in answer.text
    assert body["error"]["message"] == f"Task id {a.waiting} is taken; choose another id"  # not its state
    got = (await http.post("/a2a", json=rpc("tasks/get", {"id": a.waiting}), headers=ks.headers("alice"))).json()
    assert got["result"]["status"]["state"] == "input-required"
    assert "hijack" not in json.dumps(got)


async def test_list_tasks_shows_only_ones_own(http: httpx.AsyncClient, ks: KeyedServer) -> None:
    a = await _alices(http, ks)
    bobs = (await http.post("/a2a", json=rpc("SendMessage", send10("mine")), headers=ks.headers("bob", **V10))).json()
    bob_task = bobs["result"]["task"]["id"]
    for who, mine, theirs in (("bob", {bob_task}, {a.done, a.waiting, a.running}), ("alice", {a.done}, {bob_task})):
        listed = await http.post("/a2a", json=rpc("ListTasks", {"pageSize": 100}), headers=ks.headers(who, **V10))
        ids = {t["id"] for t in listed.json()["result"]["tasks"]}
        assert mine <= ids and not ids & theirs, who
        rest = await http.get("/a2a/rest/tasks", params={"pageSize": 100}, headers=ks.headers(who))
        assert {t["id"] for t in rest.json()["tasks"]} == ids
    in_context = await http.post(
        "/a2a", json=rpc("ListTasks", {"contextId": a.context}), headers=ks.headers("bob", **V10)
    )
    assert in_context.json()["result"]["tasks"] == []
    everyone = await http.post("/a2a", json=rpc("ListTasks", {"pageSize": 100}), headers=ks.headers("root", **V10))
    assert {a.done, bob_task} <= {t["id"] for t in everyone.json()["result"]["tasks"]}


async def _firehose_tasks(http: httpx.AsyncClient, headers: dict[str, str], seconds: float) -> set[str]:
    seen: set[str] = set()
    with_deadline = time.monotonic() + seconds
    async with http.stream("GET", "/a2a/events", headers=headers) as response:
        assert response.status_code == 200
        try:
            async with asyncio.timeout(seconds):
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        frame = json.loads(line.removeprefix("data: "))
                        payload = next(iter(frame.values()))
                        seen.add(payload["taskId"])
        except TimeoutError:
            assert time.monotonic() >= with_deadline - 0.5
    return seen


async def test_the_firehose_shows_only_ones_own_events(http: httpx.AsyncClient, ks: KeyedServer) -> None:
    a = await _alices(http, ks)
    bobs = (await http.post("/a2a", json=rpc("message/send", send03("bob's")), headers=ks.headers("bob"))).json()
    alice_seen = await _firehose_tasks(http, ks.headers("alice"), 2.0)
    bob_seen = await _firehose_tasks(http, ks.headers("bob"), 2.0)
    root_seen = await _firehose_tasks(http, ks.headers("root"), 2.0)
    assert {a.done, a.waiting} <= alice_seen and bobs["result"]["id"] not in alice_seen
    assert bobs["result"]["id"] in bob_seen and not bob_seen & {a.done, a.waiting, a.running}
    assert {a.done, bobs["result"]["id"]} <= root_seen


async def test_a_context_reused_by_another_principal_does_not_mix_histories(
    http: httpx.AsyncClient, ks: KeyedServer
) -> None:
    context = uid()

    async def say(who: str, text: str) -> str:
        params = send03(text, skill="history")
        params["message"]["contextId"] = context
        task = (await http.post("/a2a", json=rpc("message/send", params), headers=ks.headers(who))).json()["result"]
        assert task["status"]["state"] == "completed", task
        return "".join(p["text"] for art in task["artifacts"] for p in art["parts"])

    await say("alice", "alice's secret")
    bob_heard = await say("bob", "bob here")
    alice_heard = await say("alice", "alice again")
    assert "alice's secret" not in bob_heard and bob_heard.endswith("bob here")
    assert "alice's secret" in alice_heard and "bob here" not in alice_heard


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_the_a2a_sdk_with_bobs_key_finds_none_of_alices_tasks(ks: KeyedServer, binding: str) -> None:
    async with httpx.AsyncClient(base_url=ks.url, timeout=TIMEOUT) as http:
        a = await _alices(http, ks)
        card = parse_agent_card((await http.get("/.well-known/agent-card.json", headers=V10)).json())
        config = ClientConfig(httpx_client=http, streaming=True, supported_protocol_bindings=[binding])
        bob = ClientFactory(config).create(card, interceptors=[AuthInterceptor(ApiKey(ks.keys["bob"]))])
        refused = 0
        for task in (a.done, a.waiting, a.running):
            with pytest.raises(TaskNotFoundError):
                await bob.get_task(GetTaskRequest(id=task))
            with pytest.raises(TaskNotFoundError):
                await bob.cancel_task(CancelTaskRequest(id=task))
            with pytest.raises(TaskNotFoundError):
                async with aclosing(bob.subscribe(SubscribeToTaskRequest(id=task))) as events:  # type: ignore[type-var]
                    async for _ in events:
                        pass
            refused += 3
        await bob.close()
        assert refused == 9
        # (the SDK set A2A-Version: 1.0 on the shared client: ask in 1.0)
        alice_sees = await http.post("/a2a", json=rpc("GetTask", {"id": a.running}), headers=ks.headers("alice", **V10))
        assert alice_sees.json()["result"]["status"]["state"] == "TASK_STATE_WORKING"


async def test_a_chat_completions_task_is_its_callers_only(http: httpx.AsyncClient, ks: KeyedServer) -> None:
    """The OpenAI face's task (X-A2A-Task-Id) belongs to the key that asked: another key cannot get, cancel or
    stream it, over any face."""
    body = {"model": "words", "messages": [{"role": "user", "content": "private words"}]}
    done = await http.post("/v1/chat/completions", json=body, headers=ks.headers("alice"))
    assert done.status_code == 200 and done.json()["choices"][0]["message"]["content"] == "private words"
    task = done.headers["x-a2a-task-id"]
    bob = ks.headers("bob")
    refusals = [
        _not_found_rpc(await http.post("/a2a", json=rpc("tasks/get", {"id": task}), headers=bob)),
        _not_found_rpc(await http.post("/a2a", json=rpc("tasks/cancel", {"id": task}), headers=bob)),
        _not_found_rest(await http.get(f"/a2a/rest/tasks/{task}", headers=bob)),
        (await http.get(f"/a2a/tasks/{task}/stream", headers=bob)).status_code == 404,
    ]
    assert refusals == [True] * 4
    mine = await http.post("/a2a", json=rpc("tasks/get", {"id": task}), headers=ks.headers("alice"))
    assert mine.json()["result"]["status"]["state"] == "completed"


async def test_push_configs_and_channels_are_their_principals_only(http: httpx.AsyncClient, ks: KeyedServer) -> None:
    a = await _alices(http, ks)
    alice, bob, v10 = ks.headers("alice"), ks.headers("bob"), ks.headers("bob", **V10)
    hook = {"id": "c1", "url": "http://127.0.0.1:9/hook", "token": "alices-secret-token"}
    setting = rpc("tasks/pushNotificationConfig/set", {"taskId": a.waiting, "pushNotificationConfig": hook})
    made = await http.post("/a2a", json=setting, headers=alice)
    assert made.json()["result"]["pushNotificationConfig"]["id"] == "c1", made.text
    ref = {"id": a.waiting, "pushNotificationConfigId": "c1"}
    attempts = {
        "get": await http.post("/a2a", json=rpc("tasks/pushNotificationConfig/get", ref), headers=bob),
        "list": await http.post("/a2a", json=rpc("tasks/pushNotificationConfig/list", {"id": a.waiting}), headers=bob),
        "delete": await http.post("/a2a", json=rpc("tasks/pushNotificationConfig/delete", ref), headers=bob),
        "set": await http.post(
            "/a2a",
            json=rpc(
                "tasks/pushNotificationConfig/set",
                {"taskId": a.waiting, "pushNotificationConfig": {**hook, "token": "b"}},
            ),
            headers=bob,
        ),
    }
    assert {name: _not_found_rpc(r) for name, r in attempts.items()} == dict.fromkeys(attempts, True)
    assert not any("alices-secret-token" in r.text for r in attempts.values())
    kept = await http.post("/a2a", json=rpc("tasks/pushNotificationConfig/get", ref), headers=alice)
    assert kept.json()["result"]["pushNotificationConfig"]["token"] == "alices-secret-token"

    opened = await http.post(
        "/a2a", json=rpc("OpenChannel", {"deposit": "100", "tokenRate": "1"}), headers=ks.headers("alice", **V10)
    )
    channel = opened.json()["result"]["id"]
    for method in ("GetChannel", "CloseChannel"):
        answer = (await http.post("/a2a", json=rpc(method, {"id": channel}), headers=v10)).json()
        assert "result" not in answer and answer["error"]["code"] == -32602, (method, answer)
    listed = (await http.post("/a2a", json=rpc("ListChannels", {}), headers=v10)).json()["result"]["channels"]
    assert channel not in {c["id"] for c in listed}
    still = await http.post("/a2a", json=rpc("GetChannel", {"id": channel}), headers=ks.headers("alice", **V10))
    assert still.json()["result"]["state"] == "open", still.text
