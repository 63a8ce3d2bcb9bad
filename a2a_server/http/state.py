"""What the routes share, built once by ``create_app`` in the lifespan."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from a2a_server.config import Settings
from a2a_server.keys import Keyring
from a2a_server.limits import Rate
from a2a_server.rpc import Dispatcher
from a2a_server.service import TaskService
from a2a_server.skill import SkillRegistry

SUPPORTED_VERSIONS = ("0.1", "0.2", "0.3", "1.0")
_VERSION = re.compile(r"^\s*(\d+)(?:\.(\d+))?(?:\.\d+)?\s*$")


@dataclass
class AppState:
    settings: Settings
    service: TaskService
    dispatcher: Dispatcher
    skills: SkillRegistry
    static_card: dict[str, Any]
    # stops taking tasks and ends the running ones within the grace (seconds): see app.drain
    drain: Callable[[float], Awaitable[None]] | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    # the API keys (None: auth off); see http/auth.py
    keyring: Keyring | None = None
    # the shared store's connection for /readyz (Redis): None when fine, else why not
    store_health: Callable[[], Awaitable[str | None]] | None = None
    # the request rate shared by every process (Redis), which the gate uses instead of its own buckets
    rate: Rate | None = None


    @property
    def pushes(self) -> bool:
        """The backend keeps push configs (the card says so only then)."""
        return self.service.push.store is not None


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.a2a
    return state


class BadVersion(ValueError):
    pass


def requested_version(request: Request) -> str | None:
    """``A2A-Version`` (header, else query parameter) as Major.Minor; None when absent."""
    raw = request.headers.get("a2a-version") or request.query_params.get("A2A-Version")
    if raw is None or not raw.strip():
        return None
    m = _VERSION.match(raw)
    version = f"{m.group(1)}.{m.group(2) or 0}" if m else raw.strip()
    if version not in SUPPORTED_VERSIONS:
        raise BadVersion(
            f"A2A-Version {raw.strip()!r} is not supported; this server speaks {', '.join(SUPPORTED_VERSIONS)}"
        )
    return version
