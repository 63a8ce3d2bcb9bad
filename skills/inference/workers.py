"""Long-lived daemon threads for generations: started when more generations run at once than ever before, then
reused, so a request pays neither for a thread's start nor for the event loop waiting until it has started.

``submit(job)`` runs ``job`` in a thread of its own right away (an idle worker, or a new one): jobs never wait
for each other, as with a thread per job. Workers are daemons, as the per-job threads were: a server that is
stopped at once (a second Ctrl-C) does not wait for a generation to finish.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Workers:
    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # workers waiting for a job that no submit has counted on yet
        self.started = 0  # threads started so far (tests: reuse)

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            spare = self._idle > 0
            if spare:
                self._idle -= 1
            else:
                self.started += 1
        self._jobs.put(job)
        if not spare:
            threading.Thread(target=self._work, name=self._name, daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except BaseException:  # a job reports its own failures; this keeps the worker alive if one does not
                log.exception("a job of %s failed", self._name)
            with self._lock:
                self._idle += 1
