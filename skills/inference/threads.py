"""How many ggml threads the next evaluation gets: whichever count has been fastest lately, re-checked as it runs.

Why not a fixed count: ggml (ctransformers' September-2023 copy) starts its worker threads for every evaluation and
makes them spin-wait on each other after every graph node, without yielding. When every thread has a core, two
threads decode ~1.7x faster than one; when anything else wants one of the two cores (another job, the event loop
streaming tokens, the client reading them), the thread that lost its core stalls the one that spins, and two threads
fall far below one (measured on this 2-core machine class with one core busy elsewhere: 5-62 tokens/s with two
threads, 42-49 with one; see bench/inference.md). Which count is best changes from second to second, so it is
measured, not configured:

- ``record(threads, seconds, units)`` after each evaluation (units: tokens evaluated);
- ``pick()`` returns the count with the lowest median time per unit over its recent samples, except that every
  ``interval`` evaluations it probes another count for ``PROBE`` evaluations. A probe that loses doubles the
  interval (up to ``MAX_INTERVAL``), a probe that wins switches and resets it; when the current count gets much
  slower than the other was when last seen, the other is probed at once.

A ``ThreadChooser`` belongs to one model instance and is used by one thread at a time (its generation's worker).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable

PROBE = 3  # evaluations per probe; their median decides
WINDOW = 8  # recent samples kept per thread count
BASE_INTERVAL = 16
MAX_INTERVAL = 256
WIN_MARGIN = 0.95  # a probe must be at least 5 % faster to take over
DEGRADED = 1.3  # the current count is this much slower than the other's last median: probe the other now


class ThreadChooser:
    def __init__(self, candidates: Iterable[int]) -> None:
        self.candidates = sorted(set(candidates))
        if not self.candidates or self.candidates[0] < 1:
            raise ValueError("thread counts must be positive")
        self.current = self.candidates[-1]
        self._samples: dict[int, deque[float]] = {n: deque(maxlen=WINDOW) for n in self.candidates}
        self._last_seen: dict[int, float] = {}  # median per unit when the count was last measured
        self._probing: int | None = None
        self._since_probe = 0
        self._interval = BASE_INTERVAL
        self._next_probe = 0  # round robin over the other counts
        self.switches = 0

    @property
    def adaptive(self) -> bool:
        return len(self.candidates) > 1

    def median(self, threads: int) -> float | None:
        samples = self._samples[threads]
        return statistics.median(samples) if samples else self._last_seen.get(threads)

    def pick(self) -> int:
        if self._probing is None and self.adaptive and self._since_probe >= self._interval:
            self._start_probe(self._other())
        return self.current if self._probing is None else self._probing

    def record(self, threads: int, seconds: float, units: int = 1) -> None:
        if threads not in self._samples or units < 1:
            return
        self._samples[threads].append(seconds / units)
        if threads == self._probing:
            if len(self._samples[threads]) >= PROBE:
                self._end_probe(threads)
            return
        if threads != self.current:
            return
        self._since_probe += 1
        mine = self._samples[threads]
        if self.adaptive and len(mine) >= PROBE:
            now = self._last_seen[threads] = statistics.median(mine)
            seen = {n: t for n, t in self._last_seen.items() if n != threads}
            if seen:
                other = min(seen, key=seen.__getitem__)
                if now > DEGRADED * seen[other]:
                    self._start_probe(other)

    def seed(self, threads: int, per_unit: Iterable[float]) -> None:
        """Calibration: samples measured before serving (the warm-up at load)."""
        for value in per_unit:
            self._samples[threads].append(value)
        if self._samples[threads]:
            self._last_seen[threads] = statistics.median(self._samples[threads])
        if self._last_seen:
            self.current = min(self._last_seen, key=self._last_seen.__getitem__)

    def _other(self) -> int:
        others = [n for n in self.candidates if n != self.current]
        choice = others[self._next_probe % len(others)]
        self._next_probe += 1
        return choice

    def _start_probe(self, threads: int) -> None:
        self._samples[threads].clear()
        self._probing = threads
        self._since_probe = 0

    def _end_probe(self, threads: int) -> None:
        probe = statistics.median(self._samples[threads])
        self._last_seen[threads] = probe
        self._probing = None
        mine = self.median(self.current)
        if mine is None or probe < WIN_MARGIN * mine:
            self.current = threads
            self._interval = BASE_INTERVAL
            self.switches += 1
            self._samples[threads].clear()  # its tenure starts fresh: old samples say nothing about now
            self._samples[threads].append(probe)
        else:
            self._interval = min(self._interval * 2, MAX_INTERVAL)

    def describe(self) -> str:
        parts = [f"{n}: {1000 * m:.1f} ms" for n in self.candidates if (m := self.median(n)) is not None]
        return ", ".join(parts) + f" -> {self.current} thread(s)"


class Tuning:
    """The thread choosers of one model instance: prompt slices and decode steps scale differently."""

    def __init__(self, counts: Iterable[int]) -> None:
        counts = sorted(set(counts))
        self.prompt = ThreadChooser(counts)
        self.decode = ThreadChooser(counts)
