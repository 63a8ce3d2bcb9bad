"""The URL forms the client accepts: each names the same server, its card, endpoint and firehose."""

from __future__ import annotations

import pytest

from a2a_client.target import Target


@pytest.mark.parametrize(
    "text",
    [
        "http://localhost:8000",
        "http://localhost:8000/",
        "http://localhost:8000/a2a",
        "http://localhost:8000/a2a/",
        "http://localhost:8000/a2a/events",
        "localhost:8000",
        "localhost:8000/a2a",
        " http://localhost:8000 ",
    ],
)
def test_every_form_names_the_same_base(text: str) -> None:
    target = Target.parse(text)
    assert target.base == "http://localhost:8000"
    assert target.endpoint == "http://localhost:8000/a2a"
    assert target.firehose == "http://localhost:8000/a2a/events"
    assert target.card_urls == [
        "http://localhost:8000/.well-known/agent-card.json",
        "http://localhost:8000/.well-known/agent.json",
    ]


def test_a_base_with_a_path_looks_for_the_card_under_it_then_at_the_origin() -> None:
    target = Target.parse("https://example.com/agents/one/a2a")
    assert target.base == "https://example.com/agents/one"
    assert target.endpoint == "https://example.com/agents/one/a2a"
    assert target.card_urls == [
        "https://example.com/agents/one/.well-known/agent-card.json",
        "https://example.com/agents/one/.well-known/agent.json",
        "https://example.com/.well-known/agent-card.json",
        "https://example.com/.well-known/agent.json",
    ]


def test_an_ipv6_host_keeps_its_brackets() -> None:
    assert Target.parse("[::1]:8000").firehose == "http://[::1]:8000/a2a/events"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("ftp://localhost:8000", "only http and https"),
        ("http://", "no host"),
        ("http://localhost:8000/a2a?x=1", "without a query"),
        ("localhost:port", "Port could not be cast"),
        ("localhost:99999", "out of range"),
    ],
)
def test_what_is_not_a_server_url_says_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Target.parse(text)
