"""Where tasks and their event logs live."""

from __future__ import annotations

from a2a_server.stores.base import TaskPage, TaskStore
from a2a_server.stores.memory import MemoryStore

__all__ = ["MemoryStore", "TaskPage", "TaskStore"]
