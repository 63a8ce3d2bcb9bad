"""``create_app(settings)``: the one composition root. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Route

from a2a_server import card
from a2a_server.backends import Backend, StoreLocked, check_free, open_backend, roles_of, store_path
from a2a_server.config import Settings
from a2a_server.consumers.guard import UrlGuard
from a2a_server.consumers.push import Policy, PushSender
from a2a_server.consumers.webhook import Webhook
from a2a_server.http import routes, sse
from a2a_server.http.auth import Gate
from a2a_server.http.extensions import ExtensionsEcho
from a2a_server.http.state import AppState
from a2a_server.http.wellknown import healthz, readyz
from a2a_server.http.wellknown import metrics as metrics_endpoint
from a2a_server.keys import KeyFileError, Keyring
from a2a_server.limits import LimitedService, Limits
from a2a_server.metrics import Metrics
from a2a_server.rpc import Dispatcher
from a2a_server.runner import Runner
from a2a_server.service import Channels, TaskService
from a2a_server.skill import Skill, SkillRegistry, load_skill

log = logging.getLogger("a2a_server")
ROLES = ("all", "api", "worker")


class StartupError(RuntimeError):
    """The server cannot start as configured; the message says why and what to do."""


def preflight(settings: Settings) -> None:
    """The checks ``serve`` makes before it binds: a usable ``--role`` for the store, and the store free."""
    if settings.role not in ROLES:
        raise StartupError(f"--role {settings.role!r}: expected one of {', '.join(ROLES)}")
    try:
        supported = roles_of(settings.store)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    if settings.role not in supported:
        raise StartupError(
            f"--role {settings.role} needs a store that several processes share; with --store {settings.store} the "
            "queue lives inside the server process, so one process must be API and worker: use --role all (the default)"
        )
    try:
        check_free(settings.store)
    except StoreLocked as exc:
        raise StartupError(str(exc)) from None


def create_app(settings: Settings | None = None, skills: list[Skill] | None = None) -> Starlette:
    """The ASGI app. ``skills`` (instances) replaces ``settings.skills`` (names) when given."""
    settings = settings or Settings()
    static_card = card.load_static(settings.card_file)
    store_path(settings.store)  # a bad --store fails here, before the server binds
    registry = SkillRegistry(skills if skills is not None else [load_skill(name) for name in settings.skills])
    keyring = _keyring(settings)
    limits = _limits(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        backend = await open_backend(
            settings.store, buffer_limit=settings.subscriber_buffer, lease_seconds=settings.lease_seconds,
            retention_seconds=settings.retention_days * 86400, byte_limit=settings.subscriber_buffer_bytes,
        )  # fmt: skip
        runs_tasks = settings.role != "api"  # an API replica of a shared store runs no skill
        log.info("task store: %s", backend.describe)
        metrics = Metrics()
        runner = Runner(
            backend.store, backend.events, backend.queue, backend.control, registry, metrics=metrics,
            cancel_grace=settings.cancel_grace, max_events=settings.max_events_per_task,
            lease_seconds=settings.lease_seconds,
        )  # fmt: skip
        # without keys every caller is 'anonymous': a cap per owner would be one cap for the whole server, so none
        service: TaskService = LimitedService(
            backend.store, backend.events, backend.queue, backend.control, registry, metrics=metrics,
            live=runner if runs_tasks else None, cancel_grace=settings.cancel_grace, push=backend.push,
            push_guard=UrlGuard(settings.push_allow), limits=limits if keyring else replace(limits, running_tasks=0),
            running=backend.running,
        )  # fmt: skip
        sender = _push_sender(settings, backend, service, metrics)
        # billing channels (issue 12): the service checks and closes them, the runner charges per chunk
        runner.ledger = backend.ledger
        service.channels = Channels(backend.ledger, lambda task_id: service.cancel(task_id, None))
        drainer = lambda grace: _drain(service, runner, grace)  # noqa: E731
        app.state.a2a = AppState(
            settings, service, Dispatcher(service), registry, static_card, drainer, keyring=keyring
        )
        app.state.a2a.store_health = backend.health
        sse.load_backend()  # what the first stream would pay for
        # one request rate per caller for the whole fleet when the store is shared (Redis); else the gate's own
        app.state.a2a.rate = backend.rate(limits.rate, limits.burst) if backend.rate else None
        for skill in registry if runs_tasks else ():
            await skill.start()
        if not backend.shared:  # a shared store's lost runs come back by lease expiry, not at a restart
            await runner.recover()
        if runs_tasks:
            await runner.start()
        if sender is not None:
            await sender.start()
        service.channels.start()  # channels that expire while the server was down close now
        purger = asyncio.create_task(_purge_forever(service, settings)) if settings.retention_days > 0 else None
        announcer = asyncio.create_task(_announce_when_ready(registry, settings))
        try:
            yield
        finally:
            announcer.cancel()
            if purger is not None:
                purger.cancel()
            await _drain(service, runner, settings.shutdown_grace)
            if sender is not None:  # after the runs ended: their last events were handed over (or are in the log)
                await sender.close()
            for skill in registry if runs_tasks else ():
                await skill.close()
            await backend.close()

    # the A2A-Extensions echo (token billing) wraps every response, CORS included; the gate (keys, scopes,
    # limits) is inside both, so that its refusals carry their headers too
    gate = Middleware(Gate, keyring=keyring, limits=limits, max_body_bytes=settings.max_body_bytes)
    middleware = [*_middleware(settings), Middleware(ExtensionsEcho), gate]
    # a worker answers no A2A request: only its probes and metrics, on its port
    served = worker_routes() if settings.role == "worker" else routes()
    return Starlette(routes=served, lifespan=lifespan, middleware=middleware)


def _push_sender(settings: Settings, backend: Backend, service: TaskService, metrics: Metrics) -> PushSender | None:
    """The webhook sender, co-located with the API: it follows the log of every task that has a push config."""
    push = backend.push
    if push is None:
        return None
    webhook = Webhook(UrlGuard(settings.push_allow), timeout=settings.push_timeout, user_agent="a2a-server push",
                      ca_file=settings.push_ca_file)  # fmt: skip
    policy = Policy(settings.push_max_failures, settings.push_retry_base, settings.push_retry_max)
    sender = PushSender(push, backend.store, backend.events, webhook, policy, metrics)
    service.push.watcher = sender
    return sender


def worker_routes() -> list[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]


async def drain(app: Starlette, grace: float) -> None:
    """Stop taking tasks and end the running ones (see Runner.close); a no-op before start-up."""
    state: AppState | None = getattr(app.state, "a2a", None)
    if state is not None and state.drain is not None:
        await state.drain(grace)


async def _drain(service: TaskService, runner: Runner | None, grace: float) -> None:
    service.close()
    if runner is not None:
        await runner.close(grace)


async def _announce_when_ready(registry: SkillRegistry, settings: Settings) -> None:
    """Say "ready" once every skill is (a model may still be loading when the server starts to listen), with
    where to go next."""
    here = list(registry) if settings.role != "api" else []  # an API replica starts no skill: none to wait for
    waiting = [s.name for s in here if s.ready() is not None]
    if waiting:
        log.info("a2a-server started; waiting for %s to be ready (GET /readyz says why)", ", ".join(waiting))
    while any(s.ready() is not None for s in here):
        await asyncio.sleep(0.1)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    log.info("a2a-server ready: skills %s (default %s)", ", ".join(registry.names()), registry.default)
    keyed = " -H 'Authorization: Bearer <key>'" if settings.api_keys_file is not None else ""
    log.info("console: %s/  |  try: curl -N %s/a2a/stream%s -H 'Content-Type: application/json' -d "
             "'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tasks/send\",\"params\":{\"task\":{\"input\":\"hello\"}}}'",
             base.rstrip("/"), base.rstrip("/"), keyed)  # fmt: skip


async def _purge_forever(service: TaskService, settings: Settings) -> None:
    while True:
        cutoff = datetime.now(UTC) - timedelta(days=settings.retention_days)
        try:
            purged = await service.purge(cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
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
            allow_headers=[
                "Content-Type",
                "Authorization",
                "A2A-Version",
                "Last-Event-ID",
                "Accept",
                "A2A-Extensions",
                "X-API-Key",
            ],
            expose_headers=["X-A2A-Task-Id", "ETag", "A2A-Extensions", "Retry-After", "WWW-Authenticate"],
            max_age=600,
        )
    ]


# ------------------------------------------------------------------ callers: keys and limits (http/auth.py)


def _keyring(settings: Settings) -> Keyring | None:
    """The keys file's reader, or None (auth off); says which in one line, and warns when a server that anyone
    on the network can reach has no keys."""
    if settings.api_keys_file is None:
        log.info("auth: off (no --api-keys-file): every caller is 'anonymous' and sees every task")
        if not _loopback(settings.host):
            log.warning("auth: off while listening on %s, beyond this machine: anyone who can reach the port can "
                        "read, stream and cancel every task; create keys with 'a2a-server keys add NAME --file "
                        "PATH' and pass --api-keys-file PATH", settings.host)  # fmt: skip
        return None
    try:
        keyring = Keyring(settings.api_keys_file)
    except KeyFileError as exc:
        raise StartupError(str(exc)) from None
    log.info("auth: on: %d keys from %s (re-read when it changes)", len(keyring), settings.api_keys_file)
    return keyring


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _limits(settings: Settings) -> Limits:
    return Limits(
        rate=settings.rate_limit, burst=settings.rate_burst, running_tasks=settings.max_running_tasks,
        streams=settings.max_streams, message_bytes=settings.max_message_bytes, parts=settings.max_parts,
        metadata_depth=settings.max_metadata_depth, metadata_bytes=settings.max_metadata_bytes,
    )  # fmt: skip
