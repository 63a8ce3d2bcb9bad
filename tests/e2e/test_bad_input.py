"""Malformed requests against a real server: the right JSON-RPC error, a message naming the problem, no 500.

Each case checks the code, that the message says *what* was wrong, that nothing internal leaks
(no traceback, no library internals), and, after every test, that the server still answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, start_server, stop_server
from tests.e2e.wire import JSON, JSON_HEADERS, V10_HEADERS, assert_schema, rpc, send01, send03, send10, uid

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as c:
        yield c


@pytest.fixture
def url(server: ServerProcess) -> str:
    return f"{server.url}/a2a"


@pytest.fixture(autouse=True)
def still_serving(server: ServerProcess) -> Iterator[None]:
    """After every bad request, the server process is alive and answers."""
    yield
    assert server.process.poll() is None, f"the server died:\n{server.log()[-3000:]}"
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that takes bodies of at most 2048 bytes."""
    srv = start_server(tmp_path_factory.mktemp("small"), "--max-body-bytes", "2048", "--store", "memory")
    yield srv
    stop_server(srv)


async def post(
    http: httpx.AsyncClient,
    url: str,
    body: Any = None,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    raw = content if content is not None else json.dumps(body).encode()
    return await http.post(url, content=raw, headers=headers or JSON_HEADERS)


def error_of(response: httpx.Response, code: int, *, status: int = 200, request_id: Any = None) -> JSON:
    """The error object of a single JSON-RPC error response, after the checks every one must pass."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    answer = json.loads(response.text, parse_constant=_reject_constant)
    assert isinstance(answer, dict), answer
    assert answer["jsonrpc"] == "2.0" and "result" not in answer, answer
    assert answer["id"] == request_id, f"the error answers id {answer['id']!r}, the request had {request_id!r}"
    error: JSON = answer["error"]
    assert error["code"] == code, f"expected {code}, got {error}"
    assert_clean_message(error["message"])
    assert_schema("0.3", "JSONRPCErrorResponse", answer)  # the envelope every generation shares
    return error


def assert_clean_message(message: str) -> None:
    assert isinstance(message, str) and message, message
    for internal in ("Traceback", 'File "', "errors.pydantic.dev", "validation error for"):
        assert internal not in message, f"the message leaks internals: {message!r}"


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"the response is not strict JSON: it contains {name}")


def assert_error_info(error: JSON, reason: str | None = None) -> None:
    """A 1.0 error: ``data`` is an array of google.rpc.ErrorInfo (spec 1.0 §9.5)."""
    data = error.get("data")
    assert isinstance(data, list) and data, f"a 1.0 error carries data as a non-empty array: {error}"
    infos = [d for d in data if isinstance(d, dict) and d.get("@type") == ERROR_INFO]
    assert infos, f"no google.rpc.ErrorInfo in data: {data}"
    for info in infos:
        assert isinstance(info.get("reason"), str) and info["reason"].isupper(), info
        assert isinstance(info.get("domain"), str) and info["domain"], info
    if reason is not None:
        assert infos[0]["reason"] == reason, infos


# ------------------------------------------------------------------------------- envelope


async def test_invalid_json_is_a_parse_error(http: httpx.AsyncClient, url: str) -> None:
    error = error_of(await post(http, url, content=b'{"jsonrpc": "2.0", "method": '), -32700)
    assert "JSON" in error["message"]


async def test_a_body_that_is_not_utf8_is_a_parse_error(http: httpx.AsyncClient, url: str) -> None:
    error_of(await post(http, url, content=b"\xff\xfe{\x00"), -32700)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"jsonrpc": "1.0", "id": 1, "method": "tasks/get", "params": {"id": "x"}}, "jsonrpc"),
        ({"id": 1, "method": "tasks/get", "params": {"id": "x"}}, "jsonrpc"),
        ({"jsonrpc": "2.0", "id": 1, "params": {"id": "x"}}, "method"),
        ({"jsonrpc": "2.0", "id": 1, "method": 42, "params": {"id": "x"}}, "method"),
        ({"jsonrpc": "2.0", "id": 1, "method": ["tasks/get"]}, "method"),
    ],
    ids=["wrong jsonrpc version", "no jsonrpc", "missing method", "method a number", "method a list"],
)
async def test_a_broken_envelope_is_an_invalid_request(
    http: httpx.AsyncClient, url: str, body: JSON, named: str
) -> None:
    error = error_of(await post(http, url, body), -32600, request_id=1)
    assert named in error["message"], error


@pytest.mark.parametrize("body", ["a string", 42, None, True], ids=["string", "number", "null", "bool"])
async def test_a_request_that_is_not_an_object_is_an_invalid_request(
    http: httpx.AsyncClient, url: str, body: Any
) -> None:
    error = error_of(await post(http, url, body), -32600)
    assert "object" in error["message"], error


async def test_an_unknown_method_is_method_not_found(http: httpx.AsyncClient, url: str) -> None:
    error = error_of(await post(http, url, rpc("tasks/teleport", {"id": "x"}, request_id=9)), -32601, request_id=9)
    assert "tasks/teleport" in error["message"]


# ------------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    ("params", "named"),
    [([{"message": "hi"}], "array"), (7, "params"), ("text", "params")],
    ids=["array", "number", "string"],
)
async def test_params_of_the_wrong_type(http: httpx.AsyncClient, url: str, params: Any, named: str) -> None:
    body = {"jsonrpc": "2.0", "id": 2, "method": "message/send", "params": params}
    error = error_of(await post(http, url, body), -32602, request_id=2)
    assert named in error["message"] and "object" in error["message"], error


def _msg03(**override: Any) -> JSON:
    message: JSON = send03("hello")["message"]
    message.update(override)
    return message


@pytest.mark.parametrize(
    ("method", "params", "headers", "named"),
    [
        ("message/send", {}, JSON_HEADERS, "message"),
        ("message/send", {"message": _msg03(parts=[])}, JSON_HEADERS, "parts"),
        ("message/send", {"message": _msg03(role="robot")}, JSON_HEADERS, "role"),
        ("message/send", {"message": _msg03(parts=[{"kind": "video", "text": "x"}])}, JSON_HEADERS, "kind"),
        ("message/send", {"message": _msg03(parts=[{"kind": "text"}])}, JSON_HEADERS, "text"),
        ("message/send", {"message": _msg03(messageId=None)}, JSON_HEADERS, "messageId"),
        ("tasks/send", {"message": send01("x")["message"]}, JSON_HEADERS, "id"),
        (
            "tasks/send",
            {**send01("x"), "message": {"role": "user", "parts": [{"kind": "text", "text": "x"}]}},
            JSON_HEADERS,
            "type",
        ),
        ("tasks/send", {**send01("x"), "message": {"role": "user", "parts": []}}, JSON_HEADERS, "parts"),
        ("tasks/send", {"task": {"skill": "echo"}}, JSON_HEADERS, "input"),
        ("tasks/get", {}, JSON_HEADERS, "id"),
        ("tasks/get", {"id": 5}, JSON_HEADERS, "id"),
        ("tasks/get", {"id": "x", "historyLength": -1}, JSON_HEADERS, "historyLength"),
        ("SendMessage", {"message": {**send10("x")["message"], "role": "user"}}, V10_HEADERS, "role"),
        ("SendMessage", {"message": {**send10("x")["message"], "parts": [{}]}}, V10_HEADERS, "part"),
        ("ListTasks", {"pageSize": 0}, V10_HEADERS, "pageSize"),
    ],
    ids=[
        "0.3 no message",
        "0.3 no parts",
        "0.3 bad role",
        "0.3 bad part kind",
        "0.3 text part without text",
        "0.3 messageId null",
        "0.1 no task id",
        "0.1 part with kind instead of type",
        "0.1 no parts",
        "0.1 short form without input",
        "get without id",
        "get with a numeric id",
        "get with a negative historyLength",
        "1.0 lower-case role",
        "1.0 empty part",
        "1.0 pageSize 0",
    ],
)
async def test_params_of_the_wrong_shape_name_the_field(
    http: httpx.AsyncClient, url: str, method: str, params: JSON, headers: dict[str, str], named: str
) -> None:
    response = await post(http, url, rpc(method, params, request_id="p"), headers=headers)
    error = error_of(response, -32602, request_id="p")
    assert named in error["message"], f"the message does not name {named!r}: {error['message']!r}"
    if headers is V10_HEADERS:
        assert_error_info(error, "INVALID_PARAMS")


async def test_an_unknown_skill_names_the_known_skills(http: httpx.AsyncClient, url: str) -> None:
    for body in (
        rpc("message/send", send03("hi", skill="oracle"), request_id=1),
        rpc("tasks/send", {"task": {"skill": "oracle", "input": "hi"}}, request_id=1),
    ):
        error = error_of(await post(http, url, body), -32602, request_id=1)
        assert "oracle" in error["message"], error
        assert "echo" in error["message"] and "conformance" in error["message"], error


@pytest.mark.parametrize("skill", [["echo"], {"name": "echo"}, 7], ids=["list", "object", "number"])
async def test_a_skill_that_is_not_a_string_is_invalid_params(http: httpx.AsyncClient, url: str, skill: Any) -> None:
    """``metadata.skill`` of the wrong type is the caller's mistake (-32602), not an internal error."""
    error = error_of(
        await post(http, url, rpc("message/send", send03("hi", skill=skill), request_id=1)), -32602, request_id=1
    )
    assert "skill" in error["message"], error


async def test_a_bad_delay_for_echo_is_invalid_params(http: httpx.AsyncClient, url: str) -> None:
    error = error_of(
        await post(http, url, rpc("message/send", send03("hi", delay_ms="soon"), request_id=1)), -32602, request_id=1
    )
    assert "delay_ms" in error["message"], error


# ------------------------------------------------------------------------------- transport


async def test_a_body_over_the_limit_is_413(http: httpx.AsyncClient, small_server: ServerProcess) -> None:
    url = f"{small_server.url}/a2a"
    big = rpc("message/send", send03("x" * 4000), request_id=1)
    error = error_of(await post(http, url, big), -32600, status=413)
    assert "2048" in error["message"], error
    # the same without a Content-Length: the limit holds while the body streams in
    raw = json.dumps(big).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 512):
            yield raw[i : i + 512]

    response = await http.post(url, content=chunks(), headers=JSON_HEADERS)
    assert "content-length" not in response.request.headers
    error = error_of(response, -32600, status=413)
    assert "2048" in error["message"], error
    # a body under the limit is served
    small = await post(http, url, rpc("message/send", send03("fits"), request_id=2))
    assert small.status_code == 200 and small.json()["result"]["status"]["state"] == "completed", small.text


