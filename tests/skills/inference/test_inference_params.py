"""Parameter and input validation: every bad value names its field and the allowed range."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from a2a_server.model import Message, Part, Role
from a2a_server.skill import InvalidSkillParams
from skills.inference import InferenceSkill
from skills.inference.params import SamplingParams, parse_params

BAD = [
    ({"max_tokens": 0}, "max_tokens", "1..512"),
    ({"max_tokens": 513}, "max_tokens", "1..512"),
    ({"max_tokens": 12.5}, "max_tokens", "integer"),
    ({"max_tokens": "64"}, "max_tokens", "integer"),
    ({"max_tokens": True}, "max_tokens", "integer"),
    ({"temperature": -0.1}, "temperature", "[0, 2]"),
    ({"temperature": 2.5}, "temperature", "[0, 2]"),
    ({"temperature": float("nan")}, "temperature", "[0, 2]"),
    ({"top_p": 0}, "top_p", "(0, 1]"),
    ({"top_p": 1.01}, "top_p", "(0, 1]"),
    ({"top_k": -1}, "top_k", ">= 0"),
    ({"repetition_penalty": 0}, "repetition_penalty", "(0, 10]"),
    ({"seed": -5}, "seed", "0..2147483647"),
    ({"seed": 2**31}, "seed", "0..2147483647"),
    ({"stop": ""}, "stop", "1..64 characters"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
    ({"stop": [1]}, "stop", "strings"),
    ({"timeout_s": 0}, "timeout_s", "(0, 86400]"),
    ({"timeout_s": -5}, "timeout_s", "(0, 86400]"),
    ({"timeout_s": 1e9}, "timeout_s", "(0, 86400]"),
    ({"timeout_s": "10"}, "timeout_s", "seconds"),
    ({"model": "gpt-9"}, "model", "tiny"),
    ({"model": 3}, "model", "string"),
]


@pytest.mark.parametrize(("metadata", "field", "allowed"), BAD)
def test_bad_values_are_rejected_naming_field_and_range(
    make_skill: Callable[..., InferenceSkill], metadata: dict[str, Any], field: str, allowed: str
) -> None:
    skill = make_skill()
    message = Message(role=Role.USER, parts=[Part.of_text("hi")])
    with pytest.raises(InvalidSkillParams) as info:
        skill.validate(message, metadata)
    assert f"'{field}'" in str(info.value)
    assert allowed in str(info.value)


def test_whole_floats_are_integers_because_protobuf_metadata_has_only_doubles() -> None:
    params = parse_params({"max_tokens": 64.0, "top_k": 10.0, "seed": 42.0}, context_length=512)
    assert (params.max_tokens, params.top_k, params.seed) == (64, 10, 42)
    assert isinstance(params.max_tokens, int)


def test_defaults_and_a_single_stop_string() -> None:
    assert parse_params({}, context_length=8192) == SamplingParams()
    assert parse_params({}, context_length=100).max_tokens == 100
    assert parse_params({"stop": "\n\n", "temperature": 0}, context_length=512).stop == ("\n\n",)


def test_the_time_limit_defaults_to_the_skill_setting_and_a_request_overrides_it() -> None:
    assert parse_params({}, context_length=512).timeout_s is None
    assert parse_params({}, context_length=512, default_timeout=30.0).timeout_s == 30.0
    assert parse_params({"timeout_s": 5}, context_length=512, default_timeout=30.0).timeout_s == 5.0


def test_good_parameters_pass(make_skill: Callable[..., InferenceSkill]) -> None:
    message = Message(role=Role.USER, parts=[Part.of_text("hi")])
    make_skill().validate(
        message,
        {
            "max_tokens": 512,
            "temperature": 0,
            "top_p": 1,
            "top_k": 0,
            "seed": 0,
            "repetition_penalty": 1.0,
            "stop": ["x"],
            "timeout_s": 2.5,
            "model": "tiny",
        },
    )


@pytest.mark.parametrize(
    ("parts", "metadata", "expected"),
    [
        ([], {}, "nothing to answer"),
        ([Part(kind="data", data={"messages": "hi"})], {}, "data part 'messages'"),
        ([Part(kind="data", data={"messages": [{"role": "robot", "content": "x"}]})], {}, "role system, user"),
        ([Part.of_text("hi")], {"messages": [{"role": "user"}]}, "metadata 'messages'"),
        ([], {"messages": [{"role": "system", "content": "be brief"}]}, "nothing to answer"),
    ],
)
def test_malformed_or_empty_input_is_rejected(
    make_skill: Callable[..., InferenceSkill], parts: list[Part], metadata: dict[str, Any], expected: str
) -> None:
    with pytest.raises(InvalidSkillParams, match=expected):
        make_skill().validate(Message(role=Role.USER, parts=parts), metadata)
