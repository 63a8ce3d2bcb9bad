from __future__ import annotations

import httpx

SEND = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "SendMessage",
    "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "one two three"}]}},
}


def _value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start!r} not in metrics:\n{text}")


async def test_metrics_count_tasks_events_tokens_and_latency(client: httpx.AsyncClient) -> None:
    r = await client.post("/a2a", json=SEND, headers={"A2A-Version": "1.0"})
    assert r.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    m = await client.get("/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    text = m.text
    assert _value(text, 'a2a_tasks_total{skill="echo",state="completed"}') == 1
    assert _value(text, 'a2a_tokens_generated_total{skill="echo"}') == 3
    # submitted, working, 3 chunks, completed
    assert _value(text, "a2a_events_published_total") == 6
    assert _value(text, "a2a_tasks_active") == 0
    assert _value(text, 'a2a_request_duration_seconds_count{method="SendMessage"}') == 1
    assert _value(text, 'a2a_time_to_first_token_seconds_count{skill="echo"}') == 1
    assert _value(text, "a2a_streams_open") == 0


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True}