async def test_a_body_over_the_limit_in_1_0_carries_error_info(
    http: httpx.AsyncClient, small_server: ServerProcess
) -> None:
    response = await post(http, f"{small_server.url}/a2a", rpc("SendMessage", send10("x" * 4000)), headers=V10_HEADERS)
    assert_error_info(error_of(response, -32600, status=413), "INVALID_REQUEST")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_wrong_content_type_is_415(http: httpx.AsyncClient, url: str, content_type: str | None) -> None:
    body = json.dumps(rpc("tasks/get", {"id": "x"}, request_id=1)).encode()
    request = http.build_request("POST", url, content=body)
    if content_type is None:
        request.headers.pop("content-type", None)
    else:
        request.headers["content-type"] = content_type
    error = error_of(await http.send(request), -32005, status=415)
    assert "Content-Type" in error["message"], error


# ------------------------------------------------------------------------------- batches


async def test_a_batch_answers_each_member(http: httpx.AsyncClient, url: str) -> None:
    batch = [
        rpc("message/send", send03("in a batch"), request_id="ok"),
        rpc("tasks/get", {"id": "nowhere"}, request_id="missing"),
        {"jsonrpc": "2.0", "method": "tasks/get", "params": {"id": "nowhere"}},  # no id: an error with id null
        {"jsonrpc": "1.0", "id": "old", "method": "tasks/get"},
        rpc("no/such/method", {}, request_id="nomethod"),
        rpc("message/send", {"message": _msg03(parts=[])}, request_id="badparams"),
        17,
    ]
    response = await post(http, url, batch)
    assert response.status_code == 200, response.text
    answers = response.json()
    assert isinstance(answers, list), answers
    by_id = {a["id"]: a for a in answers if a["id"] is not None}
    assert set(by_id) == {"ok", "missing", "old", "nomethod", "badparams"}, answers
    assert by_id["ok"]["result"]["status"]["state"] == "completed"
    assert by_id["missing"]["error"]["code"] == -32001
    assert by_id["old"]["error"]["code"] == -32600
    assert by_id["nomethod"]["error"]["code"] == -32601
    assert by_id["badparams"]["error"]["code"] == -32602
    anonymous = [a for a in answers if a["id"] is None]
    assert [a["error"]["code"] for a in anonymous] == [-32600, -32600], anonymous
    assert len(answers) == 7
    for answer in answers:
        if "error" in answer:
            assert_clean_message(answer["error"]["message"])
            assert_schema("0.3", "JSONRPCErrorResponse", answer)


