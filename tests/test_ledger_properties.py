"""Property test of billing channels: random interleavings of open / send / cancel / close / expiry on the real app.

Each example starts the app (memory or SQLite store), runs the operations hypothesis drew against it over
JSON-RPC, with the tasks running concurrently (sends return at once), and checks, while it runs and at the end:
- no channel's charged amount is ever negative or above its deposit (the balance is never negative);
- Σ charged + Σ refunded = Σ deposits over the receipts;
- each task is charged exactly its delivered tokens * rate, and the ledger holds one charge per committed chunk
  event of its log, no more (nothing charged twice, nothing delivered for free).
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a2a_server import Settings, create_app
from a2a_server.model import ArtifactEvent
from tests.tally_skill import TallySkill, chunks_of


@dataclass(frozen=True)
class Open:
    deposit: int
    rate: int
    expires_in: float | None


@dataclass(frozen=True)
class Send:
    channel: int
    count: int
    per_chunk: int
    delay_ms: int


@dataclass(frozen=True)
class Cancel:
    task: int


@dataclass(frozen=True)
class Close:
    channel: int


@dataclass(frozen=True)
class Wait:
    ms: int


OPS = st.one_of(
    st.builds(Open, st.integers(1, 120), st.integers(1, 4), st.one_of(st.none(), st.sampled_from([0.15, 0.4]))),
    st.builds(Send, st.integers(0, 5), st.integers(0, 25), st.integers(1, 3), st.sampled_from([0, 2, 10])),
    st.builds(Cancel, st.integers(0, 8)),
    st.builds(Close, st.integers(0, 5)),
    st.builds(Wait, st.integers(0, 60)),
)
SCENARIOS = st.lists(OPS, min_size=1, max_size=14)
Op = Open | Send | Cancel | Close | Wait


class Scenario:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.channels: list[dict[str, Any]] = []  # as opened
        self.tasks: list[tuple[str, str, int]] = []  # (task id, channel id, per_chunk)

    async def rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        reply: dict[str, Any] = (await self.http.post("/a2a", json=body)).json()
        return reply

    async def apply(self, op: Op) -> None:
        if isinstance(op, Open):
            params: dict[str, Any] = {"deposit": str(op.deposit), "tokenRate": str(op.rate)}
            if op.expires_in is not None:
                params["expiresIn"] = op.expires_in
            self.channels.append((await self.rpc("OpenChannel", params))["result"])
        elif isinstance(op, Send) and self.channels:
            channel = self.channels[op.channel % len(self.channels)]["id"]
            metadata = {"skill": "tally", "channel": channel, "count": op.count, "per_chunk": op.per_chunk,
                        "delay_ms": op.delay_ms}  # fmt: skip
            message = {"messageId": f"m{len(self.tasks)}-{op}", "role": "ROLE_USER", "parts": [{"text": "go"}],
                       "metadata": metadata}  # fmt: skip
            reply = await self.rpc("SendMessage", {"message": message, "configuration": {"returnImmediately": True}})
            if "error" in reply:  # refused before any work: a closed, expired or exhausted channel
                assert reply["error"]["code"] == -32602 and "metadata.channel" in reply["error"]["message"], reply
            else:
                self.tasks.append((reply["result"]["task"]["id"], channel, op.per_chunk))
        elif isinstance(op, Cancel) and self.tasks:
            reply = await self.rpc("CancelTask", {"id": self.tasks[op.task % len(self.tasks)][0]})
            assert "result" in reply or reply["error"]["code"] == -32002, reply  # -32002: already terminal
        elif isinstance(op, Close) and self.channels:
            reply = await self.rpc("CloseChannel", {"id": self.channels[op.channel % len(self.channels)]["id"]})
            assert "result" in reply, reply
        elif isinstance(op, Wait):
            await asyncio.sleep(op.ms / 1000)
        await self.check_balances()

    async def check_balances(self) -> None:
        for channel in (await self.rpc("ListChannels", {}))["result"]["channels"]:
            charged, deposit = int(channel["charged"]), int(channel["deposit"])
            assert 0 <= charged <= deposit and int(channel["balance"]) == deposit - charged >= 0, channel


async def run_scenario(store: str, ops: list[Op]) -> None:
    app = create_app(Settings(store=store, cancel_grace=1.0), skills=[TallySkill()])
    async with app.router.lifespan_context(app):
        service = app.state.a2a.service
        assert service.channels is not None
        service.channels.sweep_s = 0.05  # expiry is checked this often
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=20) as http:
            scenario = Scenario(http)
            for op in ops:
                await scenario.apply(op)
            receipts = [
                (await scenario.rpc("CloseChannel", {"id": c["id"]}))["result"] for c in scenario.channels
            ]  # closing cancels what still runs, so every task is settled after this
            deposits = sum(int(c["deposit"]) for c in scenario.channels)
            charged = sum(int(r["totalCharged"]) for r in receipts)
            refunded = sum(int(r["refunded"]) for r in receipts)
            assert charged + refunded == deposits
            rates = {c["id"]: int(c["tokenRate"]) for c in scenario.channels}
            billed = {t["taskId"]: t for r in receipts for t in r["tasks"]}
            ledger = service.channels.ledger
            for task_id, channel_id, per_chunk in scenario.tasks:
                task = (await scenario.rpc("GetTask", {"id": task_id}))["result"]
                assert task["status"]["state"] in ("TASK_STATE_COMPLETED", "TASK_STATE_CANCELED"), task
                delivered = chunks_of(task) * per_chunk
                bill = billed[task_id]
                assert bill["tokens"] == delivered and int(bill["charged"]) == delivered * rates[channel_id], bill
                logged = await service.event_log.read_after(task_id, 0)
                chunk_ids = {
                    le.id for le in logged
                    if isinstance(le.event, ArtifactEvent) and any(p.text for p in le.event.artifact.parts)
                }  # fmt: skip
                charged_ids = [e for record in ledger.charges.get(task_id, {}).values() for e in record.events]
                assert sorted(charged_ids) == sorted(chunk_ids)  # one charge per delivered chunk event, no more
            for receipt in receipts:
                assert sum(int(t["charged"]) for t in receipt["tasks"]) == int(receipt["totalCharged"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=SCENARIOS)
def test_random_interleavings_keep_the_books_on_the_memory_store(ops: list[Op]) -> None:
    asyncio.run(run_scenario("memory", ops))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=SCENARIOS)
def test_random_interleavings_keep_the_books_on_sqlite(ops: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run_scenario(f"sqlite://{Path(tmp) / 'ledger.db'}", ops))


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_scenario_with_every_operation(store: str, tmp_path: Path) -> None:
    """A fixed interleaving (so a regression shows without hypothesis' luck): exhaust, cancel, expire, close."""
    ops: list[Op] = [
        Open(10, 2, None), Open(100, 1, 0.15), Open(60, 3, None),
        Send(0, 20, 1, 0), Send(1, 25, 2, 10), Send(2, 25, 1, 10), Send(2, 25, 1, 10),
        Wait(40), Cancel(2), Wait(200), Close(2), Send(1, 3, 1, 0),
    ]  # fmt: skip
    asyncio.run(run_scenario("memory" if store == "memory" else f"sqlite://{tmp_path / 'l.db'}", ops))
