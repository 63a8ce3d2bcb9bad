"""The official a2a-sdk client (1.3.0) sets, gets, lists and deletes push configs over each of its transports (1.0
JSON-RPC, 0.3 JSON-RPC, 1.0 HTTP+JSON), and a config it sends inside SendMessageConfiguration makes the real server
notify a real receiver (allow-listed on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import httpx
import pytest
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.client.card_resolver import parse_agent_card
from a2a.types import (
    AuthenticationInfo,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    ListTaskPushNotificationConfigsRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    TaskPushNotificationConfig,
)

from tests.conftest import ServerProcess, start_server, stop_server
from tests.consumers.receiver import Receiver, until

SECRET = "0123456789abcdef-sdk-secret"


@pytest.fixture(scope="module")
def push_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("push"), "--push-allow", "127.0.0.1")
    yield srv
    stop_server(srv)


@pytest.fixture(params=["1.0", "0.3", "rest"], ids=["sdk-v1.0", "sdk-v0.3", "sdk-rest"])
async def sdk(request: pytest.FixtureRequest, push_server: ServerProcess) -> AsyncIterator[tuple[Client, list[str]]]:
    binding = "HTTP+JSON" if request.param == "rest" else "JSONRPC"
    version = "1.0" if request.param == "rest" else str(request.param)
    wire: list[str] = []

    async def record(req: httpx.Request) -> None:
        wire.append(f"{req.method} {req.url.path}" if "/rest/" in req.url.path else req.content.decode())

    async with httpx.AsyncClient(timeout=10, event_hooks={"request": [record]}) as http:
        raw = await http.get(push_server.url + "/.well-known/agent-card.json", headers={"A2A-Version": version})
        assert raw.json()["capabilities"]["pushNotifications"] is True
        card = parse_agent_card(raw.json())
        config = ClientConfig(httpx_client=http, streaming=False, supported_protocol_bindings=[binding])
        client = ClientFactory(config).create(card)
        try:
            yield client, wire
        finally:
            await client.close()


def message(text: str) -> Message:
    return Message(message_id=uuid4().hex, role=Role.ROLE_USER, parts=[Part(text=text)])


async def test_the_sdk_sets_gets_lists_and_deletes_configs(sdk: tuple[Client, list[str]], receiver: Receiver) -> None:
    client, wire = sdk
    [sent] = [ev async for ev in client.send_message(SendMessageRequest(message=message("hello")))]
    task_id = sent.task.id
    made = await client.create_task_push_notification_config(
        TaskPushNotificationConfig(task_id=task_id, id="hook-a", url=receiver.url, token="tok-a")
    )
    assert (made.task_id, made.id, made.url, made.token) == (task_id, "hook-a", receiver.url, "tok-a")
    await client.create_task_push_notification_config(
        TaskPushNotificationConfig(task_id=task_id, id="hook-b", url=receiver.url,
                                   authentication=AuthenticationInfo(scheme="Bearer", credentials="xyz"))
    )  # fmt: skip
    listed = await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=task_id))
    assert [c.id for c in listed.configs] == ["hook-a", "hook-b"]
    got = await client.get_task_push_notification_config(GetTaskPushNotificationConfigRequest(task_id=task_id,
                                                                                                id="hook-b"))
    assert got.url == receiver.url and got.authentication.scheme == "Bearer"
    assert got.authentication.credentials == "xyz"
    await client.delete_task_push_notification_config(DeleteTaskPushNotificationConfigRequest(task_id=task_id,
                                                                                               id="hook-a"))
    listed = await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=task_id))
    assert [c.id for c in listed.configs] == ["hook-b"]
    # the SDK spoke push over the transport under test
    spoken = "\n".join(wire)
    assert ("pushNotificationConfigs" in spoken) if "/rest/" in spoken else ("ushNotificationConfig" in spoken)


async def test_a_config_in_the_sdk_send_configuration_notifies_the_receiver(
    sdk: tuple[Client, list[str]], receiver: Receiver, push_server: ServerProcess
) -> None:
    client, _ = sdk
    push = TaskPushNotificationConfig(url=receiver.url, token="tok-send")
    configuration = SendMessageConfiguration(task_push_notification_config=push)
    request = SendMessageRequest(message=message("notify me"), configuration=configuration)
    [sent] = [ev async for ev in client.send_message(request)]
    task_id = sent.task.id

    def finished() -> bool:
        return any("completed" in str(h.body).lower() for h in receiver.accepted)

    receiver.strict = False  # the SDK cannot set our signingSecret: the receiver verifies with the drawn one below
    await until(finished, what="the completed notification")
    assert all(h.headers["x-a2a-notification-token"] == "tok-send" for h in receiver.accepted)
    assert {h.event_id.split(":")[0] for h in receiver.accepted} == {task_id}
    async with httpx.AsyncClient(base_url=push_server.url) as http:  # a raw read shows what the SDK's types drop
        path = f"/a2a/rest/tasks/{task_id}/pushNotificationConfigs/{task_id}"

        async def done() -> bool:
            return bool((await http.get(path)).json()["delivery"]["state"] == "done")

        await until(done, what="the delivery to be saved as done")
        raw = (await http.get(path)).json()
    assert raw["token"] == "tok-send" and raw["delivery"]["delivered"] == len(receiver.accepted)
    receiver.secrets.add(raw["signingSecret"])
    assert all(receiver.verify(h.headers, h.raw) for h in receiver.accepted)
