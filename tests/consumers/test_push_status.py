"""A task whose webhook keeps failing shows it in every read of the task, in every dialect, and stops showing it
once the receiver is back and delivery has caught up (issue 13: "the config is marked failing and the task shows
it"). A real receiver answers 500 past the failure limit (2 here, retries 0.05 to 0.3 s: see ``serving``); the app is
real, over the memory store and over a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from a2a_server import Settings, create_app
from a2a_server.push_status import KEY
from tests.consumers.receiver import SECRET, Receiver, until

# the receiver answers 500 to every notification while this many are left (far more than the test sends)
DOWN = 10**6


@asynccontextmanager
async def serving(store: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(skills=["echo"], store=store, push_allow=["127.0.0.1"], push_retry_base=0.05,
                        push_retry_max=0.3, push_max_failures=2)  # fmt: skip
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        yield client


async def rpc(client: httpx.AsyncClient, method: str, params: Any, version: str) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = (await client.post("/a2a", json=body, headers={"A2A-Version": version})).json()
    assert "result" in reply, reply
    return reply["result"]


async def send(client: httpx.AsyncClient, receiver: Receiver | None, text: str = "a b") -> str:
    configuration: dict[str, Any] = {}
    if receiver is not None:
        configuration["taskPushNotificationConfig"] = {"id": "hook", "url": receiver.url, "signingSecret": SECRET}
    params = {"message": {"messageId": uuid4().hex, "role": "ROLE_USER", "parts": [{"text": text}]},
              "configuration": configuration}  # fmt: skip
    task = (await rpc(client, "SendMessage", params, "1.0"))["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    return str(task["id"])


async def reads(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """The task's metadata as each read of it shows it, by the read's name."""
    listed = (await rpc(client, "ListTasks", {"pageSize": 100}, "1.0"))["tasks"]
    rest = (await client.get(f"/a2a/rest/tasks/{task_id}")).json()
    shown = {
        "GetTask 1.0": (await rpc(client, "GetTask", {"id": task_id}, "1.0")).get("metadata"),
        "tasks/get 0.3": (await rpc(client, "tasks/get", {"id": task_id}, "0.3")).get("metadata"),
        "tasks/get 0.1": (await rpc(client, "tasks/get", {"id": task_id}, "0.1")).get("metadata"),
        "REST GET /tasks/{id}": rest.get("metadata"),
        "ListTasks": next(t for t in listed if t["id"] == task_id).get("metadata"),
    }
    return {name: (metadata or {}).get(KEY) for name, metadata in shown.items()}


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_a_failing_webhook_shows_in_every_read_of_its_task_until_delivery_catches_up(
    receiver: Receiver, tmp_path: Path, backend: str
) -> None:
    store = "memory" if backend == "memory" else f"sqlite://{tmp_path / 'tasks.db'}"
    receiver.fail_next = DOWN
    async with serving(store) as client:
        quiet = await send(client, None)  # a task without a webhook, read beside the failing one
        task_id = await send(client, receiver)

        async def failing_everywhere() -> bool:
            return all(shown is not None for shown in (await reads(client, task_id)).values())

        await until(failing_everywhere, what="every read of the task to show its failing webhook")
        for name, shown in (await reads(client, task_id)).items():
            hook = shown["hook"]
            assert hook["state"] == "failing", name
            assert hook["attempts"] >= 2 and hook["lastStatus"] == "500" and hook["nextTry"], (name, hook)
            assert hook["delivered"] == 0, (name, hook)
            assert set(shown) == {"hook"}, name
        assert all(shown is None for shown in (await reads(client, quiet)).values())
        # the config's own read agrees
        config = await rpc(client, "GetTaskPushNotificationConfig", {"taskId": task_id, "id": "hook"}, "1.0")
        assert config["delivery"]["state"] == "failing"

        receiver.fail_next = 0  # the receiver recovers: the worker's next retry delivers everything

        async def recovered() -> bool:
            return all(shown is None for shown in (await reads(client, task_id)).values())

        await until(recovered, what="the task to stop showing the webhook once the receiver took the event")

        async def caught_up() -> bool:
            config = await rpc(client, "GetTaskPushNotificationConfig", {"taskId": task_id, "id": "hook"}, "1.0")
            return bool(config["delivery"]["state"] == "done")

        await until(caught_up, what="delivery to catch up")
        assert all(shown is None for shown in (await reads(client, task_id)).values())
        states = [h.body["statusUpdate"]["status"]["state"] for h in receiver.accepted]
        assert states[-1] == "TASK_STATE_COMPLETED", states


async def test_a_resubscribe_opens_with_the_failing_webhook_in_the_task(receiver: Receiver) -> None:
    receiver.fail_next = DOWN
    async with serving("memory") as client:
        task_id = await send(client, receiver)

        async def failing() -> bool:
            return (await rpc(client, "GetTask", {"id": task_id}, "1.0")).get("metadata", {}).get(KEY) is not None

        await until(failing, what="the webhook to be failing")
        body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/resubscribe", "params": {"id": task_id}}
        reply = await client.post("/a2a", json=body, headers={"A2A-Version": "0.3"})
        first = next(line for line in reply.text.splitlines() if line.startswith("data:"))
        task = json.loads(first.removeprefix("data:"))["result"]
        assert task["id"] == task_id and task["metadata"][KEY]["hook"]["state"] == "failing", task
