"""The limits (a2a_server/limits.py) and the gate (http/auth.py) in-process: the bucket's arithmetic, message
checks, and what an unauthenticated server limits (client addresses, loopback exempt)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from a2a_server import Settings, create_app
from a2a_server.dialects.base import SendRequest
from a2a_server.errors import InvalidParams
from a2a_server.limits import Buckets, Limits, Streams, check_message
from a2a_server.model import Message, Part, Role


def test_a_bucket_grants_its_burst_then_its_rate() -> None:
    buckets = Buckets(rate=2.0, burst=3)
    assert [buckets.take("a", now=10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", now=10.0) == pytest.approx(0.5)  # one token in half a second
    assert buckets.take("b", now=10.0) == 0.0  # another caller has its own bucket
    assert buckets.take("a", now=10.5) == 0.0
    assert buckets.take("a", now=100.0) == 0.0  # refilled, but never past the burst
    assert [buckets.take("a", now=100.0) for _ in range(3)][-1] > 0
    assert Buckets(rate=0, burst=1).take("a") == 0.0  # 0 = no limit


def test_idle_buckets_are_forgotten() -> None:
    buckets = Buckets(rate=10.0, burst=10)
    for i in range(1000):
        buckets.take(f"addr-{i}", now=0.0)
    buckets.take("late", now=120.0)
    assert len(buckets._buckets) == 1


def test_streams_count_per_caller() -> None:
    streams = Streams(cap=2)
    streams.open("a")
    streams.open("a")
    assert streams.full("a") and not streams.full("b")
    streams.close("a")
    assert not streams.full("a")
    assert not Streams(cap=0).full("a")


def _req(parts: int = 1, text: str = "hi", metadata: dict[str, object] | None = None) -> SendRequest:
    message = Message(role=Role.USER, parts=[Part.of_text(text) for _ in range(parts)])
    return SendRequest(message, metadata=metadata or {})


@pytest.mark.parametrize(
    ("req", "named"),
    [
        (_req(parts=5), "max_parts"),
        (_req(text="x" * 500), "max_message_bytes"),
        (_req(metadata={"a": [[[[{"deep": 1}]]]]}), "max_metadata_depth"),
        (_req(metadata={"a": "b" * 200}), "max_metadata_bytes"),
    ],
)
def test_a_message_past_a_limit_names_it(req: SendRequest, named: str) -> None:
    limits = Limits(parts=4, message_bytes=400, metadata_depth=4, metadata_bytes=100)
    with pytest.raises(InvalidParams, match=named):
        check_message(req, limits)
    check_message(_req(parts=4, metadata={"a": [[{"ok": 1}]]}), limits)  # at the limits: fine


@pytest.fixture
def settings() -> Settings:
    return Settings(skills=["echo"], store="memory", rate_limit=1.0, rate_burst=2)


async def _client(settings: Settings, client: tuple[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_without_keys_the_rate_is_per_client_address(settings: Settings) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "x"}}
    async for remote in _client(settings, ("203.0.113.7", 4000)):
        codes = [(await remote.post("/a2a", json=body)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
    async for local in _client(settings, ("127.0.0.1", 4000)):
        codes = [(await local.post("/a2a", json=body)).status_code for _ in range(5)]
        assert codes == [200] * 5  # loopback: the local user, or a proxy whose clients all look alike


def test_a_server_without_keys_says_so_and_warns_beyond_loopback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "a2a_server")
    create_app(Settings(skills=["echo"], store="memory"))
    assert "auth: off" in caplog.text and "WARNING" not in caplog.text
    caplog.clear()
    create_app(Settings(skills=["echo"], store="memory", host="0.0.0.0"))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "beyond this machine" in warnings[0].getMessage()


async def test_without_keys_there_is_no_server_wide_task_cap() -> None:
    """Every caller is 'anonymous' without keys: a cap per owner would cap the whole server, so it is off."""
    settings = Settings(skills=["echo"], store="memory", max_running_tasks=1)
    async for client in _client(settings, ("127.0.0.1", 4000)):
        states = []
        for i in range(3):
            message = {"role": "user", "messageId": f"m{i}", "parts": [{"kind": "text", "text": "a b c d e f"}]}
            params = {"message": message, "configuration": {"blocking": False}, "metadata": {"delay_ms": 500}}
            answer = await client.post(
                "/a2a", json={"jsonrpc": "2.0", "id": i, "method": "message/send", "params": params}
            )
            assert answer.status_code == 200 and "result" in answer.json(), answer.text
            states.append(answer.json()["result"]["status"]["state"])
        assert len(states) == 3 and set(states) <= {"submitted", "working"}
