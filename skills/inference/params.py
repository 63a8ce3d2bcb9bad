"""Sampling parameters: read from the task's metadata, checked against their allowed ranges.

A bad value raises ``InvalidSkillParams`` naming the field and its range; the core answers -32602 before a task
exists. Numbers may arrive as floats even when whole (protobuf ``Struct`` metadata has only doubles), so an integer
field accepts ``64.0`` but not ``64.5``; booleans are never numbers here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from a2a_server.skill import InvalidSkillParams

MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 64
SEED_MAX = 2**31 - 1  # ctransformers passes the seed to C as an int
TIMEOUT_MAX = 86_400.0  # a day: longer is a mistake, not a plan


@dataclass(frozen=True, slots=True)
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.2  # 0 means greedy decoding
    top_p: float = 0.9
    top_k: int = 40  # 0 means no top-k cut
    repetition_penalty: float = 1.1
    seed: int | None = None  # None: a fresh random seed per task
    stop: tuple[str, ...] = ()
    timeout_s: float | None = None  # None: no time limit


def describe(context_length: int) -> str:
    """The parameter table, as the agent card shows it."""
    return (
        f"max_tokens: integer 1..{context_length} (default 256); "
        "temperature: number 0..2, 0 = greedy (default 0.2); top_p: number in (0, 1] (default 0.9); "
        "top_k: integer >= 0, 0 = off (default 40); repetition_penalty: number in (0, 10] (default 1.1); "
        f"seed: integer 0..{SEED_MAX}; stop: a string or up to {MAX_STOP_SEQUENCES} strings "
        f"of 1..{MAX_STOP_LENGTH} characters; timeout_s: seconds in (0, {TIMEOUT_MAX:.0f}], the time limit from "
        "submission (queue wait included), ending with finish_reason timeout and the text so far "
        "(default A2A_INFERENCE_TIMEOUT, else none); model: a registry id (`a2a-server models`)"
    )


def _bad(name: str, allowed: str, value: Any) -> InvalidSkillParams:
    return InvalidSkillParams(f"invalid parameter {name!r}: must be {allowed}, got {value!r}", param=name)


def _number(name: str, value: Any, allowed: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(name, allowed, value)
    if value < lo or value > hi or (lo_open and value == lo):
        raise _bad(name, allowed, value)
    return float(value)


def _integer(name: str, value: Any, lo: int, hi: int | None) -> int:
    allowed = f"an integer in {lo}..{hi}" if hi is not None else f"an integer >= {lo}"
    number = _number(name, value, allowed, lo, math.inf if hi is None else hi)
    if not number.is_integer():
        raise _bad(name, allowed, value)
    return int(number)


def _stop(value: Any) -> tuple[str, ...]:
    allowed = f"a string or a list of at most {MAX_STOP_SEQUENCES} strings of 1..{MAX_STOP_LENGTH} characters"
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > MAX_STOP_SEQUENCES:
        raise _bad("stop", allowed, value)
    for item in items:
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_STOP_LENGTH:
            raise _bad("stop", allowed, value)
    return tuple(items)


def parse_params(
    metadata: Mapping[str, Any], *, context_length: int, default_timeout: float | None = None
) -> SamplingParams:
    """The sampling parameters in ``metadata`` (absent or null fields take their defaults)."""
    defaults = SamplingParams()
    values: dict[str, Any] = {}
    get = metadata.get
    if get("max_tokens") is not None:
        values["max_tokens"] = _integer("max_tokens", get("max_tokens"), 1, context_length)
    if get("temperature") is not None:
        values["temperature"] = _number("temperature", get("temperature"), "a number in [0, 2]", 0, 2)
    if get("top_p") is not None:
        values["top_p"] = _number("top_p", get("top_p"), "a number in (0, 1]", 0, 1, lo_open=True)
    if get("top_k") is not None:
        values["top_k"] = _integer("top_k", get("top_k"), 0, None)
    if get("repetition_penalty") is not None:
        values["repetition_penalty"] = _number(
            "repetition_penalty", get("repetition_penalty"), "a number in (0, 10]", 0, 10, lo_open=True
        )
    if get("seed") is not None:
        values["seed"] = _integer("seed", get("seed"), 0, SEED_MAX)
    if get("stop") is not None:
        values["stop"] = _stop(get("stop"))
    if get("timeout_s") is not None:
        allowed = f"a number of seconds in (0, {TIMEOUT_MAX:.0f}]"
        values["timeout_s"] = _number("timeout_s", get("timeout_s"), allowed, 0, TIMEOUT_MAX, lo_open=True)
    else:
        values["timeout_s"] = default_timeout
    if "max_tokens" not in values:
        values["max_tokens"] = min(defaults.max_tokens, context_length)
    return SamplingParams(**values)