async def test_a_batch_without_ids_gets_an_error_for_each(http: httpx.AsyncClient, url: str) -> None:
    """A2A defines no notifications: each request without an id is answered (id null), none is run."""
    batch = [{"jsonrpc": "2.0", "method": "tasks/get", "params": {"id": "x"}}, {"jsonrpc": "2.0", "method": "nope"}]
    response = await post(http, url, batch)
    assert response.status_code == 200, response.status_code
    answers = response.json()
    assert [(a["id"], a["error"]["code"]) for a in answers] == [(None, -32600), (None, -32601)], answers
    assert "'id' is required" in answers[0]["error"]["message"], answers


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"jsonrpc": "2.0", "method": "tasks/get", "params": {"id": "x"}}, -32600),
        # what else is wrong is said first (the 0.3 suite expects these codes for requests without id)
        ({"jsonrpc": "2.0", "method": "no/such/method", "params": {}}, -32601),
        ({"jsonrpc": "2.0", "method": "message/send", "params": {"message": "not a message"}}, -32602),
        ({"jsonrpc": "2.0", "method": "message/send", "params": {"": "not_a_dict"}}, -32602),
    ],
    ids=["well-formed", "unknown method", "bad params", "no message"],
)
async def test_a_request_without_id_is_an_error_with_id_null(
    http: httpx.AsyncClient, url: str, body: JSON, code: int
) -> None:
    error = error_of(await post(http, url, body), code)
    if code == -32600:
        assert "'id' is required" in error["message"], error


