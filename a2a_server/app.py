"""``create_app(settings)``: the one composition root. Nothing is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from a2a_server import card
from a2a_server.bus import EventBus
from a2a_server.config import Settings
from a2a_server.engine import Engine
from a2a_server.http import routes
from a2a_server.http.state import AppState
from a2a_server.rpc import Dispatcher
from a2a_server.skill import Skill, SkillRegistry, load_skill
from a2a_server.stores import MemoryStore

log = logging.getLogger("a2a_server")


def create_app(settings: Settings | None = None, skills: list[Skill] | None = None) -> Starlette:
    """The ASGI app. ``skills`` (instances) replaces ``settings.skills`` (names) when given."""
    settings = settings or Settings()
    static_card = card.load_static(settings.card_file)
    registry = SkillRegistry(skills if skills is not None else [load_skill(name) for name in settings.skills])

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = MemoryStore()
        engine = Engine(store, EventBus(settings.subscriber_buffer), registry, cancel_grace=settings.cancel_grace)
        app.state.a2a = AppState(settings, engine, Dispatcher(engine), registry, static_card)
        for skill in registry:
            await skill.start()
        log.info("a2a-server ready: skills %s (default %s)", ", ".join(registry.names()), registry.default)
        try:
            yield
        finally:
            await engine.close(settings.shutdown_grace)
            for skill in registry:
                await skill.close()
            await store.close()

    return Starlette(routes=routes(), lifespan=lifespan)
