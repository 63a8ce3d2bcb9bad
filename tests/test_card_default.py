"""``card_default`` (A2A_CARD_DEFAULT): which card a request without A2A-Version gets at agent-card.json."""

from __future__ import annotations

import httpx
import pytest

from a2a_server import Settings, create_app

_ZERO_THREE_KEYS = {"url", "protocolVersion", "preferredTransport", "additionalInterfaces"}


async def _card(card_default: str, path: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    app = create_app(Settings(skills=["echo"], store="memory", card_default=card_default))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get(path, headers=headers or {})
    assert response.status_code == 200, response.text
    card: dict[str, object] = response.json()
    return card


async def test_the_default_header_less_card_is_the_0_3_card_with_interfaces() -> None:
    card = await _card("0.3", "/.well-known/agent-card.json")
    assert set(card) >= _ZERO_THREE_KEYS and "supportedInterfaces" in card


async def test_card_default_1_0_serves_the_strict_1_0_card_without_a_header() -> None:
    card = await _card("1.0", "/.well-known/agent-card.json")
    assert not _ZERO_THREE_KEYS & set(card) and "supportedInterfaces" in card


async def test_with_card_default_1_0_a_0_3_header_and_agent_json_still_get_the_0_3_card() -> None:
    assert "url" in await _card("1.0", "/.well-known/agent-card.json", {"A2A-Version": "0.3"})
    assert "url" in await _card("1.0", "/.well-known/agent.json")


def test_card_default_comes_from_the_environment_and_is_checked() -> None:
    assert Settings.from_env({"A2A_CARD_DEFAULT": "1.0"}).card_default == "1.0"
    with pytest.raises(ValueError, match="card_default"):
        Settings.from_env({"A2A_CARD_DEFAULT": "2.0"})


def test_serve_takes_card_default_as_a_flag() -> None:
    """The flag and the variable are one setting (cli.py only parses)."""
    import subprocess
    import sys

    serve = [sys.executable, "-m", "a2a_server", "serve"]
    r = subprocess.run([*serve, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--card-default {0.3,1.0}" in r.stdout, r.stdout
    bad = subprocess.run([sys.executable, "-m", "a2a_server", "serve", "--card-default", "2.0"], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "--card-default" in bad.stderr
