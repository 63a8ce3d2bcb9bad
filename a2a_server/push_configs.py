"""The service's push notification configs: set / get / list / delete, owner-checked through the task.

    set ─► the task (owner check) ─► the URL (SSRF guard: -32602 naming the field) ─► PushStore.put
        ─► the sender delivers it from the task's newest event on (a config given with a message: from the
           start of that turn)
    get / list ─► PushStore (owner-scoped) ─► the config with its delivery state
    delete ─► PushStore.delete ─► the sender stops (idempotent: deleting a missing config is not an error)

Without a push store every call answers -32003 PushNotificationNotSupported.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Awaitable, Callable
from typing import Protocol

from a2a_server.consumers.guard import Refused, Unresolved, UrlGuard
from a2a_server.dialects.base import PushConfigIn
from a2a_server.errors import InvalidParams, PushNotSupported, TaskNotFound
from a2a_server.model import Task, utc_now
from a2a_server.ports import Delivery, EventLog, PushConfig, PushStore

# configs one task may hold: each costs a worker and a POST per event
MAX_PER_TASK = 10


class PushWatcher(Protocol):
    """The sender, as the service sees it (a co-located one; a remote one would watch the store instead)."""

    def watch(self, config: PushConfig) -> None: ...

    def forget(self, task_id: str, config_id: str) -> None: ...


class PushConfigs:
    def __init__(
        self,
        store: PushStore | None,
        events: EventLog,
        find: Callable[[str, str | None], Awaitable[Task]],
        guard: UrlGuard | None = None,
    ) -> None:
        self.store, self.events, self._find = store, events, find
        self.guard = guard or UrlGuard()
        self.watcher: PushWatcher | None = None

    def _store(self) -> PushStore:
        if self.store is None:
            raise PushNotSupported()
        return self.store

    async def prepare(self, task: Task, given: PushConfigIn, dialect: str, *, after: int) -> PushConfig:
        """A config checked and ready to store (nothing is stored yet), delivering the events after ``after``."""
        self._store()
        try:
            await self.guard.check(given.url)
        except Unresolved:
            # nothing to check yet (DNS down, a receiver not deployed yet, or no DNS at all, as in the conformance
            # suite's sandbox with example.com): every delivery checks the address again before it connects
            pass
        except Refused as exc:
            raise InvalidParams(f"Invalid params: {given.field}: {exc}", {"url": given.url},
                                param=given.field) from None  # fmt: skip
        return PushConfig(
            task_id=task.id, id=given.id or task.id, url=given.url, owner=task.owner, dialect=dialect,
            secret=given.secret or secrets.token_urlsafe(32), token=given.token, auth_scheme=given.auth_scheme,
            auth_credentials=given.auth_credentials, artifacts=given.artifacts, created=utc_now(),
            delivery=Delivery(cursor=after),
        )  # fmt: skip

    async def save(self, config: PushConfig) -> None:
        """Store a prepared config and start delivering it."""
        store = self._store()
        existing = await store.list(config.task_id)
        if len(existing) >= MAX_PER_TASK and all(c.id != config.id for c in existing):
            raise InvalidParams(f"Invalid params: task {config.task_id} has {MAX_PER_TASK} push notification configs "
                                "already; delete one first", {"taskId": config.task_id})  # fmt: skip
        await store.put(config)
        if self.watcher is not None:
            self.watcher.watch(config)

    async def set(self, task_id: str, given: PushConfigIn, dialect: str, owner: str | None) -> PushConfig:
        task = await self._find(task_id, owner)
        store = self._store()
        config = await self.prepare(task, given, dialect, after=await self.events.last_event_id(task.id))
        replaced = await store.get(task.id, config.id)
        if replaced is not None and replaced.url == config.url:
            config.delivery = replaced.delivery  # the same receiver: go on from where its delivery stands
        await self.save(config)
        return config

    async def get(self, task_id: str, config_id: str | None, owner: str | None) -> PushConfig:
        task = await self._find(task_id, owner)
        store = self._store()
        if config_id is None:  # 0.1 (one config per task) and 0.3 without pushNotificationConfigId
            found = await store.list(task.id, owner=owner)
            config = next((c for c in found if c.id == task.id), found[0] if found else None)
        else:
            config = await store.get(task.id, config_id, owner=owner)
        if config is None:
            raise _missing(task.id, config_id)
        return config

    async def list(self, task_id: str, owner: str | None) -> builtins.list[PushConfig]:
        task = await self._find(task_id, owner)
        return await self._store().list(task.id, owner=owner)

    async def delete(self, task_id: str, config_id: str | None, owner: str | None) -> None:
        task = await self._find(task_id, owner)
        await self._store().delete(task.id, config_id or task.id, owner=owner)
        if self.watcher is not None:
            self.watcher.forget(task.id, config_id or task.id)


def _missing(task_id: str, config_id: str | None) -> TaskNotFound:
    error = TaskNotFound(task_id)
    which = f", config {config_id}" if config_id else ""
    error.message = f"Push notification config not found: task {task_id}{which}"
    if config_id:
        error.details = {"taskId": task_id, "configId": config_id}
    return error
