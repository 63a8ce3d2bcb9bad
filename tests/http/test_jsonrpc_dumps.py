"""``http.jsonrpc.dumps``: every JSON answer and SSE event goes through it; pydantic-core writes it, the stdlib
only where pydantic-core cannot (a lone surrogate)."""

from __future__ import annotations

import json
import math

from a2a_server.http.jsonrpc import dumps


def test_the_same_text_as_the_stdlib_for_ordinary_json() -> None:
    obj = {
        "jsonrpc": "2.0", "id": 7, "result": {"parts": [{"text": 'é «ü» \u2028 "q" \\ \n\t\x00'}], "n": 2**70,
        "f": 1.5, "neg": -0.0, "big": 1e300, "none": None, "ok": True, "keys": {"1": [1, 2]}},
    }  # fmt: skip
    assert dumps(obj) == json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(dumps(obj)) == obj


def test_nan_and_infinity_a_skill_computed_are_written_as_null() -> None:
    text = dumps({"tokens_per_second": math.inf, "x": math.nan})
    assert text == '{"tokens_per_second":null,"x":null}'


def test_a_lone_surrogate_is_written_as_the_stdlib_writes_it() -> None:
    assert dumps({"t": "a\ud800b"}) == '{"t":"a\ud800b"}'
