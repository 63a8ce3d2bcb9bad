"""Fixtures of the push tests: a real receiver on loopback, and the real app allow-listing it (memory store)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from a2a_server import Settings, create_app


@pytest.fixture
async def app() -> AsyncIterator[Starlette]:
    settings = Settings(skills=["echo", "conformance"], store="memory", push_allow=["127.0.0.1"],
                        push_retry_base=0.05, push_retry_max=0.3, push_max_failures=2)  # fmt: skip
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c
