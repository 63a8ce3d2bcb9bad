"""One generation on one model instance, in its own thread, feeding the event loop through a queue.

Contract:
- ``start(on_exit)`` starts the thread; the events ``Piece``... then exactly one ``Finished`` or ``Failed`` arrive
  on ``next_event()``; ``on_exit`` runs on the event loop after the thread's last event (it returns the instance
  to its pool), whether or not anyone still reads the events.
- ``cancel()`` sets the stop flag. The thread checks it before and after each sampled token (and between slices
  of the prompt), so at most the token being computed is finished; it is then discarded, and
  ``Finished(reason="cancelled")`` follows.
- The thread emits a token the moment it is sampled, before it evaluates that token to compute the next one:
  the client sees it one decode step (~12 ms) earlier than with ctransformers' own ``generate()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from skills.inference.backend import LLM
from skills.inference.params import SEED_MAX, SamplingParams
from skills.inference.textstream import TextStream

LAST_N_TOKENS = 64  # the window the repetition penalty looks at (ctransformers' default)
PROMPT_SLICE = 32  # prompt tokens evaluated between two looks at the stop flag


@dataclass(frozen=True, slots=True)
class Piece:
    text: str  # may be "" while bytes or a possible stop sequence are held back


@dataclass(frozen=True, slots=True)
class Finished:
    reason: str  # stop | length | cancelled
    prompt_tokens: int
    completion_tokens: int
    tail: str  # text held back until the end (possibly "")
    ttft_ms: float  # from the start of the generation (prompt evaluation) to the first token
    tokens_per_second: float  # decode speed: tokens after the first over the time since the first


@dataclass(frozen=True, slots=True)
class Failed:
    error: Exception


Event = Piece | Finished | Failed


@dataclass(frozen=True, slots=True)
class Budget:
    """What bounds the generation besides the sampling parameters."""

    stop_ids: frozenset[int]
    context_length: int
    threads: int
    batch_size: int


class ContextOverflow(ValueError):
    pass


class Generation:
    def __init__(
        self, llm: LLM, build_prompt: Callable[[LLM], list[int]], params: SamplingParams, budget: Budget
    ) -> None:
        self._llm, self._build_prompt, self._params, self._budget = llm, build_prompt, params, budget
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-generation", daemon=True)
        self._on_exit: Callable[[], None] = lambda: None
        # For tests of "stops within one token": tokens sampled in all, and when the stop was asked for.
        self.sampled = 0
        self.sampled_at_cancel: int | None = None

    def start(self, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit
        self._thread.start()

    def cancel(self) -> None:
        if not self._stop.is_set():
            self.sampled_at_cancel = self.sampled
            self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    async def next_event(self) -> Event:
        return await self._events.get()

    def _post(self, event: Event) -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self._stop.set()

    def _run(self) -> None:
        try:
            self._post(self._generate())
        except Exception as exc:  # reported to the task; the instance stays usable
            self._post(Failed(exc))
        finally:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._on_exit)

    def _generate(self) -> Finished:
        llm, params, budget = self._llm, self._params, self._budget
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
        # Reuses the KV cache for the prefix shared with this instance's previous prompt (the system turn).
        pending = list(llm.prepare_inputs_for_generation(prompt, reset=True))
        # In slices, so that a cancel during a long prompt (~1 s for 184 tokens) waits for one slice only.
        for at in range(0, len(pending), PROMPT_SLICE):
            if self._stop.is_set():
                break
            llm.eval(pending[at : at + PROMPT_SLICE], batch_size=budget.batch_size, threads=budget.threads)
        count, first, last, reason = 0, 0.0, 0.0, "length"
        while count < limit:
            if self._stop.is_set():
                reason = "cancelled"
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
            self._post(Piece(text.feed(data if isinstance(data, bytes) else data.encode())))
            if text.stopped:
                reason = "stop"
                break
            if count < limit:
                llm.eval([token], batch_size=budget.batch_size, threads=budget.threads)
        tps = (count - 1) / (last - first) if count > 1 and last > first else 0.0
        ttft = (first - started) * 1000 if count else 0.0
        return Finished(reason, len(prompt), count, text.flush(), ttft, tps)
