"""API keys against a real server: the ``keys`` command, 401/403 in every endpoint's dialect, the card's security
declarations, keys added and revoked while the server runs, and the official clients (a2a-sdk with its
AuthInterceptor, openai with ``api_key``) presenting a key."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.client.auth import AuthInterceptor
from a2a.client.card_resolver import parse_agent_card
from a2a.types import GetTaskRequest, Message, Part, Role, SendMessageRequest, TaskState
from openai import AsyncOpenAI

from tests.conftest import ROOT, start_server, stop_server
from tests.e2e.auth_harness import ApiKey, KeyedServer, add_key, keyed_server, keys_cli

TIMEOUT = 10.0
SCOPES = {"alice": "send,read", "reader": "read", "sender": "send", "root": "admin"}
V10 = {"A2A-Version": "1.0"}


@pytest.fixture(scope="module")
def ks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedServer]:
    skills = "echo,conformance,tests.e2e.fake_models:WordsSkill"
    srv = keyed_server(tmp_path_factory.mktemp("auth"), SCOPES, skills=skills)
    yield srv
    stop_server(srv.server)


@pytest.fixture
async def http(ks: KeyedServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ks.url, timeout=TIMEOUT) as c:
        yield c


def send03(text: str = "hello", **params: Any) -> dict[str, Any]:
    message = {"role": "user", "messageId": uuid.uuid4().hex, "parts": [{"kind": "text", "text": text}]}
    return {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message, **params}}


def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}


# ------------------------------------------------------------------------------------------ the command


def test_keys_add_prints_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    key = add_key(path, "carol", "read")
    text = path.read_text()
    assert key not in text and key[4:] not in text
    stored = json.loads(text)["keys"]
    assert [(k["name"], k["scopes"]) for k in stored] == [("carol", ["read"])]
    assert stored[0]["hash"].startswith("sha256:") and stored[0]["created"].endswith("Z")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    listed = keys_cli("list", "--file", str(path))
    name, key_id, scopes, _ = listed.stdout.split("\t")
    assert listed.returncode == 0 and (name, scopes) == ("carol", "read") and stored[0]["hash"][7:15] == key_id
    assert key not in listed.stdout + listed.stderr


def test_keys_command_refuses_what_it_cannot_do_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    add_key(path, "carol")
    again = keys_cli("add", "carol", "--file", str(path))
    assert again.returncode == 2 and "exists" in again.stderr
    bad = keys_cli("add", "dave", "--scopes", "read,write", "--file", str(path))
    assert bad.returncode == 2 and "send, read, admin" in bad.stderr
    odd = keys_cli("add", "no spaces", "--file", str(path))
    assert odd.returncode == 2 and "name" in odd.stderr
    gone = keys_cli("revoke", "nobody", "--file", str(path))
    assert gone.returncode == 2 and "no key named 'nobody'" in gone.stderr
    nofile = keys_cli("list")
    assert nofile.returncode == 2 and "A2A_API_KEYS_FILE" in nofile.stderr
    revoked = keys_cli("revoke", "carol", "--file", str(path))
    assert revoked.returncode == 0 and json.loads(path.read_text()) == {"keys": []}


def test_serve_without_the_keys_file_stops_and_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as failed:
        start_server(tmp_path, "--api-keys-file", str(tmp_path / "missing.json"))
    assert "does not exist" in str(failed.value) and "a2a-server keys add" in str(failed.value)


def test_start_up_log_says_whether_auth_is_on(ks: KeyedServer, tmp_path: Path) -> None:
    assert f"auth: on: {len(SCOPES)} keys from {ks.keys_file}" in ks.server.log()
    assert "try: curl -N " + ks.url + "/a2a/stream -H 'Authorization: Bearer <key>'" in ks.server.log()
    plain = start_server(tmp_path)
    try:
        assert plain.log().count("auth: off") == 1
    finally:
        stop_server(plain)


# ------------------------------------------------------------------------------------ 401 / 403 per face


async def test_no_key_is_401_in_each_endpoints_own_dialect(http: httpx.AsyncClient) -> None:
    answer = await http.post("/a2a", json=send03())
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["error"]["code"] == -32040 and "Authorization: Bearer" in answer.json()["error"]["message"]
    answer = await http.post("/a2a", json=rpc("GetTask", {"id": "x"}), headers=V10)
    error = answer.json()["error"]
    assert answer.status_code == 401 and error["data"][0]["reason"] == "UNAUTHENTICATED"
    answer = await http.get("/a2a/rest/tasks")
    assert answer.status_code == 401 and answer.json()["error"]["status"] == "UNAUTHENTICATED"
    answer = await http.post("/v1/chat/completions", json={"model": "words", "messages": []})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "missing_api_key"
    for path in ("/a2a/events", "/a2a/tasks/whatever/stream"):
        answer = await http.get(path)
        assert answer.status_code == 401 and answer.json()["error"] == "missing_key", path
        assert "www-authenticate" in answer.headers


async def test_a_wrong_key_is_401_invalid_token_and_never_echoed(http: httpx.AsyncClient, ks: KeyedServer) -> None:
    wrong = ks.keys["alice"][:-3] + "xyz"
    for headers in ({"Authorization": f"Bearer {wrong}"}, {"X-API-Key": wrong}, {"Authorization": "Basic abc"}):
        answer = await http.post("/a2a", json=send03(), headers=headers)
        assert answer.status_code == 401 and 'error="invalid_token"' in answer.headers["www-authenticate"]
        assert wrong not in answer.text
    assert wrong not in ks.server.log() and ks.keys["alice"] not in ks.server.log()
    metrics = (await http.get("/metrics")).text
    refused = re.search(r'^a2a_refusals_total\{reason="invalid_key"\} (\d+)', metrics, re.M)
    assert refused is not None and int(refused.group(1)) >= 3
    assert not any(key in metrics or key[4:] in metrics for key in ks.keys.values())


async def test_public_paths_stay_public(http: httpx.AsyncClient) -> None:
    for path in ("/.well-known/agent-card.json", "/.well-known/agent.json", "/healthz", "/readyz", "/", "/v1/models"):
        assert (await http.get(path)).status_code == 200, path


async def test_both_headers_work_and_scopes_are_enforced(http: httpx.AsyncClient, ks: KeyedServer) -> None:
    sent = await http.post("/a2a", json=send03(), headers={"X-API-Key": ks.keys["alice"]})
    task = sent.json()["result"]
    assert task["status"]["state"] == "completed"
    denied = await http.post("/a2a", json=send03(), headers=ks.headers("reader"))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == -32041
    assert "has scopes read; this needs 'send'" in denied.json()["error"]["message"]
    denied = await http.post("/a2a/rest/message:send", json={"message": {}}, headers=ks.headers("reader"))
    assert denied.status_code == 403 and denied.json()["error"]["status"] == "PERMISSION_DENIED"
    denied = await http.get("/a2a/rest/tasks", headers=ks.headers("sender"))
    assert denied.status_code == 403
    denied = await http.get("/a2a/events", headers=ks.headers("sender"))
    assert denied.status_code == 403 and denied.json()["error"] == "missing_scope"
    # a batch needs every scope its members need
    batch = [send03(), rpc("tasks/get", {"id": task["id"]})]
    assert (await http.post("/a2a", json=batch, headers=ks.headers("sender"))).status_code == 403
    # read scope: allowed, and another principal's task is simply not there
    got = await http.post("/a2a", json=rpc("tasks/get", {"id": task["id"]}), headers=ks.headers("reader"))
    assert got.status_code == 200 and got.json()["error"]["code"] == -32001
    # admin: every scope, and every principal's tasks
    got = await http.post("/a2a", json=rpc("tasks/get", {"id": task["id"]}), headers=ks.headers("root"))
    assert got.json()["result"]["id"] == task["id"]


async def test_keys_added_and_revoked_while_the_server_runs(http: httpx.AsyncClient, ks: KeyedServer) -> None:
    late = add_key(ks.keys_file, "late")
    answer = await http.post("/a2a", json=send03(), headers={"Authorization": f"Bearer {late}"})
    assert answer.status_code == 200 and answer.json()["result"]["status"]["state"] == "completed"
    assert keys_cli("revoke", "late", "--file", str(ks.keys_file)).returncode == 0
    answer = await http.post("/a2a", json=send03(), headers={"Authorization": f"Bearer {late}"})
    assert answer.status_code == 401
    assert "re-read" in ks.server.log()


# ------------------------------------------------------------------------------------------------ cards


async def test_cards_declare_the_schemes_in_each_generations_shape(http: httpx.AsyncClient) -> None:
    v10 = (await http.get("/.well-known/agent-card.json", headers=V10)).json()
    assert v10["securitySchemes"]["bearer"] == {
        "httpAuthSecurityScheme": {"scheme": "Bearer", "description": "an API key made with 'a2a-server keys add'"}
    }
    assert v10["securitySchemes"]["apiKey"]["apiKeySecurityScheme"]["name"] == "X-API-Key"
    assert {"schemes": {"bearer": {"list": []}}} in v10["securityRequirements"]
    assert v10["capabilities"]["extendedAgentCard"] is True and "security" not in v10
    v03 = (await http.get("/.well-known/agent-card.json", headers={"A2A-Version": "0.3"})).json()
    assert v03["securitySchemes"]["bearer"]["type"] == "http" and {"bearer": []} in v03["security"]
    assert v03["supportsAuthenticatedExtendedCard"] is True and "securityRequirements" not in v03


async def test_the_extended_card_answers_an_authenticated_caller(http: httpx.AsyncClient, ks: KeyedServer) -> None:
    got = await http.post("/a2a", json=rpc("GetExtendedAgentCard", {}), headers=ks.headers("reader", **V10))
    assert "securityRequirements" in got.json()["result"]
    got = await http.post("/a2a", json=rpc("agent/getAuthenticatedExtendedCard", {}), headers=ks.headers("reader"))
    assert got.json()["result"]["protocolVersion"] == "0.3.0"
    got = await http.get("/a2a/rest/extendedAgentCard", headers=ks.headers("reader"))
    assert got.status_code == 200 and got.json()["name"]
    assert (await http.get("/a2a/rest/extendedAgentCard")).status_code == 401


# ------------------------------------------------------------------------------------------ real clients


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_the_a2a_sdk_presents_the_key_through_its_auth_interceptor(ks: KeyedServer, binding: str) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        card = parse_agent_card((await client.get(ks.url + "/.well-known/agent-card.json", headers=V10)).json())
        config = ClientConfig(httpx_client=client, streaming=False, supported_protocol_bindings=[binding])
        sdk = ClientFactory(config).create(card, interceptors=[AuthInterceptor(ApiKey(ks.keys["alice"]))])
        message = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text="keyed hello")])
        events = [ev async for ev in sdk.send_message(SendMessageRequest(message=message))]
        task = events[-1].task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        again = await sdk.get_task(GetTaskRequest(id=task.id))
        assert again.id == task.id
        await sdk.close()
        without = ClientFactory(config).create(card)
        with pytest.raises(Exception, match="401"):
            await without.get_task(GetTaskRequest(id=task.id))
        await without.close()


async def test_the_openai_client_presents_its_api_key(ks: KeyedServer) -> None:
    base = f"{ks.url}/v1"
    async with AsyncOpenAI(base_url=base, api_key=ks.keys["alice"], max_retries=0, timeout=TIMEOUT) as client:
        completion = await client.chat.completions.create(model="words", messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content == "hi"
        stream = await client.chat.completions.create(
            model="words", messages=[{"role": "user", "content": "a b c"}], stream=True
        )
        assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "a b c"
    async with AsyncOpenAI(base_url=base, api_key="a2a_wrong", max_retries=0, timeout=TIMEOUT) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="words", messages=[{"role": "user", "content": "hi"}])
    async with AsyncOpenAI(base_url=base, api_key=ks.keys["reader"], max_retries=0, timeout=TIMEOUT) as client:
        with pytest.raises(openai.PermissionDeniedError):
            await client.chat.completions.create(model="words", messages=[{"role": "user", "content": "hi"}])


def test_the_command_line_client_takes_the_key_from_a2a_api_key(ks: KeyedServer) -> None:
    def send(*env: tuple[str, str]) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "a2a_server", "send", ks.url, "keyed words", "--skill", "echo"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env={**os.environ, **dict(env)})  # fmt: skip

    done = send(("A2A_API_KEY", ks.keys["alice"]))
    assert done.returncode == 0 and "keyed words" in done.stdout, done.stderr
    refused = send(("A2A_API_KEY", ""))
    assert refused.returncode == 1 and "-32040" in refused.stderr and "$A2A_API_KEY" in refused.stderr
    assert ks.keys["alice"] not in refused.stderr + refused.stdout
