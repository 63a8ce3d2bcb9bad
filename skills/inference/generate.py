"""One generation on one model instance, in a thread of its own, handing its events to the event loop in batches.

Contract:
- ``start(on_exit)`` starts the generation in a worker thread (``workers.py``: reused across generations).
  ``next_events()`` returns, in order, the events that are ready (at least one): ``Progress``... while a long
  prompt evaluates, ``Piece``..., then exactly one ``Finished`` or ``Failed``.
  ``on_exit`` runs on the event loop in the wake-up that hands over the thread's last events (it returns the
  instance to its pool), whether or not anyone still reads the events.
- ``cancel()`` sets the stop flag. The thread checks it before and after each sampled token (and between slices
  of the prompt), so at most the token being computed is finished; it and any text not yet handed over are
  dropped, and ``Finished(reason="cancelled")`` follows.
- ``deadline`` (``time.monotonic()``) is checked where the stop flag is; past it, the text so far is handed over
  and ``Finished(reason="timeout")`` follows.
- Handoff, and why it is batched: every handoff wakes the event loop, which then runs the engine, the store, the
  SSE write and wakes the client; on this 2-core machine class that is ~1-2 ms of CPU per handoff (measured,
  bench/inference.md), and while ggml computes on both cores each of those milliseconds stalls a decode step
  (its threads spin-wait on each other). So a token's text is handed over at once when the previous handoff is
  at least ``flush_s`` old, otherwise with the first token after that or at the end: at 100-200 tokens/s a few
  tokens travel in one ``Piece``. The first token always goes at once (time to first token is unchanged), and
  one wake-up carries everything posted since the loop last looked.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from skills.inference.backend import LLM
from skills.inference.params import SEED_MAX, SamplingParams
from skills.inference.textstream import TextStream
from skills.inference.threads import Tuning
from skills.inference.workers import Workers

WORKERS = Workers("inference-generation")
LAST_N_TOKENS = 64  # the window the repetition penalty looks at (ctransformers' default)
PROMPT_SLICE = 32  # prompt tokens evaluated between two looks at the stop flag
THREAD_NAME = b"a2a-infer"  # the OS name of generation threads and of the ggml threads they start (benchmarks)


@dataclass(frozen=True, slots=True)
class Piece:
    text: str  # may be "" while bytes or a possible stop sequence are held back
    tokens: int = 1  # how many generated tokens this text carries


@dataclass(frozen=True, slots=True)
class Progress:
    evaluated: int  # prompt tokens evaluated so far (a prefix reused from the previous prompt counts)
    total: int


@dataclass(frozen=True, slots=True)
class Finished:
    reason: str  # stop | length | cancelled | timeout
    prompt_tokens: int
    completion_tokens: int
    tail: str  # text held back until the end (possibly "")
    ttft_ms: float  # from the start of the generation (prompt evaluation) to the first token
    tokens_per_second: float  # decode speed: tokens after the first over the time since the first
    threads: int = 0  # the decode thread count in use at the end
    prompt_threads: int = 0  # the thread count of the prompt's last slice


@dataclass(frozen=True, slots=True)
class Failed:
    error: Exception


Event = Piece | Progress | Finished | Failed


@dataclass(frozen=True, slots=True)
class Budget:
    """What bounds the generation besides the sampling parameters."""

    stop_ids: frozenset[int]
    context_length: int
    batch_size: int


@dataclass(frozen=True, slots=True)
class Pacing:
    flush_s: float = 0.0  # least time between two handoffs of text (0: every token at once)
    progress_s: float = 1.0  # least time between two prompt progress reports


class ContextOverflow(ValueError):
    pass


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None) if sys.platform.startswith("linux") else None
    except OSError:
        return None


def name_thread(name: bytes = THREAD_NAME) -> None:
    """Set the calling thread's OS name (Linux ``prctl(PR_SET_NAME)``); threads it starts inherit it."""
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):
            libc.prctl(15, name, 0, 0, 0)


