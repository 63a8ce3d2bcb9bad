"""Python's cyclic garbage collector, set for a served process (``serve``; never by ``create_app``, which may be
embedded: the collector is the process's, not the app's).

What it cost before (``bench/slow_readers.py``, 100 echo tasks of 5,000 words at once, SQLite; a ``gc.callbacks``
probe in the server): 77 full collections in one run, 5.2 s of the server's 16 s of CPU (~70 ms a pause, which
the streams see), 8.5 s of 20 s with 100 stalled readers. They found next to nothing (685 objects in all, once an
ended run no longer kept itself alive, ``Runner._end``): events live for a few milliseconds, across an await, a
group commit or a client's write, so with the default first threshold (700 net new objects, ~0.1 ms of this
work) nearly every one outlives two young collections, is promoted to the oldest generation, and the growth
of that generation triggers the full collections, each of which walks every object the process has, modules
and schemas included.

``settle()``, once the server has started (the app, its store and its skills loaded):
- ``gc.freeze()``: what start-up made lives as long as the process; later collections skip it;
- a first threshold of ``young`` (``Settings.gc_threshold``, 10,000 by default): a young collection walks more
  objects, but most of them have died by then. Same run: 4 full collections, 0.1 s; server CPU 16 → 12 s.

What is left for the collector is cycles that are garbage (each SSE response's end and each cancelled request
leave exceptions with their frames): they wait for up to ``young`` net new objects instead of 700 before a young
collection frees them.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("a2a_server")


def settle(young: int) -> None:
    """Freeze the objects start-up made and collect young objects every ``young`` net allocations (0: leave
    Python's thresholds)."""
    gc.collect()  # what start-up left as garbage is not frozen
    gc.freeze()
    if young > 0:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young, middle, old)
    log.debug("garbage collector: %d start-up objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold())
