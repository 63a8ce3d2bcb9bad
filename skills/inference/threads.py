"""How many ggml threads the next evaluation gets: whichever count has been fastest lately, re-checked as it runs.

Why not a fixed count: ggml (ctransformers' September-2023 copy) starts its worker threads for every evaluation and
makes them spin-wait on each other after every graph node, without yielding. When every thread has a core, two
threads decode ~1.7x faster than one; when anything else wants one of the two cores (another job, the event loop
streaming tokens, the client reading them), the thread that lost its core stalls the one that spins, and two threads
fall far below one: on this 2-core machine class with other jobs running, raw ctransformers with two threads went
from 62 down to 2 tokens/s between one round and the next, while one thread stayed at 42-55 (bench/inference.md).
Which count is best changes from second to second, and the two mistakes do not cost the same: one thread too few
costs at most ~1.7x, one too many up to ~20x. So:

- ``record(threads, seconds, units)`` after each evaluation (units: tokens evaluated);
- other processes' load (``others()``: cores they kept busy lately, from /proc/stat) caps the count: more threads
  than cores left free are not used at all;
- a count that has become ``DEGRADED`` times slower than a smaller count was is left at once, for that count;
- a larger count is tried (probed) every ``interval`` evaluations, for up to ``PROBE`` of them; the probe ends after
  one evaluation if that one is already twice as slow. A winning probe takes over and resets the interval; a losing
  one doubles it, up to ``MAX_INTERVAL``.

A ``ThreadChooser`` belongs to one model instance and is used by one thread at a time (its generation's worker).
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

PROBE = 3  # evaluations per probe; their median decides
WINDOW = 8  # recent samples kept per thread count
RECENT = 3  # samples that show a count has become slower
BASE_INTERVAL = 16
MAX_INTERVAL = 512
WIN_MARGIN = 0.95  # a probe must be at least 5 % faster to take over
DEGRADED = 1.3  # this much slower than a smaller count was: switch to it now
HOPELESS = 2.0  # a probe's first evaluation this much slower than the current count ends the probe
LOAD_EVERY = 0.25  # seconds between two readings of the other processes' load
STALE = 1.0  # a reading over a longer stretch than this is not used


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OtherLoad:
    """Cores that other processes kept busy since the previous call (Linux /proc; None elsewhere).

    None as well when the previous call is more than ``STALE`` seconds old: the load over a long idle stretch says
    little about now (in the benchmark it was the raw runs that had just ended), so the timings decide until the
    next reading."""

    def __init__(self) -> None:
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields)
            busy = (user + nice + system + irq + softirq + steal) / self._tick
            ours = sum(os.times()[:2])
            return time.monotonic(), busy, ours
        return None

    def __call__(self) -> float | None:
        now, last = self._read(), self._last
        self._last = now
        if now is None or last is None or not 0 < now[0] - last[0] <= STALE:
            return None
        return max((now[1] - last[1]) - (now[2] - last[2]), 0.0) / (now[0] - last[0])


class ThreadChooser:
    def __init__(
        self, candidates: Iterable[int], others: Callable[[], float | None] | None = None, cores: int | None = None
    ) -> None:
        self.candidates = sorted(set(candidates))
        if not self.candidates or self.candidates[0] < 1:
            raise ValueError("thread counts must be positive")
        self.current = self.candidates[0]  # the safe end until measured: larger counts are probed
        self._others, self._cores = others, cores or usable_cores()
        self._allowed, self._load_at = self.candidates[-1], -math.inf
        self._samples: dict[int, deque[float]] = {n: deque(maxlen=WINDOW) for n in self.candidates}
        self._last_seen: dict[int, float] = {}  # median per unit when the count was last measured
        self._probing: int | None = None
        self._since_probe = 0
        self._interval = BASE_INTERVAL
        self.switches = 0

    @property
    def adaptive(self) -> bool:
        return len(self.candidates) > 1

    def median(self, threads: int) -> float | None:
        samples = self._samples[threads]
        return statistics.median(samples) if samples else self._last_seen.get(threads)

    def pick(self) -> int:
        if not self.adaptive:
            return self.current
        allowed = self._cap()
        if self.current > allowed:
            self._switch(max(n for n in self.candidates if n <= allowed))
        if self._probing is None and self._since_probe >= self._interval:
            self._since_probe = 0
            larger = [n for n in self.candidates if self.current < n <= allowed]
            if larger:
                self._probing = larger[0]
                self._samples[self._probing].clear()
        return self.current if self._probing is None else self._probing

    def steady(self) -> int:
        """The current count within the load cap, starting no probe: for evaluations too few or too unlike
        the recorded ones to be measured (a short prompt's one partial slice)."""
        if self.adaptive and self.current > self._cap():
            self._switch(max(n for n in self.candidates if n <= self._allowed))
        return self.current

    def record(self, threads: int, seconds: float, units: int = 1) -> None:
        if threads not in self._samples or units < 1:
            return
        per_unit = seconds / units
        self._samples[threads].append(per_unit)
        if threads == self._probing:
            mine = self.median(self.current)
            if len(self._samples[threads]) >= PROBE or (mine is not None and per_unit > HOPELESS * mine):
                self._end_probe(threads)
            return
        if threads != self.current:
            return
        self._since_probe += 1
        recent = list(self._samples[threads])[-RECENT:]
        if not self.adaptive or len(recent) < RECENT:
            return
        now = self._last_seen[threads] = statistics.median(recent)
        smaller = {n: t for n, t in self._last_seen.items() if n < threads}
        if smaller:
            best = min(smaller, key=smaller.__getitem__)
            if now > DEGRADED * smaller[best]:
                self._switch(best)

    def seed(self, threads: int, per_unit: Iterable[float]) -> None:
        """Calibration: samples measured before serving (the warm-up at load).

        The count's estimate is its fastest sample, not the median: the warm-up runs while the server starts, beside
        start-up work and readiness probes (an orchestrator polling /readyz every 20 ms woke the loop often enough to
        stall two spinning ggml threads: 2 threads measured 9 ms a step against 4.2 ms quiet, and the first requests
        then ran on 1). Interference only makes a sample slower; contention that lasts makes every sample slower, and
        then the fastest is slow too. What serving measures afterwards corrects a wrong pick (``DEGRADED``)."""
        values = [*self._samples[threads], *per_unit]
        if values:
            # kept as one sample: the slow ones would count as "recent" and could switch the count at once
            best = self._last_seen[threads] = min(values)
            self._samples[threads].clear()
            self._samples[threads].append(best)
        if self._last_seen:
            self.current = min(self._last_seen, key=self._last_seen.__getitem__)

    def _cap(self) -> int:
        """The most threads the other processes leave cores for (all of them when their load is unknown)."""
        if self._others is not None and time.monotonic() - self._load_at >= LOAD_EVERY:
            self._load_at = time.monotonic()
            others = self._others()
            allowed = self.candidates[-1] if others is None else max(1, math.floor(self._cores - others + 0.5))
            if allowed > self._allowed:  # cores came free: look at the larger counts again soon
                self._interval = min(self._interval, BASE_INTERVAL)
            self._allowed = allowed
        return self._allowed

    def _switch(self, threads: int) -> None:
        self.current, self._probing = threads, None
        self._samples[threads].clear()  # its tenure starts fresh: old samples say nothing about now
        self.switches += 1

    def _end_probe(self, threads: int) -> None:
        probe = statistics.median(self._samples[threads])
        self._last_seen[threads] = probe
        self._probing = None
        mine = self.median(self.current)
        if mine is None or probe < WIN_MARGIN * mine:
            self._switch(threads)
            self._samples[threads].append(probe)
            self._interval = BASE_INTERVAL
        else:
            self._interval = min(self._interval * 2, MAX_INTERVAL)

    def describe(self) -> str:
        parts = [f"{n}: {1000 * m:.1f} ms" for n in self.candidates if (m := self.median(n)) is not None]
        return ", ".join(parts) + f" -> {self.current} thread(s)"


class Tuning:
    """The thread choosers of one model instance: full prompt slices and decode steps scale differently (a short
    prompt's partial slice, timed per token, is like neither: it follows the decode chooser's ``steady()``). They
    share one reading of the other processes' load."""

    def __init__(self, counts: Iterable[int], others: Callable[[], float | None] | None = None) -> None:
        counts = sorted(set(counts))
        shared = _Shared(others) if others is not None else None
        self.prompt = ThreadChooser(counts, shared)
        self.decode = ThreadChooser(counts, shared)


class _Shared:
    """One load reading for two choosers: each call of ``OtherLoad`` consumes the interval since the last one."""

    def __init__(self, source: Callable[[], float | None]) -> None:
        self._source, self._at = source, -math.inf
        self._value: float | None = None

    def __call__(self) -> float | None:
        if time.monotonic() - self._at >= LOAD_EVERY / 2:
            self._at, self._value = time.monotonic(), self._source()
        return self._value
