from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from a2a_server import Settings, create_app


async def _client(origins: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(skills=["echo"], cors_origins=origins, store="memory"))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


@pytest.fixture
async def allow_listed() -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(["https://console.example"]):
        yield c


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_cors_allow_list_with_credentials(allow_listed: httpx.AsyncClient) -> None:
    pre = await allow_listed.options(
        "/a2a",
        headers={
            "Origin": "https://console.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,a2a-version,last-event-id",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://console.example"
    assert pre.headers["access-control-allow-credentials"] == "true"
    other = await allow_listed.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_cors_wildcard_never_allows_credentials() -> None:
    async for c in _client(["*"]):
        r = await c.get("/healthz", headers={"Origin": "https://any.example"})
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers


def test_an_unknown_skill_fails_at_startup_with_the_installed_names() -> None:
    from a2a_server.skill import UnknownSkill

    with pytest.raises(UnknownSkill, match=r"installed skills: .*echo"):
        create_app(Settings(skills=["nope"]))
