from __future__ import annotations

import pytest

from a2a_server.dialects import V01, V03, V10
from a2a_server.errors import InvalidParams
from a2a_server.model import (
    Artifact,
    ArtifactEvent,
    LoggedEvent,
    Message,
    MessageEvent,
    Part,
    Role,
    StatusEvent,
    Task,
    TaskState,
    TaskStatus,
)


def _task(state: TaskState = TaskState.WORKING) -> Task:
    user = Message(message_id="m1", role=Role.USER, parts=[Part.of_text("hi")], task_id="t1", context_id="c1")
    return Task(
        id="t1",
        context_id="c1",
        status=TaskStatus(state=state, timestamp="2026-01-01T00:00:00.000Z"),
        artifacts=[Artifact(artifact_id="a1", parts=[Part.of_text("out")])],
        history=[user, user.model_copy(update={"message_id": "m2"})],
    )


def test_v03_parses_a_send_and_merges_metadata() -> None:
    req = V03.parse_send(
        {
            "message": {
                "kind": "message",
                "messageId": "m1",
                "role": "user",
                "parts": [{"kind": "text", "text": "hi"}, {"kind": "data", "data": {"x": 1}}],
                "metadata": {"skill": "echo", "delay_ms": 5},
            },
            "configuration": {"blocking": False, "historyLength": 1},
            "metadata": {"delay_ms": 1, "other": True},
        }
    )
    assert req.message.text == "hi" and req.message.parts[1].data == {"x": 1}
    assert req.skill == "echo" and req.metadata == {"delay_ms": 5, "other": True, "skill": "echo"}
    assert req.blocking is False and req.history_length == 1


def test_v01_short_form_and_full_form() -> None:
    short = V01.parse_send({"task": {"skill": "inference", "input": "Analyze this"}})
    assert short.skill == "inference" and short.message.text == "Analyze this" and short.task_id is None
    full = V01.parse_send(
        {"id": "t9", "sessionId": "s", "message": {"role": "user", "parts": [{"type": "text", "text": "x"}]}}
    )
    assert full.task_id == "t9" and full.client_task_id and full.context_id == "s"


def test_v10_parses_oneof_parts_and_return_immediately() -> None:
    req = V10.parse_send(
        {
            "message": {
                "messageId": "m",
                "role": "ROLE_USER",
                "parts": [{"text": "a"}, {"url": "https://x/y", "filename": "y"}],
            },
            "configuration": {"returnImmediately": True},
        }
    )
    assert req.blocking is False
    assert req.message.parts[1].kind == "file" and req.message.parts[1].name == "y"


@pytest.mark.parametrize(
    ("dialect", "params", "needle"),
    [
        (V03, {"message": {"messageId": "m", "role": "user", "parts": []}}, "message.parts"),
        (
            V03,
            {"message": {"messageId": "m", "role": "boss", "parts": [{"kind": "text", "text": "x"}]}},
            "message.role",
        ),
        (V03, {"message": {"messageId": "m", "role": "user", "parts": [{"kind": "video"}]}}, "message.parts.0"),
        (
            V10,
            {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a", "url": "b"}]}},
            "exactly one",
        ),
        (V10, {}, "message: Field required"),
        (V01, {"message": {"role": "user", "parts": [{"type": "text", "text": "x"}]}}, "id: Field required"),
    ],
)
def test_bad_params_name_the_field(dialect: object, params: object, needle: str) -> None:
    with pytest.raises(InvalidParams) as info:
        dialect.parse_send(params)  # type: ignore[attr-defined]
    assert needle in info.value.message


def test_push_config_in_a_send_is_parsed() -> None:
    req = V03.parse_send(
        {
            "message": {"messageId": "m", "role": "user", "parts": [{"kind": "text", "text": "x"}]},
            "configuration": {"pushNotificationConfig": {
                "url": "https://example.com/hook", "token": "t",
                "authentication": {"schemes": ["Bearer"], "credentials": "c"},
            }},
        }
    )  # fmt: skip
    assert req.push is not None
    assert (req.push.url, req.push.token, req.push.auth_scheme, req.push.auth_credentials) == (
        "https://example.com/hook", "t", "Bearer", "c")  # fmt: skip
    assert req.push.field == "configuration.pushNotificationConfig.url"


def test_a_bad_push_config_in_a_send_names_the_field() -> None:
    with pytest.raises(InvalidParams) as info:
        V03.parse_send(
            {
                "message": {"messageId": "m", "role": "user", "parts": [{"kind": "text", "text": "x"}]},
                "configuration": {"pushNotificationConfig": {"token": "t"}},
            }
        )
    assert info.value.param == "configuration.pushNotificationConfig.url"
    assert "configuration.pushNotificationConfig.url: Field required" in info.value.message


def test_task_rendering_per_generation() -> None:
    task = _task()
    v03 = V03.task(task, history_length=1)
    assert v03["kind"] == "task" and v03["status"]["state"] == "working" and len(v03["history"]) == 1
    v10 = V10.task(task)
    assert v10["status"]["state"] == "TASK_STATE_WORKING" and "kind" not in v10
    assert v10["history"][0]["role"] == "ROLE_USER" and v10["artifacts"][0]["parts"] == [{"text": "out"}]
    v01 = V01.task(task)
    assert v01["sessionId"] == "c1" and v01["artifacts"][0]["index"] == 0
    assert v01["history"][0]["parts"] == [{"type": "text", "text": "hi"}]


def test_states_0_1_has_no_name_for() -> None:
    assert V01.task(_task(TaskState.REJECTED))["status"]["state"] == "failed"
    assert V01.task(_task(TaskState.AUTH_REQUIRED))["status"]["state"] == "input-required"


def test_events_final_flag_and_wrappers() -> None:
    done = StatusEvent(task_id="t1", context_id="c1", status=TaskStatus(state=TaskState.COMPLETED))
    working = StatusEvent(task_id="t1", context_id="c1", status=TaskStatus(state=TaskState.INPUT_REQUIRED))
    assert V03.event(done)["final"] is True and V03.event(working)["final"] is True
    assert V01.event(done)["final"] is True
    assert set(V10.event(done)) == {"statusUpdate"} and "final" not in V10.event(done)["statusUpdate"]
    chunk = ArtifactEvent(
        task_id="t1", context_id="c1", artifact=Artifact(parts=[Part.of_text("x")]), append=True, index=2
    )
    assert V10.event(chunk)["artifactUpdate"]["append"] is True
    assert V01.event(chunk)["artifact"]["index"] == 2
    reply = MessageEvent(task_id="t1", context_id="c1", message=Message(role=Role.AGENT, parts=[Part.of_text("r")]))
    assert V10.stream_item(LoggedEvent(id=1, event=reply))["message"]["role"] == "ROLE_AGENT"
    assert V01.event(reply)["status"]["state"] == "completed"


def test_1_0_errors_carry_error_info() -> None:
    err = V10.error(-32001, "Task not found: x", {"taskId": "x"})
    assert err["data"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "TASK_NOT_FOUND",
            "domain": "a2a-protocol.org",
            "metadata": {"taskId": "x"},
        }
    ]
    assert V03.error(-32001, "Task not found: x", {"taskId": "x"})["data"] == {"taskId": "x"}
