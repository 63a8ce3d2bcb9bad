"""How the sender treats each answer of a real receiver: a 4xx gives the event up and goes on, a redirect is not
followed, Retry-After is honoured, a hanging receiver times out, a deleted config stops, and a receiver that never
answers does not hold up the task it is notified about."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import uuid4

import httpx

from a2a_server import Settings, create_app
from tests.consumers.receiver import SECRET, Receiver, until


async def rpc(client: httpx.AsyncClient, method: str, params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return (await client.post("/a2a", json=body, headers={"A2A-Version": "1.0"})).json()


@asynccontextmanager
async def serving(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (memory store) with push settings of the test's own."""
    push: dict[str, Any] = {"push_allow": ["127.0.0.1"], "push_retry_base": 0.05, "push_retry_max": 0.3,
                            "push_max_failures": 2, **overrides}  # fmt: skip
    settings = Settings(skills=["echo"], store="memory", **push)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        yield client


async def send(client: httpx.AsyncClient, receiver: Receiver, text: str = "a b", **config: Any) -> str:
    hook = {"url": receiver.url, "signingSecret": SECRET, **config}
    params = {"message": {"messageId": uuid4().hex, "role": "ROLE_USER", "parts": [{"text": text}]},
              "configuration": {"taskPushNotificationConfig": hook}}  # fmt: skip
    task = (await rpc(client, "SendMessage", params))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    return str(task["id"])


async def delivery(client: httpx.AsyncClient, task_id: str) -> Any:
    ref = {"taskId": task_id, "id": task_id}
    return (await rpc(client, "GetTaskPushNotificationConfig", ref))["result"]["delivery"]


def completed(receiver: Receiver) -> bool:
    return any(h.body.get("statusUpdate", {}).get("status", {}).get("state") == "TASK_STATE_COMPLETED"
               for h in receiver.accepted)  # fmt: skip


async def test_a_4xx_gives_that_event_up_and_delivery_goes_on(receiver: Receiver) -> None:
    receiver.script = [(404, {})]
    async with serving() as client:
        await send(client, receiver)
        await until(lambda: completed(receiver), what="the completed notification")
    first = receiver.hits[0].event_id
    assert [h.event_id for h in receiver.hits].count(first) == 1  # not retried
    assert receiver.hits[0].status == 404 and receiver.accepted[0].event_id != first


async def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.script = [(307, {"Location": receiver.url})]  # a follow would POST the same event here again
    async with serving() as client:
        task_id = await send(client, receiver)
        await until(lambda: completed(receiver), what="the completed notification")

        async def done() -> bool:
            return bool((await delivery(client, task_id))["state"] == "done")

        await until(done, what="done")
    first = receiver.hits[0].event_id
    assert [h.event_id for h in receiver.hits].count(first) == 1


async def test_retry_after_is_honoured(receiver: Receiver) -> None:
    receiver.script = [(429, {"Retry-After": "2"})]
    async with serving(push_retry_max=10.0) as client:
        task_id = await send(client, receiver)

        async def waiting() -> bool:
            return bool((await delivery(client, task_id)).get("nextTry"))

        await until(waiting, what="a scheduled retry")
        d = await delivery(client, task_id)
        assert d["lastStatus"] == "429" and d["attempts"] == 1

        def parse(ts: str) -> datetime:
            return datetime.fromisoformat(ts.replace("Z", "+00:00"))

        assert (parse(d["nextTry"]) - parse(d["lastAttempt"])).total_seconds() >= 1.99  # not the 0.05 s backoff
        await until(lambda: completed(receiver), what="delivery after the wait")
    assert receiver.hits[0].event_id == receiver.hits[1].event_id and receiver.hits[1].status == 200


async def test_a_receiver_that_does_not_answer_times_out_and_does_not_hold_up_the_task(receiver: Receiver) -> None:
    receiver.hold = asyncio.Event()
    try:
        async with serving(push_timeout=0.3) as client:
            # the blocking send returns the completed task while the receiver still holds the first notification
            task_id = await send(client, receiver, "one two three four")
            assert receiver.hits == []

            async def timed_out() -> bool:
                d = await delivery(client, task_id)
                return bool(d.get("lastStatus") == "timeout" and d["state"] == "failing")

            await until(timed_out, what="timeouts to mark the config failing")
            receiver.hold.set()
            await until(lambda: completed(receiver), what="delivery once the receiver answers")
    finally:
        receiver.hold.set()


async def test_a_deleted_config_stops_its_delivery(receiver: Receiver) -> None:
    await receiver.stop()
    async with serving() as client:
        task_id = await send(client, receiver)

        async def failing() -> bool:
            return bool((await delivery(client, task_id))["state"] == "failing")

        await until(failing, what="failing")
        deleted = await rpc(client, "DeleteTaskPushNotificationConfig", {"taskId": task_id, "id": task_id})
        assert deleted["result"] == {}
        await receiver.start()
        await asyncio.sleep(1.0)  # > 3 retry periods (push_retry_max 0.3 s): a live worker would have delivered
        assert receiver.hits == []
