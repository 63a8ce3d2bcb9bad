"""Push notifications end to end in one process: the real app (memory store) POSTs to a real receiver on loopback.

The receiver is allow-listed (``push_allow``), verifies each signature and records every request; retries are
made fast (``push_retry_base``) so that the tests wait for outcomes, never for wall-clock thresholds.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.consumers.receiver import SECRET, Receiver, until


async def rpc(client: httpx.AsyncClient, method: str, params: Any, version: str | None = None) -> Any:
    headers = {"A2A-Version": version} if version else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = (await client.post("/a2a", json=body, headers=headers)).json()
    return reply


async def is_done(client: httpx.AsyncClient, method: str, params: Any, version: str | None = None) -> bool:
    """Whether the config's delivery is done (every event sent and its answer saved)."""
    return bool((await rpc(client, method, params, version))["result"]["delivery"]["state"] == "done")


def ids(hits: list[Any]) -> list[int]:
    return [int(h.event_id.rsplit(":", 1)[1]) for h in hits]


async def test_1_0_notifications_are_signed_authorized_and_in_order(client: httpx.AsyncClient,
                                                                   receiver: Receiver) -> None:  # fmt: skip
    config = {"url": receiver.url, "token": "tok-1", "authentication": {"scheme": "Bearer", "credentials": "cred-1"},
              "signingSecret": SECRET, "artifacts": True}  # fmt: skip
    params = {
        "message": {"messageId": uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "one two three"}]},
        "configuration": {"taskPushNotificationConfig": config},
    }
    task = (await rpc(client, "SendMessage", params, "1.0"))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"

    def completed() -> bool:
        return any(h.body.get("statusUpdate", {}).get("status", {}).get("state") == "TASK_STATE_COMPLETED"
                   for h in receiver.accepted)  # fmt: skip

    await until(completed, what="the completed notification")
    hits = receiver.accepted
    assert all(h.verified for h in receiver.hits)
    # every event of the task once, in the log's order: working, three chunks, completed (ids 1..n, no gap)
    assert ids(hits) == list(range(1, len(hits) + 1))
    kinds = [next(iter(h.body)) for h in hits]
    assert kinds[-1] == "statusUpdate" and kinds.count("artifactUpdate") == 3
    for hit in hits:
        assert hit.headers["authorization"] == "Bearer cred-1"
        assert hit.headers["x-a2a-notification-token"] == "tok-1"
        assert hit.headers["content-type"] == "application/a2a+json"
        inner = next(iter(hit.body.values()))
        assert inner["taskId"] == task["id"]
        assert inner["metadata"]["a2a-server/eventId"] == hit.event_id
        assert hit.event_id.startswith(task["id"] + ":")

    # the receiver saw the last notification a moment before the sender heard its answer and saved it
    await until(lambda: is_done(client, "GetTaskPushNotificationConfig", {"taskId": task["id"], "id": task["id"]},
                                 "1.0"), what="done")  # fmt: skip
    got = await rpc(client, "GetTaskPushNotificationConfig", {"taskId": task["id"], "id": task["id"]}, "1.0")
    delivery = got["result"]["delivery"]
    assert delivery["state"] == "done" and delivery["delivered"] == len(hits) and delivery["attempts"] == 0
    assert delivery["lastStatus"] == "200" and delivery["lastEventId"] == hits[-1].event_id
    metrics = (await client.get("/metrics")).text
    assert f'a2a_push_attempts_total{{outcome="delivered"}} {float(len(hits))}' in metrics


