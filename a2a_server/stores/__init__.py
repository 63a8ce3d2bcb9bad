"""Where tasks and their event logs live; ``open_store`` turns the ``--store`` setting into one."""

from __future__ import annotations

import os
from pathlib import Path

from a2a_server.stores.base import TaskPage, TaskStore
from a2a_server.stores.memory import MemoryStore
from a2a_server.stores.sqlite import SQLiteStore


def default_sqlite_path() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "a2a-server" / "tasks.db"


def store_path(url: str) -> Path | None:
    """The SQLite file a ``--store`` value names, or None for the memory store."""
    if url == "memory":
        return None
    if url in ("", "sqlite"):
        return default_sqlite_path()
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if path:
            return Path(path)
    raise ValueError(f"--store {url!r}: expected 'memory', 'sqlite' or 'sqlite:///path/to.db'")


async def open_store(url: str) -> TaskStore:
    path = store_path(url)
    if path is None:
        return MemoryStore()
    return await SQLiteStore.open(path)


__all__ = ["MemoryStore", "SQLiteStore", "TaskPage", "TaskStore", "default_sqlite_path", "open_store", "store_path"]
