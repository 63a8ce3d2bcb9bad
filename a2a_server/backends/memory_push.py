"""Push configs in this process (the memory backend): nothing survives a restart."""

from __future__ import annotations

import builtins
import copy
from collections.abc import Sequence

from a2a_server.ports import Delivery, PushConfig


class MemoryPushStore:
    """``PushStore`` in a dict; every read returns a copy, so a caller never edits what is stored."""

    def __init__(self) -> None:
        self._configs: dict[tuple[str, str], PushConfig] = {}  # insertion order = creation order
        # the keys of the "failing" configs: every read of a task asks, and the answer is nearly always "none"
        self._failing: dict[tuple[str, str], None] = {}  # a dict: ordered, so reads are deterministic

    def _mark(self, key: tuple[str, str], state: str | None) -> None:
        if state == "failing":
            self._failing.setdefault(key)
        else:
            self._failing.pop(key, None)

    async def put(self, config: PushConfig) -> None:
        self._configs.pop((config.task_id, config.id), None)
        self._configs[(config.task_id, config.id)] = copy.deepcopy(config)
        self._mark((config.task_id, config.id), config.delivery.state)

    async def get(self, task_id: str, config_id: str, *, owner: str | None = None) -> PushConfig | None:
        found = self._configs.get((task_id, config_id))
        if found is None or (owner is not None and found.owner != owner):
            return None
        return copy.deepcopy(found)

    async def list(self, task_id: str, *, owner: str | None = None) -> builtins.list[PushConfig]:
        return [
            copy.deepcopy(c)
            for c in self._configs.values()
            if c.task_id == task_id and (owner is None or c.owner == owner)
        ]

    async def delete(self, task_id: str, config_id: str, *, owner: str | None = None) -> bool:
        if await self.get(task_id, config_id, owner=owner) is None:
            return False
        del self._configs[(task_id, config_id)]
        self._mark((task_id, config_id), None)
        return True

    async def record(self, task_id: str, config_id: str, delivery: Delivery) -> bool:
        found = self._configs.get((task_id, config_id))
        if found is None:
            return False
        found.delivery = copy.copy(delivery)
        self._mark((task_id, config_id), delivery.state)
        return True

    async def active(self) -> builtins.list[PushConfig]:
        return [copy.deepcopy(c) for c in self._configs.values() if c.delivery.state != "done"]

    async def failing(self, task_ids: Sequence[str], *, owner: str | None = None) -> builtins.list[PushConfig]:
        if not self._failing:
            return []
        wanted = set(task_ids)
        found = [self._configs[key] for key in self._failing if key[0] in wanted]
        found.sort(key=lambda c: c.created)  # oldest first, as the other reads (not a scan of every config)
        return [copy.deepcopy(c) for c in found if owner is None or c.owner == owner]
