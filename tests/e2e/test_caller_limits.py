"""Per-caller limits on a real server: the request rate (per key), running tasks, open streams, message size.

Each refusal is in the caller's dialect: 429 + Retry-After for what passes with time, -32602 naming the limit for
a message that is too big. One caller at its limit never limits another.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import stop_server
from tests.e2e.auth_harness import KeyedServer, keyed_server
from tests.e2e.wire import rpc, send03, uid

TIMEOUT = 10.0
KEYS = {"alice": "send,read", "bob": "send,read"}


@pytest.fixture(scope="module")
def rated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedServer]:
    srv = keyed_server(tmp_path_factory.mktemp("rate"), KEYS, "--rate-limit", "0.5", env={"A2A_RATE_BURST": "3"})
    yield srv
    stop_server(srv.server)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedServer]:
    srv = keyed_server(
        tmp_path_factory.mktemp("caps"),
        KEYS,
        "--rate-limit", "0", "--max-running-tasks", "2", "--max-streams", "2",
        skills="echo,tests.e2e.fake_models:WordsSkill",
        env={"A2A_MAX_PARTS": "2", "A2A_MAX_METADATA_DEPTH": "4", "A2A_MAX_METADATA_BYTES": "200",
                   "A2A_MAX_MESSAGE_BYTES": "1000"},
    )  # fmt: skip
    yield srv
    stop_server(srv.server)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=TIMEOUT) as c:
        yield c


async def test_the_request_rate_is_per_key_and_refused_in_each_dialect(
    http: httpx.AsyncClient, rated: KeyedServer
) -> None:
    url, alice = rated.url, rated.headers("alice")
    for _ in range(3):  # the burst
        assert (await http.post(url + "/a2a", json=rpc("message/send", send03("hi")), headers=alice)).status_code == 200
    refused = await http.post(url + "/a2a", json=rpc("message/send", send03("hi")), headers=alice)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == -32042 and "rate_limit" in error["message"]
    rest = await http.get(url + "/a2a/rest/tasks", headers=alice)
    assert rest.status_code == 429 and rest.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "retry-after" in rest.headers
    plain = await http.get(url + "/a2a/events", headers=alice)
    assert plain.status_code == 429 and plain.json()["error"] == "rate_limited"
    async with AsyncOpenAI(base_url=url + "/v1", api_key=rated.keys["alice"], max_retries=0) as client:
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    # another key is not slowed down by alice's bucket
    bob = await http.post(url + "/a2a", json=rpc("message/send", send03("hi")), headers=rated.headers("bob"))
    assert bob.status_code == 200
    # the bucket refills: 0.5 per second, so one token in 2 s
    await asyncio.sleep(2.2)
    again = await http.post(url + "/a2a", json=rpc("message/send", send03("hi")), headers=alice)
    assert again.status_code == 200


async def _slow(http: httpx.AsyncClient, srv: KeyedServer, who: str) -> httpx.Response:
    params = send03(" ".join(["w"] * 100), blocking=False, delay_ms=300)
    return await http.post(srv.url + "/a2a", json=rpc("message/send", params), headers=srv.headers(who))


async def test_running_tasks_are_capped_per_key(http: httpx.AsyncClient, capped: KeyedServer) -> None:
    first, second = await _slow(http, capped, "alice"), await _slow(http, capped, "alice")
    ids = [r.json()["result"]["id"] for r in (first, second)]
    third = await _slow(http, capped, "alice")
    assert third.status_code == 429 and third.headers["retry-after"] == "1"
    assert third.json()["error"]["code"] == -32042 and "max_running_tasks" in third.json()["error"]["message"]
    assert (await _slow(http, capped, "bob")).status_code == 200  # bob has his own count
    cancel = rpc("tasks/cancel", {"id": ids[0]})
    assert (await http.post(capped.url + "/a2a", json=cancel, headers=capped.headers("alice"))).status_code == 200
    fourth = await _slow(http, capped, "alice")
    assert fourth.status_code == 200, fourth.text
    for task in [ids[1], fourth.json()["result"]["id"]]:  # leave the server idle for the next test
        await http.post(capped.url + "/a2a", json=rpc("tasks/cancel", {"id": task}), headers=capped.headers("alice"))
    bobs = await http.post(capped.url + "/a2a", json=rpc("ListTasks", {"status": "TASK_STATE_WORKING"}),
                           headers=capped.headers("bob", **{"A2A-Version": "1.0"}))  # fmt: skip
    for task in bobs.json()["result"]["tasks"]:
        await http.post(
            capped.url + "/a2a", json=rpc("tasks/cancel", {"id": task["id"]}), headers=capped.headers("bob")
        )


async def test_open_streams_are_capped_per_key_before_anything_runs(
    http: httpx.AsyncClient, capped: KeyedServer
) -> None:
    alice = capped.headers("alice")
    feed = capped.url + "/a2a/events?from=now"
    async with http.stream("GET", feed, headers=alice) as one, http.stream("GET", feed, headers=alice) as two:
        assert one.status_code == two.status_code == 200
        third = await http.get(capped.url + "/a2a/events?from=now", headers=alice)
        assert third.status_code == 429 and third.json()["error"] == "too_many_streams"
        # a streaming send is refused before its task exists (the body is read ahead to see its method)
        message_id = uid()
        body = rpc("message/stream", send03("hi", message_id=message_id))
        refused = await http.post(capped.url + "/a2a", json=body, headers=alice)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == -32042
        listed = await http.post(capped.url + "/a2a", json=rpc("ListTasks", {}),
                                 headers=capped.headers("alice", **{"A2A-Version": "1.0"}))  # fmt: skip
        assert message_id not in listed.text
        # a plain send still works at the stream cap, and bob's streams are his own
        assert (
            await http.post(capped.url + "/a2a", json=rpc("message/send", send03("x")), headers=alice)
        ).status_code == 200
        async with http.stream("GET", capped.url + "/a2a/events?from=now", headers=capped.headers("bob")) as b:
            assert b.status_code == 200
    # closed streams are given back once the server has seen the disconnects (a moment later)
    for _ in range(100):
        async with http.stream("GET", feed, headers=alice) as again:
            if again.status_code == 200:
                break
        await asyncio.sleep(0.1)
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("params", "limit"),
    [
        ({"parts": 3}, "max_parts"),
        ({"metadata": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "max_metadata_depth"),
        ({"metadata": {"x": "y" * 300}}, "max_metadata_bytes"),
        ({"text": "z" * 2000}, "max_message_bytes"),
    ],
)
async def test_a_message_past_a_size_limit_is_minus_32602_naming_it(
    http: httpx.AsyncClient, capped: KeyedServer, params: dict[str, Any], limit: str
) -> None:
    text = params.get("text", "hi")
    body = send03(text, **params.get("metadata", {}))
    body["message"]["parts"] = [{"kind": "text", "text": text}] * params.get("parts", 1)
    answer = await http.post(capped.url + "/a2a", json=rpc("message/send", body), headers=capped.headers("alice"))
    error = answer.json()["error"]
    assert error["code"] == -32602 and limit in error["message"], error
    rest = {"message": {"messageId": uid(), "role": "ROLE_USER", "parts": [{"text": text}] * params.get("parts", 1)},
            "metadata": params.get("metadata", {})}  # fmt: skip
    answer = await http.post(capped.url + "/a2a/rest/message:send", json=rest, headers=capped.headers("alice"))
    assert answer.status_code == 400 and limit in answer.json()["error"]["message"]
    metrics = (await http.get(capped.url + "/metrics")).text
    cause = {"max_parts": "too_many_parts", "max_metadata_depth": "metadata_too_deep",
             "max_metadata_bytes": "metadata_too_large", "max_message_bytes": "message_too_large"}[limit]  # fmt: skip
    assert f'a2a_refusals_total{{reason="{cause}"}}' in metrics


async def test_the_openai_face_names_the_limit_too(capped: KeyedServer) -> None:
    async with AsyncOpenAI(base_url=capped.url + "/v1", api_key=capped.keys["alice"], max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(model="words", messages=[{"role": "user", "content": "w " * 600}])
    assert "max_message_bytes" in json.dumps(refused.value.body)