async def test_a_send_without_id_runs_nothing(http: httpx.AsyncClient, url: str) -> None:
    """Bug: a well-formed message/send without id answered 204 and silently started a task nobody could find.
    Fix: it is refused with an error (id null), and no task exists for its context."""
    context = uid()
    params = send03("hello")
    params["message"]["contextId"] = context
    error_of(await post(http, url, {"jsonrpc": "2.0", "method": "message/send", "params": params}), -32600)
    listed = await post(http, url, rpc("ListTasks", {"contextId": context}), headers=V10_HEADERS)
    assert listed.json()["result"]["tasks"] == [], listed.text


async def test_an_empty_batch_is_an_invalid_request(http: httpx.AsyncClient, url: str) -> None:
    error = error_of(await post(http, url, []), -32600)
    assert "batch" in error["message"], error


async def test_a_streaming_method_in_a_batch_is_refused(http: httpx.AsyncClient, url: str) -> None:
    batch = [rpc("message/stream", send03("no"), request_id="s"), rpc("tasks/get", {"id": "x"}, request_id="g")]
    answers = (await post(http, url, batch)).json()
    by_id = {a["id"]: a for a in answers}
    assert by_id["s"]["error"]["code"] == -32600 and "message/stream" in by_id["s"]["error"]["message"]
    assert by_id["g"]["error"]["code"] == -32001


# ------------------------------------------------------------------------------- versions and 1.0 errors


async def test_an_unsupported_version_header_is_version_not_supported(http: httpx.AsyncClient, url: str) -> None:
    headers = {**JSON_HEADERS, "A2A-Version": "7.3"}
    response = await post(http, url, rpc("GetTask", {"id": "x"}, request_id=31), headers=headers)
    error = error_of(response, -32009, request_id=31)
    assert "7.3" in error["message"], error
    assert_error_info(error, "VERSION_NOT_SUPPORTED")


