"""The backends behind the ports; ``open_backend`` turns the ``--store`` setting into one.

memory   everything in this process; nothing survives a restart (tests, demos)
sqlite   the embedded default: tasks and logs in one file, queue and control in this process
redis    shared by every process (redis_*.py): API replicas and workers scale out, a task survives its worker
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from a2a_server.backends.bus import DEFAULT_BYTE_LIMIT
from a2a_server.backends.ledger import MemoryLedger
from a2a_server.backends.local import LocalControl, LocalQueue
from a2a_server.backends.lock import StoreLock, StoreLocked
from a2a_server.backends.memory import MemoryStore
from a2a_server.backends.memory_push import MemoryPushStore
from a2a_server.backends.redis_backend import open_redis
from a2a_server.backends.redis_conn import is_redis_url, parse_url
from a2a_server.backends.sqlite import SQLiteStore
from a2a_server.backends.sqlite_ledger import SQLiteLedger
from a2a_server.backends.sqlite_push import SQLitePushStore
from a2a_server.ledger import Ledger
from a2a_server.ports import Control, EventLog, PushStore, Rate, RunningTasks, TaskQueue, TaskStore


def default_sqlite_path() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "a2a-server" / "tasks.db"


def store_path(url: str) -> Path | None:
    """The SQLite file a ``--store`` value names, or None for the memory store."""
    if url == "memory":
        return None
    if is_redis_url(url):
        parse_url(url)  # a bad URL fails here, before the server binds
        return None
    if url in ("", "sqlite"):
        return default_sqlite_path()
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if path:
            return Path(path)
    raise ValueError(f"--store {url!r}: expected 'memory', 'sqlite', 'sqlite:///path/to.db' or 'redis://host:port/db'")


def roles_of(url: str) -> tuple[str, ...]:
    """The ``--role`` values a store supports: the embedded ones keep the queue in the process, so one
    process must be both the API and the worker."""
    store_path(url)
    if is_redis_url(url):
        return ("all", "api", "worker")
    return ("all",)


@dataclass
class Backend:
    store: TaskStore
    events: EventLog
    queue: TaskQueue
    control: Control
    describe: str
    # push notification configs and their delivery state (None: this backend has no push store)
    push: PushStore | None = None
    # billing channels (issue 12); a backend without its own keeps them in memory
    ledger: Ledger = field(default_factory=MemoryLedger)
    # the shared store's connection as /readyz reports it: None when fine, else why not (Redis backend)
    health: Callable[[], Awaitable[str | None]] | None = None
    # several processes share it (Redis): a run lost with its process comes back by lease expiry
    shared: bool = False
    # caller limits kept in the shared store for every process (Redis): a token bucket per caller (made for the
    # configured rate and burst) and the running tasks per owner; None: each process keeps its own (limits.py)
    rate: Callable[[float, int], Rate] | None = None
    running: RunningTasks | None = None

    async def close(self) -> None:
        await self.queue.close()
        await self.control.close()
        await self.store.close()


async def open_backend(
    url: str, *, buffer_limit: int = 8192, lease_seconds: float = 30.0, retention_seconds: float = 0.0,
    byte_limit: int = DEFAULT_BYTE_LIMIT,
) -> Backend:
    if is_redis_url(url):
        return await open_redis(
            url, buffer_limit=buffer_limit, lease_seconds=lease_seconds, ttl=retention_seconds, byte_limit=byte_limit
        )
    path = store_path(url)
    store: MemoryStore | SQLiteStore
    push: PushStore
    if path is None:
        store, describe = MemoryStore(buffer_limit, byte_limit), "memory (nothing survives a restart)"
        push = MemoryPushStore()
        ledger: Ledger = MemoryLedger()
    else:
        store, describe = await SQLiteStore.open(path, buffer_limit=buffer_limit, byte_limit=byte_limit), str(path)
        push = SQLitePushStore(store)
        ledger = await SQLiteLedger.open_on(store)
    return Backend(store, store, LocalQueue(lease_seconds), LocalControl(), describe, push=push, ledger=ledger)


def check_free(url: str) -> None:
    """Raise ``StoreLocked`` now if another process holds the store (a clear error before the server binds)."""
    path = store_path(url)
    if path is not None:
        with StoreLock(path):
            pass


__all__ = [
    "Backend",
    "MemoryPushStore",
    "MemoryStore",
    "SQLitePushStore",
    "SQLiteStore",
    "StoreLocked",
    "check_free",
    "default_sqlite_path",
    "open_backend",
    "roles_of",
    "store_path",
]
