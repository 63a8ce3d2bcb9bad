"""Push delivery survives the server: a real server process on SQLite is killed (SIGKILL) while a receiver refuses
notifications, and the restarted server resumes from each config's saved cursor — nothing skipped, nothing sent
again from the start."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx

from tests.conftest import start_server, stop_server
from tests.consumers.receiver import SECRET, Receiver, until

ENV = {"A2A_PUSH_RETRY_BASE": "0.1", "A2A_PUSH_RETRY_MAX": "0.5"}


async def rpc(http: httpx.AsyncClient, url: str, method: str, params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return (await http.post(url + "/a2a", json=body, headers={"A2A-Version": "1.0"})).json()


async def test_a_killed_server_resumes_delivery_from_the_saved_cursor(tmp_path: Path, receiver: Receiver) -> None:
    store = ["--store", f"sqlite://{tmp_path / 'tasks.db'}", "--push-allow", "127.0.0.1"]
    receiver.accept_only = 2  # then 503 until further notice: the sender keeps retrying the third event
    server = start_server(tmp_path, *store, env=ENV)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            config = {"url": receiver.url, "signingSecret": SECRET, "artifacts": True}
            params = {
                "message": {"messageId": uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "a b c d e"}]},
                "configuration": {"taskPushNotificationConfig": config},
            }
            task = (await rpc(http, server.url, "SendMessage", params))["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_COMPLETED"
            await until(lambda: len(receiver.hits) >= 4, what="retries of the third event")
            ref = {"taskId": task["id"], "id": task["id"]}
            delivery = (await rpc(http, server.url, "GetTaskPushNotificationConfig", ref))["result"]["delivery"]
            assert delivery["lastEventId"] == receiver.accepted[-1].event_id and delivery["lastStatus"] == "503"
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=10)
            assert len(receiver.accepted) == 2

            receiver.accept_only = None
            server = start_server(tmp_path, *store, env=ENV)

            def completed() -> bool:
                last = receiver.accepted[-1].body if receiver.accepted else {}
                return bool(last.get("statusUpdate", {}).get("status", {}).get("state") == "TASK_STATE_COMPLETED")

            await until(completed, what="delivery to resume after the restart")
            sent = [int(h.event_id.rsplit(":", 1)[1]) for h in receiver.accepted]
            assert sent == list(range(1, len(sent) + 1))  # every event exactly once, in order, across the kill
            kinds = [next(iter(h.body)) for h in receiver.accepted]
            assert kinds.count("artifactUpdate") == 5 and kinds[-1] == "statusUpdate"  # five words, then completed
            assert all(h.verified for h in receiver.hits)
            assert "resuming delivery for 1 webhook configs" in server.log()
    finally:
        stop_server(server)