async def test_0_3_retries_a_500_twice_then_delivers_the_same_event_and_goes_on(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.fail_next = 2
    params = {
        "message": {"kind": "message", "messageId": uuid4().hex, "role": "user",
                    "parts": [{"kind": "text", "text": "a b"}]},
        "configuration": {"pushNotificationConfig": {"url": receiver.url, "id": "hook-1", "signingSecret": SECRET,
                                                     "token": "tok"}},
    }  # fmt: skip
    task = (await rpc(client, "message/send", params))["result"]
    await until(lambda: any(h.body["status"]["state"] == "completed" for h in receiver.accepted), what="completed")
    first = receiver.hits[0].event_id
    assert [(h.event_id, h.status) for h in receiver.hits[:3]] == [(first, 500), (first, 500), (first, 200)]
    accepted = receiver.accepted
    assert ids(accepted) == sorted(set(ids(accepted)))  # in order, each once
    assert [h.body["status"]["state"] for h in accepted][-1] == "completed"
    assert all(h.body["kind"] == "task" and h.body["id"] == task["id"] for h in accepted)
    assert all(h.headers["x-a2a-notification-token"] == "tok" and "authorization" not in h.headers for h in accepted)

    ref = {"id": task["id"], "pushNotificationConfigId": "hook-1"}
    await until(lambda: is_done(client, "tasks/pushNotificationConfig/get", ref), what="done")
    got = await rpc(client, "tasks/pushNotificationConfig/get", ref)
    assert got["result"]["pushNotificationConfig"] == {"id": "hook-1", "url": receiver.url, "token": "tok"}
    assert got["result"]["delivery"]["delivered"] == len(accepted)


async def test_0_1_receiver_down_while_the_task_runs_catches_up_in_order_when_back(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    await receiver.stop()
    task_id = uuid4().hex
    params = {
        "id": task_id,
        "message": {"role": "user", "parts": [{"type": "text", "text": "x y z"}]},
        "pushNotification": {"url": receiver.url, "signingSecret": SECRET},
    }
    assert (await rpc(client, "tasks/send", params))["result"]["status"]["state"] == "completed"

    async def failing() -> bool:
        config = (await rpc(client, "tasks/pushNotification/get", {"id": task_id}))["result"]
        d = config["delivery"]
        return bool(d["state"] == "failing" and d["attempts"] >= 2 and d.get("nextTry")
                    and d["lastStatus"].startswith("network error"))  # fmt: skip

    await until(failing, what="the config to show failing")
    config = (await rpc(client, "tasks/pushNotification/get", {"id": task_id}))["result"]
    assert config["id"] == task_id and config["pushNotificationConfig"]["url"] == receiver.url
    assert config["delivery"]["delivered"] == 0

    await receiver.start()
    await until(lambda: any(h.body["status"]["state"] == "completed" for h in receiver.accepted), what="catch-up")
    states = [h.body["status"]["state"] for h in receiver.accepted]
    assert states[-1] == "completed" and "working" in states
    assert ids(receiver.accepted) == sorted(set(ids(receiver.accepted)))

    async def done() -> bool:
        d = (await rpc(client, "tasks/pushNotification/get", {"id": task_id}))["result"]["delivery"]
        return bool(d["state"] == "done")

    await until(done, what="done")


async def test_several_configs_per_task_set_list_get_delete(client: httpx.AsyncClient, receiver: Receiver) -> None:
    params = {"message": {"messageId": uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "hi"}]},
              "configuration": {"returnImmediately": True}}  # fmt: skip
    task_id = (await rpc(client, "SendMessage", params, "1.0"))["result"]["task"]["id"]
    for n in (1, 2):
        made = await rpc(client, "CreateTaskPushNotificationConfig",
                         {"taskId": task_id, "id": f"c{n}", "url": receiver.url, "token": f"t{n}"}, "1.0")  # fmt: skip
        assert made["result"]["id"] == f"c{n}" and len(made["result"]["signingSecret"]) >= 32
    listed = (await rpc(client, "ListTaskPushNotificationConfigs", {"taskId": task_id}, "1.0"))["result"]
    assert [c["id"] for c in listed["configs"]] == ["c1", "c2"] and listed["nextPageToken"] == ""
    via_rest = (await client.get(f"/a2a/rest/tasks/{task_id}/pushNotificationConfigs/c2")).json()
    assert via_rest["token"] == "t2" and via_rest["taskId"] == task_id
    assert (await client.delete(f"/a2a/rest/tasks/{task_id}/pushNotificationConfigs/c1")).status_code == 200
    listed = (await rpc(client, "ListTaskPushNotificationConfigs", {"taskId": task_id}, "1.0"))["result"]
    assert [c["id"] for c in listed["configs"]] == ["c2"]
    missing = await rpc(client, "GetTaskPushNotificationConfig", {"taskId": task_id, "id": "c1"}, "1.0")
    assert missing["error"]["code"] == -32001 and "c1" in missing["error"]["message"]
    unknown = await rpc(client, "CreateTaskPushNotificationConfig", {"taskId": "nope", "url": receiver.url}, "1.0")
    assert unknown["error"]["code"] == -32001


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("https://10.0.0.7/hook", "10.0.0.7, a private address"),
        ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("https://127.0.0.2/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:169.254.169.254]/x", "cloud metadata"),
        ("https://224.0.0.1/hook", "multicast"),
        ("http://10.1.2.3/hook", "https is required"),
        ("ftp://example.com/hook", "not an absolute http(s) URL"),
    ],
)
async def test_a_webhook_to_a_non_public_address_is_refused_naming_the_field(
    client: httpx.AsyncClient, url: str, needle: str
) -> None:
    params = {"message": {"messageId": uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "hi"}]},
              "configuration": {"returnImmediately": True}}  # fmt: skip
    task_id = (await rpc(client, "SendMessage", params, "1.0"))["result"]["task"]["id"]
    error = (await rpc(client, "CreateTaskPushNotificationConfig", {"taskId": task_id, "url": url}, "1.0"))["error"]
    assert error["code"] == -32602 and error["message"].startswith("Invalid params: url: ")
    assert needle in error["message"]
    # in a send: nothing is created, and the error names where the url sat
    params = {"message": {"kind": "message", "messageId": uuid4().hex, "role": "user",
                          "parts": [{"kind": "text", "text": "x"}]},
              "configuration": {"pushNotificationConfig": {"url": url}}}  # fmt: skip
    error = (await rpc(client, "message/send", params))["error"]
    assert error["code"] == -32602 and "configuration.pushNotificationConfig.url: " in error["message"]
    listed = (await rpc(client, "ListTaskPushNotificationConfigs", {"taskId": task_id}, "1.0"))["result"]
    assert listed["configs"] == []