async def test_a_1_0_method_under_a_0_3_header_is_method_not_found(http: httpx.AsyncClient, url: str) -> None:
    headers = {**JSON_HEADERS, "A2A-Version": "0.3"}
    error = error_of(
        await post(http, url, rpc("GetTask", {"id": "x"}, request_id=1), headers=headers), -32601, request_id=1
    )
    assert "GetTask" in error["message"]


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        (b"{not json", -32700, "PARSE_ERROR"),
        ({"jsonrpc": "2.0", "id": 1, "params": {}}, -32600, "INVALID_REQUEST"),
        (rpc("Teleport", {}, request_id=1), -32601, "METHOD_NOT_FOUND"),
        (rpc("GetTask", {}, request_id=1), -32602, "INVALID_PARAMS"),
        (rpc("GetTask", {"id": "no-such-task"}, request_id=1), -32001, "TASK_NOT_FOUND"),
        (rpc("CreateTaskPushNotificationConfig", {"taskId": "t", "url": "https://x"}, request_id=1), -32001, None),
        (rpc("GetExtendedAgentCard", {}, request_id=1), -32007, None),
    ],
    ids=["parse", "invalid request", "method not found", "invalid params", "task not found", "push", "extended card"],
)
async def test_1_0_errors_carry_error_info(
    http: httpx.AsyncClient, url: str, body: Any, code: int, reason: str | None
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    request_id = None if isinstance(body, bytes) else body.get("id")
    error = error_of(await post(http, url, content=content, headers=V10_HEADERS), code, request_id=request_id)
    assert_error_info(error, reason)


async def test_a_wrong_content_type_in_1_0_carries_error_info(http: httpx.AsyncClient, url: str) -> None:
    response = await http.post(url, content=b"{}", headers={"Content-Type": "text/plain", "A2A-Version": "1.0"})
    assert_error_info(error_of(response, -32005, status=415), "CONTENT_TYPE_NOT_SUPPORTED")


# ------------------------------------------------------------------------------- hostile bodies


def _nested_data_part(depth: int) -> bytes:
    nested = "1"
    for _ in range(depth):
        nested = '{"a":' + nested + "}"
    message = {"kind": "message", "messageId": "deep", "role": "user", "parts": ["PART"]}
    body = json.dumps(rpc("message/send", {"message": message}, request_id=1))
    return body.replace('"PART"', '{"kind": "data", "data": ' + nested + "}").encode()


@pytest.mark.parametrize(
    "content",
    [b"[" * 100_000 + b"]" * 100_000, _nested_data_part(3000)],
    ids=["arrays 100000 deep", "a data part 3000 deep"],
)
async def test_deeply_nested_json_is_refused_cleanly(http: httpx.AsyncClient, url: str, content: bytes) -> None:
    """Nesting deeper than the JSON parser recurses is the caller's mistake, not an HTTP 500 (bodies < 1 MiB)."""
    response = await post(http, url, content=content)
    assert response.status_code != 500, f"HTTP 500 for deeply nested JSON: {response.text[:200]}"
    answer = response.json()
    assert answer["error"]["code"] in (-32700, -32600, -32602), answer
    assert_clean_message(answer["error"]["message"])


async def test_a_huge_numeric_id_still_gets_a_strict_json_answer(http: httpx.AsyncClient, url: str) -> None:
    """``1e400`` is a valid JSON number; echoing it as ``Infinity`` would not be valid JSON."""
    response = await post(http, url, content=b'{"jsonrpc":"2.0","id":1e400,"method":"tasks/get","params":{"id":"x"}}')
    assert response.status_code == 200
    json.loads(response.text, parse_constant=_reject_constant)


async def test_the_server_still_works_after_all_of_it(http: httpx.AsyncClient, url: str) -> None:
    for body, headers in (
        (rpc("tasks/send", send01("still alive")), JSON_HEADERS),
        (rpc("message/send", send03("still alive")), JSON_HEADERS),
        (rpc("SendMessage", send10("still alive")), V10_HEADERS),
    ):
        answer = (await post(http, url, body, headers=headers)).json()
        result = answer["result"].get("task", answer["result"])
        assert result["status"]["state"] in ("completed", "TASK_STATE_COMPLETED"), answer
        text = "".join(p["text"] for p in result["artifacts"][0]["parts"])
        assert text == "still alive"


@pytest.mark.parametrize(("depth", "refused"), [(55, False), (65, True)])
async def test_the_nesting_limit_holds_at_its_edge(
    http: httpx.AsyncClient, url: str, depth: int, refused: bool
) -> None:
    """The depth check skips its walk when the text has too few ``{``/``[`` to nest past the limit; just above the
    limit it still refuses, just below it the data part is taken."""
    answer = (await post(http, url, content=_nested_data_part(depth))).json()
    if refused:
        assert answer["error"]["code"] == -32600, answer
        assert "nested deeper than 64 levels" in answer["error"]["message"]
    else:
        assert "result" in answer, answer


async def test_many_braces_side_by_side_are_not_mistaken_for_depth(http: httpx.AsyncClient, url: str) -> None:
    """Regression guard for the pre-check: 200 sibling objects (200 ``{``, depth 7) are a valid request."""
    message = {"kind": "message", "messageId": "wide", "role": "user", "parts": [{"kind": "text", "text": "wide"}],
               "metadata": {"items": [{"i": i} for i in range(200)]}}  # fmt: skip
    answer = (await post(http, url, content=json.dumps(rpc("message/send", {"message": message}, 1)).encode())).json()
    assert "result" in answer, answer
