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
    assert shared == {"tasks/get", "tasks/cancel", "tasks/resubscribe"}
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