class Generation:
    def __init__(
        self,
        llm: LLM,
        build_prompt: Callable[[LLM], list[int]],
        params: SamplingParams,
        budget: Budget,
        tuning: Tuning,
        *,
        pacing: Pacing = Pacing(),
        deadline: float | None = None,
    ) -> None:
        self._llm, self._build_prompt, self._params, self._budget = llm, build_prompt, params, budget
        self._tuning, self._pacing, self.deadline = tuning, pacing, deadline
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._on_exit: Callable[[], None] = lambda: None
        # the worker appends to _outbox under _lock and wakes the loop only if no wake-up is pending
        self._lock = threading.Lock()
        self._outbox: list[Event] = []
        self._wake_pending = False
        self._exiting = False  # the thread has posted its last events (under _lock)
        self._exited = False  # on_exit has run (on the loop)
        self._inbox: list[Event] = []
        self._arrived = asyncio.Event()
        # For tests of "stops within one token": tokens sampled in all, and when the stop was asked for.
        self.sampled = 0
        self.sampled_at_cancel: int | None = None
        self.handoffs = 0
        self.prompt_threads = 0  # the thread count of the last prompt slice

    def start(self, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit
        WORKERS.submit(self._run)

    def cancel(self) -> None:
        if not self._stop.is_set():
            self.sampled_at_cancel = self.sampled
            self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the generation's thread is done with it (and with its model instance)."""
        self._done.wait(timeout)

    async def next_events(self) -> list[Event]:
        while not self._inbox:
            self._arrived.clear()
            await self._arrived.wait()
        batch, self._inbox = self._inbox, []
        return batch

    def _post(self, *events: Event, last: bool = False) -> None:
        with self._lock:
            self._outbox.extend(events)
            self._exiting = self._exiting or last
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._take)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self._stop.set()

    def _take(self) -> None:
        with self._lock:
            batch, self._outbox = self._outbox, []
            self._wake_pending = False
            exiting = self._exiting
        self.handoffs += 1
        self._inbox += batch
        self._arrived.set()
        if exiting and not self._exited:  # in the wake-up that carried the last events: one fewer per generation
            self._exited = True
            self._on_exit()

    def _run(self) -> None:
        name_thread()
        events: tuple[Event, ...] = ()
        try:
            events = tuple(self._generate())  # the last text and Finished in one handoff: one event for both
        except Exception as exc:  # reported to the task; the instance stays usable
            events = (Failed(exc),)
        finally:
            self._done.set()  # the model instance is no longer touched by this generation
            self._post(*events, last=True)

    def _halt(self) -> str | None:
        """Why the generation must end now, if it must: "cancelled" or "timeout"."""
        if self._stop.is_set():
            return "cancelled"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "timeout"
        return None

    def _evaluate_prompt(self, prompt: list[int]) -> str | None:
        """Evaluate what the KV cache lacks of ``prompt``, in slices; returns a reason to halt, or None."""
        llm, budget, tuning = self._llm, self._budget, self._tuning
        # Reuses the KV cache for the prefix shared with this instance's previous prompt (the system turn).
        pending = list(llm.prepare_inputs_for_generation(prompt, reset=True))
        done = len(prompt) - len(pending)
        started = last_report = time.monotonic()
        # In slices, so that a cancel during a long prompt (~1 s for 184 tokens) waits for one slice only.
        for at in range(0, len(pending), PROMPT_SLICE):
            if reason := self._halt():
                return reason
            piece = pending[at : at + PROMPT_SLICE]
            full = len(piece) == PROMPT_SLICE  # only full slices are timed: the fixed cost per call skews the rest
            threads = self.prompt_threads = tuning.prompt.pick() if full else tuning.decode.steady()
            began = time.perf_counter()
            llm.eval(piece, batch_size=budget.batch_size, threads=threads)
            if full:
                tuning.prompt.record(threads, time.perf_counter() - began, len(piece))
            done += len(piece)
            now = time.monotonic()
            if done < len(prompt) and now - last_report >= self._pacing.progress_s and now > started:
                last_report = now
                self._post(Progress(done, len(prompt)))
        return None

    def _generate(self) -> tuple[Event, ...]:
        llm, params, budget = self._llm, self._params, self._budget
        chooser, flush_s = self._tuning.decode, self._pacing.flush_s
        started = time.perf_counter()
        prompt = self._build_prompt(llm)
        room = budget.context_length - len(prompt)
        if room < 1:
            raise ContextOverflow(
                f"the prompt is {len(prompt)} tokens; the model's context is {budget.context_length} tokens"
            )
        limit = min(params.max_tokens, room)
        greedy = params.temperature == 0
        # ctransformers reseeds its generator with the seed given on every call: one seed for all steps would
        # draw the same random number each time. Derive one seed per step from the task's seed instead.
        rng = random.Random(params.seed)
        text = TextStream(params.stop)
        halted = self._evaluate_prompt(prompt)
        count, first, last, reason = 0, 0.0, 0.0, halted or "length"
        held, held_tokens, handed = "", 0, 0.0  # text generated but not handed over yet
        while count < limit and halted is None:
            if halted := self._halt():
                reason = halted
                break
            token = llm.sample(
                top_k=1 if greedy else params.top_k,
                top_p=params.top_p,
                # A temperature of 0 would divide the logits by zero: greedy is top-k 1 at temperature 1.
                temperature=1.0 if greedy else params.temperature,
                repetition_penalty=params.repetition_penalty,
                last_n_tokens=LAST_N_TOKENS,
                seed=rng.randint(0, SEED_MAX),
            )
            self.sampled += 1
            if self._stop.is_set():
                reason = "cancelled"
                break
            if token in budget.stop_ids:
                reason = "stop"
                break
            count += 1
            last = time.perf_counter()
            first = first or last
            data = llm.detokenize([token], decode=False)
            held += text.feed(data if isinstance(data, bytes) else data.encode())
            held_tokens += 1
            if last - handed >= flush_s:
                self._post(Piece(held, held_tokens))
                held, held_tokens, handed = "", 0, last
            if text.stopped:
                reason = "stop"
                break
            if count < limit:
                threads = chooser.pick()
                began = time.perf_counter()
                llm.eval([token], batch_size=budget.batch_size, threads=threads)
                chooser.record(threads, time.perf_counter() - began)
        last_piece: tuple[Event, ...] = ()
        if held_tokens and reason != "cancelled":
            last_piece = (Piece(held, held_tokens),)
        elif held_tokens:
            count -= held_tokens  # generated, never handed over: not part of the answer
        tps = (count - 1) / (last - first) if count > 1 and last > first else 0.0
        ttft = (first - started) * 1000 if count else 0.0
        tail = "" if reason == "cancelled" else text.flush()
        return (
            *last_piece,
            Finished(reason, len(prompt), count, tail, ttft, tps, chooser.current, self.prompt_threads),
        )
