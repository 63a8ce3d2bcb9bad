from __future__ import annotations

import json
from pathlib import Path

from a2a_server.dialects import V01, V03, V10
from a2a_server.methods import METHODS, Op
from a2a_server.operations import HANDLERS

SPEC = Path(__file__).resolve().parent / "spec"  # vendored, see spec/README.md


def test_every_operation_has_a_handler() -> None:
    assert set(HANDLERS) == set(Op)


def test_v01_schema_methods_are_all_in_the_table() -> None:
    schema = json.loads((SPEC / "a2a-v0.1.0.json").read_text())
    defs = schema.get("$defs") or schema["definitions"]
    wire = {
        d["properties"]["method"]["const"]
        for d in defs.values()
        if isinstance(d, dict) and "const" in d.get("properties", {}).get("method", {})
    }
    assert wire, "no method constants found in the 0.1 schema"
    assert wire <= set(METHODS)


def test_v03_schema_methods_are_all_in_the_table() -> None:
    schema = json.loads((SPEC / "a2a-v0.3.0.json").read_text())
    defs = schema.get("$defs") or schema["definitions"]
    wire = {
        d["properties"]["method"]["const"]
        for d in defs.values()
        if isinstance(d, dict) and "const" in d.get("properties", {}).get("method", {})
    }
    assert wire, "no method constants found in the 0.3 schema"
    assert wire <= set(METHODS)


def test_v10_rpcs_are_all_in_the_table() -> None:
    proto = (SPEC / "a2a-v1.0.1.proto").read_text()
    rpcs = {line.split()[1].split("(")[0] for line in proto.splitlines() if line.strip().startswith("rpc ")}
    assert len(rpcs) == 11
    assert rpcs <= set(METHODS)
    assert all(METHODS[name].dialect is V10 for name in rpcs)


def test_shared_names_have_no_fixed_dialect() -> None:
    shared = {name for name, spec in METHODS.items() if spec.dialect is None}
    channels = {"channels/open", "channels/get", "channels/list", "channels/close"}  # the billing extension's
    assert shared == {"tasks/get", "tasks/cancel", "tasks/resubscribe", *channels}
    assert METHODS["tasks/send"].dialect is V01
    assert METHODS["message/send"].dialect is V03


def test_streaming_methods() -> None:
    streaming = {name for name, spec in METHODS.items() if spec.streaming}
    assert streaming == {
        "tasks/sendSubscribe",
        "tasks/resubscribe",
        "message/stream",
        "SendStreamingMessage",
        "SubscribeToTask",
    }


def test_every_1_0_method_has_a_rest_route_onto_the_same_operation() -> None:
    from a2a_server.dialects import V10
    from a2a_server.methods import METHODS, REST_ROUTES

    one_oh = {name for name, spec in METHODS.items() if spec.dialect is V10}
    # the 11 RPCs of the spec and the 4 of the billing extension
    assert {r.spec.name for r in REST_ROUTES} == one_oh and len(one_oh) == 15
    assert all(r.spec is METHODS[r.spec.name] for r in REST_ROUTES)
    # SubscribeToTask answers both verbs (the proto says GET, the spec's table POST)
    assert {r.http_method for r in REST_ROUTES if r.spec.name == "SubscribeToTask"} == {"GET", "POST"}
    # the ``:verb`` routes come before ``/tasks/{id}``, which would match them too
    paths = [r.path for r in REST_ROUTES]
    assert paths.index("/tasks/{id}:cancel") < paths.index("/tasks/{id}")
    assert paths.index("/tasks/{id}:subscribe") < paths.index("/tasks/{id}")
    assert paths.index("/channels/{id}:close") < paths.index("/channels/{id}")
