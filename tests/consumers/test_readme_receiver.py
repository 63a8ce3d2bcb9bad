"""The receiver example of the README ("Push notifications") runs as written against the real sender: it accepts
every signed notification and refuses a tampered one."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import uvicorn

from tests.conftest import ROOT, free_port
from tests.consumers.receiver import SECRET, until


def readme_receiver() -> dict[str, Any]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Push notifications") :]
    code = re.search(r"A receiver that verifies the signature.*?```python\n(.*?)```", section, re.S)
    assert code is not None, "the README lost its receiver example"
    source = code.group(1).replace('b"the config\'s signingSecret"', repr(SECRET.encode()))
    namespace: dict[str, Any] = {"__name__": "readme_receiver"}
    exec(compile(source, str(Path("README.md")), "exec"), namespace)
    return namespace


async def test_the_readme_receiver_verifies_real_notifications(client: httpx.AsyncClient) -> None:
    receiver = readme_receiver()
    port = free_port()
    config = uvicorn.Config(receiver["app"], host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            ws="none", http="h11")  # fmt: skip
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{port}/hook"
        params = {"message": {"messageId": uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "readme"}]},
                  "configuration": {"taskPushNotificationConfig": {"url": url, "signingSecret": SECRET}}}  # fmt: skip
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
        task = (await client.post("/a2a", json=body, headers={"A2A-Version": "1.0"})).json()["result"]["task"]
        seen: set[str] = receiver["seen"]
        # submitted, working and completed (event 3, the one chunk, is not asked for), each accepted: a refused one
        # would be given up (401 is not retried) and never seen
        expected = {f"{task['id']}:{n}" for n in (1, 2, 4)}
        await until(lambda: expected <= seen, what="the README receiver to see every status")
        assert seen == expected
        async with httpx.AsyncClient() as raw:
            forged = await raw.post(url, content=b"{}", headers={"x-a2a-timestamp": "1", "x-a2a-signature": "sha256=0",
                                                                 "x-a2a-event-id": "x:1"})  # fmt: skip
        assert forged.status_code == 401 and "x:1" not in seen
    finally:
        server.should_exit = True
        await serving
