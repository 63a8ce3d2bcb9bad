"""Billing channels through the real app in-process (memory and SQLite stores): open, send, cancel, close, expiry.

The echo skill streams one word per chunk, and a chunk with text counts as one token, so every expected
charge below is (words delivered) * tokenRate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from a2a_server import Settings, create_app
from a2a_server.errors import ChannelNotFound

WORDS = "one two three four five six seven eight"
EXT = "urn:a2a-server:ext:token-billing:v1"


@pytest.fixture(params=["memory", "sqlite"])
async def billing(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = "memory" if request.param == "memory" else f"sqlite://{tmp_path / 'billing.db'}"
    app: Starlette = create_app(Settings(skills=["echo", "conformance"], cancel_grace=1.0, store=store))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=20) as c:
            yield c


async def call(http: httpx.AsyncClient, method: str, params: Any, version: str | None = None) -> dict[str, Any]:
    headers = {"A2A-Version": version} if version else {}
    reply = (await http.post("/a2a", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                             headers=headers)).json()  # fmt: skip
    assert isinstance(reply, dict)
    return reply


async def ok(http: httpx.AsyncClient, method: str, params: Any, version: str | None = None) -> Any:
    reply = await call(http, method, params, version)
    assert "result" in reply, reply
    return reply["result"]


async def send(http: httpx.AsyncClient, text: str, channel: str, **metadata: Any) -> dict[str, Any]:
    message = {"messageId": f"m-{id(text)}-{channel}", "role": "ROLE_USER", "parts": [{"text": text}],
               "metadata": {"skill": "echo", "channel": channel, **metadata}}  # fmt: skip
    result: dict[str, Any] = (await ok(http, "SendMessage", {"message": message}))["task"]
    return result


async def test_open_send_close_charges_each_word_once(billing: httpx.AsyncClient) -> None:
    opened = await ok(billing, "OpenChannel", {"deposit": "1000000000000000000", "tokenRate": "100000000000000"})
    assert opened["state"] == "open" and opened["charged"] == "0" and opened["balance"] == opened["deposit"]
    task = await send(billing, WORDS, opened["id"])
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    usage = task["metadata"]["usage"]
    assert usage["completion_tokens"] == 8 and usage["cost"] == str(8 * 10**14)
    got = await ok(billing, "channels/get", {"id": opened["id"]}, "0.3")
    assert got["charged"] == str(8 * 10**14) and got["tokens"] == 8
    receipt = await ok(billing, "CloseChannel", {"id": opened["id"]})
    assert receipt["totalCharged"] == str(8 * 10**14)
    assert int(receipt["refunded"]) + int(receipt["totalCharged"]) == 10**18
    assert receipt["tasks"] == [{"taskId": task["id"], "tokens": 8, "charged": str(8 * 10**14)}]
    assert await ok(billing, "CloseChannel", {"id": opened["id"]}) == receipt  # closing twice: the same receipt
    refused = await call(billing, "SendMessage", {"message": {
        "messageId": "late", "role": "ROLE_USER", "parts": [{"text": "x"}],
        "metadata": {"skill": "echo", "channel": opened["id"]}}})  # fmt: skip
    assert refused["error"]["code"] == -32602 and "closed" in refused["error"]["message"]


async def test_budget_exhausted_stops_generation_with_the_usage_so_far(billing: httpx.AsyncClient) -> None:
    opened = await ok(billing, "OpenChannel", {"deposit": "35", "tokenRate": "10"})
    task = await send(billing, WORDS, opened["id"])
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    usage = task["metadata"]["usage"]
    assert usage["finish_reason"] == "budget_exhausted" and usage["completion_tokens"] == 3 and usage["cost"] == "30"
    text = "".join(p["text"] for a in task["artifacts"] for p in a["parts"])
    assert text == "one two three "
    channel = await ok(billing, "GetChannel", {"id": opened["id"]})
    assert channel["charged"] == "30" and channel["balance"] == "5"
    # it cannot pay for one more token: the next send is refused before any work
    refused = await call(billing, "SendMessage", {"message": {
        "messageId": "more", "role": "ROLE_USER", "parts": [{"text": "x"}],
        "metadata": {"skill": "echo", "channel": opened["id"]}}})  # fmt: skip
    assert refused["error"]["code"] == -32602 and "metadata.channel" in refused["error"]["message"]


async def test_cancel_charges_delivered_words_only(billing: httpx.AsyncClient) -> None:
    opened = await ok(billing, "OpenChannel", {"deposit": "1000", "tokenRate": "7"})
    message = {"messageId": "slow", "role": "ROLE_USER", "parts": [{"text": WORDS}],
               "metadata": {"skill": "echo", "channel": opened["id"], "delay_ms": 150}}  # fmt: skip
    task = await ok(billing, "SendMessage", {"message": message, "configuration": {"returnImmediately": True}})
    task_id = task["task"]["id"]
    await asyncio.sleep(0.5)
    canceled = await ok(billing, "CancelTask", {"id": task_id})
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    delivered = sum(1 for a in canceled["artifacts"] for p in a["parts"] for w in p["text"].split())
    assert 1 <= delivered < 8
    usage = canceled["metadata"]["usage"]
    assert usage["completion_tokens"] == delivered and usage["cost"] == str(7 * delivered)
    receipt = await ok(billing, "CloseChannel", {"id": opened["id"]})
    assert receipt["totalCharged"] == str(7 * delivered) and receipt["refunded"] == str(1000 - 7 * delivered)


async def test_close_cancels_running_tasks_first(billing: httpx.AsyncClient) -> None:
    opened = await ok(billing, "OpenChannel", {"deposit": "1000", "tokenRate": "1"})
    ids = []
    for i in range(2):
        message = {"messageId": f"run-{i}", "role": "ROLE_USER", "parts": [{"text": WORDS}],
                   "metadata": {"skill": "echo", "channel": opened["id"], "delay_ms": 200}}  # fmt: skip
        sent = await ok(billing, "SendMessage", {"message": message, "configuration": {"returnImmediately": True}})
        ids.append(sent["task"]["id"])
    await asyncio.sleep(0.3)
    receipt = await ok(billing, "channels/close", {"id": opened["id"]}, "0.3")
    assert receipt["state"] == "closed"
    for task_id in ids:
        task = await ok(billing, "GetTask", {"id": task_id})
        assert task["status"]["state"] == "TASK_STATE_CANCELED"
    assert sorted(t["taskId"] for t in receipt["tasks"]) == sorted(ids)
    assert sum(int(t["charged"]) for t in receipt["tasks"]) == int(receipt["totalCharged"]) < 16
    assert int(receipt["totalCharged"]) + int(receipt["refunded"]) == 1000


async def test_expiry_closes_the_channel_and_its_receipt_stays(billing: httpx.AsyncClient) -> None:
    opened = await ok(billing, "OpenChannel", {"deposit": "100", "tokenRate": "1", "expiresIn": 1})
    message = {"messageId": "exp", "role": "ROLE_USER", "parts": [{"text": WORDS * 4}],
               "metadata": {"skill": "echo", "channel": opened["id"], "delay_ms": 100}}  # fmt: skip
    sent = await ok(billing, "SendMessage", {"message": message, "configuration": {"returnImmediately": True}})
    for _ in range(100):
        channel = await ok(billing, "GetChannel", {"id": opened["id"]})
        if channel["state"] == "expired":
            break
        await asyncio.sleep(0.1)
    assert channel["state"] == "expired"
    task = await ok(billing, "GetTask", {"id": sent["task"]["id"]})
    assert task["status"]["state"] == "TASK_STATE_CANCELED"
    receipt = await ok(billing, "CloseChannel", {"id": opened["id"]})
    assert receipt["state"] == "expired" and int(receipt["totalCharged"]) == channel["tokens"] < 32


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"deposit": "-5", "tokenRate": "1"}, "deposit"),
        ({"deposit": "0", "tokenRate": "1"}, "deposit"),
        ({"deposit": "1.5", "tokenRate": "1"}, "deposit"),
        ({"deposit": 2.5, "tokenRate": "1"}, "deposit"),
        ({"deposit": "1" + "0" * 31, "tokenRate": "1"}, "deposit"),
        ({"deposit": "10", "tokenRate": "abc"}, "tokenRate"),
        ({"deposit": "10"}, "tokenRate"),
        ({"deposit": "10", "tokenRate": "1", "expiresIn": -3}, "expiresIn"),
        ({"deposit": "10", "tokenRate": "1", "depost": "1"}, "depost"),
    ],
)
async def test_bad_amounts_are_invalid_params_naming_the_field(
    billing: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    reply = await call(billing, "OpenChannel", params)
    assert reply["error"]["code"] == -32602 and field in reply["error"]["message"], reply


async def test_unknown_and_foreign_channels_are_refused_before_work(billing: httpx.AsyncClient) -> None:
    reply = await call(billing, "SendMessage", {"message": {
        "messageId": "nochan", "role": "ROLE_USER", "parts": [{"text": "x"}],
        "metadata": {"skill": "echo", "channel": "nope"}}})  # fmt: skip
    assert reply["error"]["code"] == -32602 and "metadata.channel" in reply["error"]["message"]
    listed = await ok(billing, "ListTasks", {})
    assert listed["tasks"] == []  # nothing was created
    assert (await call(billing, "GetChannel", {"id": "nope"}))["error"]["code"] == -32602


async def test_params_channel_in_the_seeds_style_and_the_rest_routes(billing: httpx.AsyncClient) -> None:
    rest = {"A2A-Version": "1.0"}
    opened = (await billing.post("/a2a/rest/channels", json={"deposit": "50", "tokenRate": "2"}, headers=rest)).json()
    result = await ok(billing, "tasks/send", {"task": {"skill": "echo", "input": "a b c"}, "channel": opened["id"]},
                      "0.1")  # fmt: skip
    assert result["metadata"]["usage"]["cost"] == "6"
    got = (await billing.get(f"/a2a/rest/channels/{opened['id']}", headers=rest)).json()
    assert got["charged"] == "6"
    listed = (await billing.get("/a2a/rest/channels", headers=rest)).json()
    assert [c["id"] for c in listed["channels"]] == [opened["id"]]
    closed = await billing.post(f"/a2a/rest/channels/{opened['id']}:close", headers=rest)
    assert closed.json()["totalCharged"] == "6" and closed.json()["refunded"] == "44"
    missing = await billing.get("/a2a/rest/channels/nope", headers=rest)
    assert missing.status_code == 404


async def test_the_card_declares_the_extension_and_the_header_is_echoed(billing: httpx.AsyncClient) -> None:
    for version in ("1.0", "0.3"):
        card = (await billing.get("/.well-known/agent-card.json", headers={"A2A-Version": version})).json()
        ext = [e for e in card["capabilities"].get("extensions", []) if e["uri"] == EXT]
        assert len(ext) == 1 and ext[0]["required"] is False and "unit" in ext[0]["params"]
    opened = await billing.post("/a2a", headers={"A2A-Extensions": EXT}, json={
        "jsonrpc": "2.0", "id": 1, "method": "OpenChannel", "params": {"deposit": "5", "tokenRate": "1"}})  # fmt: skip
    assert opened.headers.get("A2A-Extensions") == EXT
    plain = await billing.get("/healthz")
    assert "A2A-Extensions" not in plain.headers
    # a send naming a channel without the extension activated is served all the same, and the answer says it
    # was billed
    channel = json.loads(opened.text)["result"]["id"]
    message = {"messageId": "unactivated", "role": "ROLE_USER", "parts": [{"text": "a b"}],
               "metadata": {"skill": "echo", "channel": channel}}  # fmt: skip
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
    answer = await billing.post("/a2a", json=body)
    assert answer.json()["result"]["task"]["metadata"]["usage"]["cost"] == "2"
    assert answer.headers.get("A2A-Extensions") == EXT
    unbilled = await billing.post("/a2a", json={**body, "params": {"message": {**message, "messageId": "u2",
                                  "metadata": {"skill": "echo"}}}})  # fmt: skip
    assert "A2A-Extensions" not in unbilled.headers


async def test_another_callers_channel_is_not_there(billing: httpx.AsyncClient) -> None:
    """Owners come from auth (not built yet): the service is asked directly, as a transport would with a principal."""
    opened = await ok(billing, "OpenChannel", {"deposit": "10", "tokenRate": "1"})
    app = billing._transport.app  # type: ignore[attr-defined]
    channels = app.state.a2a.service.channels
    with pytest.raises(ChannelNotFound) as caught:
        await channels.check({"channel": opened["id"]}, "mallory")
    assert caught.value.param == "metadata.channel"
    with pytest.raises(ChannelNotFound):
        await channels.close({"id": opened["id"]}, "mallory")
    assert await channels.list("mallory") == []
    assert (await ok(billing, "GetChannel", {"id": opened["id"]}))["state"] == "open"  # untouched


async def test_a_channel_for_one_model_refuses_another(billing: httpx.AsyncClient) -> None:
    opened = await ok(billing, "OpenChannel", {"deposit": "10", "tokenRate": "1", "model": "big"})
    reply = await call(billing, "SendMessage", {"message": {
        "messageId": "other-model", "role": "ROLE_USER", "parts": [{"text": "x"}],
        "metadata": {"skill": "echo", "channel": opened["id"], "model": "small"}}})  # fmt: skip
    assert reply["error"]["code"] == -32602 and "metadata.model" in reply["error"]["message"]