async def test_a_config_in_a_0_3_stream_request_is_delivered(client: httpx.AsyncClient, receiver: Receiver) -> None:
    params = {
        "message": {"kind": "message", "messageId": uuid4().hex, "role": "user",
                    "parts": [{"kind": "text", "text": "streamed"}]},
        "configuration": {"pushNotificationConfig": {"url": receiver.url, "signingSecret": SECRET}},
    }  # fmt: skip
    body = {"jsonrpc": "2.0", "id": 1, "method": "message/stream", "params": params}
    async with client.stream("POST", "/a2a", json=body) as response:
        frames = [line async for line in response.aiter_lines() if line.startswith("data:")]
    assert '"final":true' in frames[-1].replace(" ", "")
    await until(lambda: any(h.body["status"]["state"] == "completed" for h in receiver.accepted), what="completed")
    assert [h.body["status"]["state"] for h in receiver.accepted][-1] == "completed"


async def test_1_0_push_methods_take_proto_field_names(client: httpx.AsyncClient, receiver: Receiver) -> None:
    """Regression (the 1.0 conformance suite's JSON-RPC client): ProtoJSON accepts ``task_id`` for ``taskId``."""
    params = {"message": {"messageId": uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "hi"}]}}
    task = (await rpc(client, "SendMessage", params, "1.0"))["result"]["task"]
    made = await rpc(client, "CreateTaskPushNotificationConfig",
                     {"task_id": task["id"], "id": "proto", "url": receiver.url}, "1.0")  # fmt: skip
    assert made["result"]["taskId"] == task["id"] and made["result"]["id"] == "proto", made
    got = await rpc(client, "GetTaskPushNotificationConfig", {"task_id": task["id"], "id": "proto"}, "1.0")
    assert got["result"]["url"] == receiver.url, got
    listed = await rpc(client, "ListTaskPushNotificationConfigs", {"task_id": task["id"]}, "1.0")
    assert [c["id"] for c in listed["result"]["configs"]] == ["proto"], listed


async def test_a_host_that_does_not_resolve_yet_is_accepted_over_https_only(client: httpx.AsyncClient) -> None:
    """Nothing to check a name against until it resolves (``.invalid`` never does): the config is stored and every
    delivery checks the address again before it connects; plain http to it is still refused."""
    params = {"message": {"messageId": uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "hi"}]}}
    task = (await rpc(client, "SendMessage", params, "1.0"))["result"]["task"]
    made = await rpc(client, "CreateTaskPushNotificationConfig",
                     {"taskId": task["id"], "id": "later", "url": "https://receiver.invalid/hook"}, "1.0")  # fmt: skip
    assert made["result"]["url"] == "https://receiver.invalid/hook", made
    plain = {"taskId": task["id"], "id": "plain", "url": "http://receiver.invalid/hook"}
    refused = await rpc(client, "CreateTaskPushNotificationConfig", plain, "1.0")
    assert refused["error"]["code"] == -32602 and "https is required" in refused["error"]["message"], refused
