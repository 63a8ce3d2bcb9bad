"""One writer per store: an OS lock on ``<store>.lock`` that dies with its process (no stale lock to delete).

``flock`` is held on an open descriptor: when the process exits, however it exits (kill -9 included), the
kernel drops it and the next server takes the store over at once. The file also says who holds it (pid and
since when), so that the server refused can tell the user which process to stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path


class StoreLocked(RuntimeError):
    """Another live process holds the store; nothing in it was touched."""


class StoreLock:
    def __init__(self, store: Path) -> None:
        self.store = store
        self.path = store.with_name(store.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreLocked(
                f"the task store {self.store} is in use by {holder}; start this server with --store naming another "
                "file (or --store memory), or stop that server first"
            ) from None
        os.ftruncate(fd, 0)
        since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())
        os.write(fd, f"pid {os.getpid()} (since {since})\n".encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
