"""``create_app(settings)``: the one composition root. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from a2a_server import card
from a2a_server.bus import EventBus
from a2a_server.config import Settings
from a2a_server.engine import Engine
from a2a_server.http import routes
from a2a_server.http.state import AppState
from a2a_server.rpc import Dispatcher
from a2a_server.skill import Skill, SkillRegistry, load_skill
from a2a_server.stores import open_store, store_path

log = logging.getLogger("a2a_server")


def create_app(settings: Settings | None = None, skills: list[Skill] | None = None) -> Starlette:
    """The ASGI app. ``skills`` (instances) replaces ``settings.skills`` (names) when given."""
    settings = settings or Settings()
    static_card = card.load_static(settings.card_file)
    store_path(settings.store)  # a bad --store fails here, before the server binds
    registry = SkillRegistry(skills if skills is not None else [load_skill(name) for name in settings.skills])

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await open_store(settings.store)
        log.info("task store: %s", store_path(settings.store) or "memory (nothing survives a restart)")
        engine = Engine(
            store,
            EventBus(settings.subscriber_buffer),
            registry,
            cancel_grace=settings.cancel_grace,
            max_events=settings.max_events_per_task,
        )
        app.state.a2a = AppState(settings, engine, Dispatcher(engine), registry, static_card)
        for skill in registry:
            await skill.start()
        await engine.recover()
        purger = asyncio.create_task(_purge_forever(engine, settings)) if settings.retention_days > 0 else None
        log.info("a2a-server ready: skills %s (default %s)", ", ".join(registry.names()), registry.default)
        try:
            yield
        finally:
            if purger is not None:
                purger.cancel()
            await engine.close(settings.shutdown_grace)
            for skill in registry:
                await skill.close()
            await store.close()

    return Starlette(routes=routes(), lifespan=lifespan, middleware=_middleware(settings))


async def drain(app: Starlette, grace: float) -> None:
    """Stop taking tasks and end the running ones (see Engine.close); a no-op before start-up."""
    state: AppState | None = getattr(app.state, "a2a", None)
    if state is not None:
        await state.engine.close(grace)


async def _purge_forever(engine: Engine, settings: Settings) -> None:
    while True:
        cutoff = datetime.now(UTC) - timedelta(days=settings.retention_days)
        try:
            purged = await engine.purge(cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
            if purged:
                log.info("retention: purged %d tasks finished before %s", purged, cutoff.isoformat())
        except Exception:  # a failed purge must not take the server down; the next round retries
            log.exception("retention purge failed")
        await asyncio.sleep(settings.purge_interval)


def _middleware(settings: Settings) -> list[Middleware]:
    if not settings.cors_origins:
        return []
    # Credentials are only allowed with an explicit allow-list: browsers refuse "*" with credentials,
    # and echoing any Origin back with credentials would let every site act as the user.
    wildcard = "*" in settings.cors_origins
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=["*"] if wildcard else settings.cors_origins,
            allow_credentials=not wildcard,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization", "A2A-Version", "Last-Event-ID", "Accept"],
            expose_headers=["X-A2A-Task-Id", "ETag"],
            max_age=600,
        )
    ]
