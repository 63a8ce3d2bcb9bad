"""The ``inference`` skill: a local model answers the message, streaming its tokens as they are generated.

Contract of ``InferenceSkill.run`` (on top of ``a2a_server.skill``'s):
- while loading: ``Status(WORKING, "loading model <id>")``; while waiting for an instance:
  ``Status(WORKING, "queued: position N")`` each time N changes, and ``"queued: position N (waiting S s)"`` every
  ``queue_update_s`` while it does not (a long prompt ahead may hold the instance for minutes);
  a full queue: ``Status(REJECTED, "queue full: ...")``.
- then ``Status(WORKING, metadata={"model": id})`` when generation starts; while a long prompt evaluates,
  ``Status(WORKING, "evaluating prompt: P %", metadata={"prompt_progress": {"evaluated", "total"}})`` at most
  every ``progress_s``; ``Token`` events with the generated text (the first token at once, later ones at most
  every ``flush_ms``, several tokens to an event when they come faster: see ``generate``); a token that is only
  part of a UTF-8 character, or could be the start of a stop sequence, is held back and sent with a later one;
  a ``Token(last=True)`` with whatever was still held back (often ""; with a flush interval, also the text of the
  batch that ended the generation), and
  ``Status(COMPLETED, metadata={"usage", "timings", "model"})``. ``finish_reason`` is stop, length or timeout (the
  ``timeout_s`` limit, counted from the start of the run, queue wait included: the text so far is the answer).
- cancel (``ctx.cancelled``): the worker stops within one token; no further tokens are yielded and the last event is
  ``Status(CANCELED, metadata=...)`` with ``finish_reason: "cancelled"`` and the usage of the tokens delivered.
  A generator closed by the engine stops the worker as well; the model instance returns to the pool when the
  worker thread ends, never earlier.
- A prompt longer than the context is refused by ``validate`` (``InvalidSkillParams``, reason
  ``context_length_exceeded``) once the model is loaded; earlier conversation turns that would not fit are dropped,
  oldest first. If the model was not loaded at validation, the run ends ``FAILED`` with the same message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from a2a_server.model import Message, TaskState
from a2a_server.skill import (
    BaseSkill,
    InvalidSkillParams,
    ModelInfo,
    SkillCard,
    SkillContext,
    SkillEvent,
    Status,
    Token,
)
from skills.inference.backend import LLM
from skills.inference.chat import Turn, chat_from, prompt_ids, with_history
from skills.inference.generate import ContextOverflow, Failed, Finished, Generation, Pacing, Piece, Progress
from skills.inference.models import ModelSpec, Registry
from skills.inference.params import describe, parse_params
from skills.inference.pool import QueueFull
from skills.inference.runtime import LLMFactory, LoadedModel, ctransformers_factory

logger = logging.getLogger(__name__)
CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
# Least time between two token events. Each event that arrives on its own (not batched with others) costs the server
# ~0.8-0.9 ms of CPU on this 2-core machine class, whatever the skill (a paced echo stream costs the same per chunk:
# bench/README.md): the whole chain of task hops (skill -> run -> store -> live view -> SSE renderer -> socket) runs
# once per wake-up. At 100 ms a 64-token answer took ~10 of them, 174 us of server CPU per token; 250 ms measured
# ~15 % less CPU per token but streams only four chunks a second, and this server's point is that a reader sees
# each token when it exists: 100 ms stays the default (A2A_INFERENCE_FLUSH_MS=250 trades grain for CPU, 0 = every
# token its own event). The cheaper lever is a cheaper event in the core (bench/README.md, inference section).
DEFAULT_FLUSH_MS = 100.0


def _env_number(name: str, default: float | None, minimum: float) -> float | None:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ValueError(f"{name} must be a number >= {minimum:g}, got {raw!r}")
    return value


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {raw!r}")
    return int(raw)


def invalid(message: str, *, reason: str | None = None, param: str | None = None) -> InvalidSkillParams:
    """``InvalidSkillParams`` with the machine-readable reason and parameter when the core takes them."""
    try:
        return InvalidSkillParams(message, reason=reason, param=param)  # type: ignore[call-arg,unused-ignore]
    except TypeError:  # a core from before InvalidSkillParams took keywords
        return InvalidSkillParams(message)


def prompt_bound(turns: Sequence[Turn], system_prompt: str | None) -> int:
    """An upper bound of the prompt's token count without tokenizing: a token covers at least one byte, and each
    turn adds at most 4 tokens of markup (plus the closing assistant turn and the default system turn)."""
    texts = [f"{t.role}\n{t.content}" for t in turns]
    if system_prompt and not any(t.role == "system" for t in turns):
        texts.append(f"system\n{system_prompt}")
    return sum(len(text.encode()) + 4 for text in texts) + 16


async def _first(*events: asyncio.Event, timeout: float | None = None) -> bool:
    """Wait until one of ``events`` is set or ``timeout`` passes; True when an event was set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


def _final(
    state: TaskState, spec: ModelSpec, reason: str, prompt: int, completion: int, timings: dict[str, float]
) -> Status:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "finish_reason": reason,
        # base units as a decimal string: money never goes through a float
        "cost": str(spec.cost(prompt, completion)),
    }
    return Status(state, metadata={"usage": usage, "timings": timings, "model": spec.id})


class InferenceSkill(BaseSkill):
    """Settings: arguments, else ``A2A_INFERENCE_POOL`` (instances per model, default 1), ``A2A_INFERENCE_QUEUE``
    (waiting tasks per model, default 16), ``A2A_INFERENCE_THREADS`` (ggml threads per instance; default ``auto``:
    each evaluation picks 1..cores/pool from measured speed), ``A2A_INFERENCE_TIMEOUT`` (default ``timeout_s``, none),
    ``A2A_INFERENCE_FLUSH_MS`` (least time between two token events, default 100), ``A2A_INFERENCE_WARMUP``
    (0 skips the warm-up at load), and the registry's ``A2A_INFERENCE_MODELS_FILE`` / ``A2A_INFERENCE_MODEL``."""

    name = "inference"

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        pool_size: int | None = None,
        queue_size: int | None = None,
        threads: int | None = None,
        timeout_s: float | None = None,
        flush_ms: float | None = None,
        warm_up: bool | None = None,
        queue_update_s: float = 2.0,
        progress_s: float = 1.0,
        llm_factory: LLMFactory = ctransformers_factory,
    ) -> None:
        self.registry = registry or Registry.from_env()
        self.pool_size = pool_size or _env_int("A2A_INFERENCE_POOL", 1, 1)
        self.queue_size = queue_size if queue_size is not None else _env_int("A2A_INFERENCE_QUEUE", 16, 0)
        self.max_threads = max(1, (os.cpu_count() or 1) // self.pool_size)
        # None: adaptive over 1..max_threads; a number (argument or variable) is used as given
        if threads is None and os.environ.get("A2A_INFERENCE_THREADS", "").strip().lower() not in ("", "auto"):
            threads = _env_int("A2A_INFERENCE_THREADS", 0, 1)
        self.threads = threads
        self.timeout_s = timeout_s if timeout_s is not None else _env_number("A2A_INFERENCE_TIMEOUT", None, 0.001)
        flush = flush_ms if flush_ms is not None else _env_number("A2A_INFERENCE_FLUSH_MS", DEFAULT_FLUSH_MS, 0)
        self.pacing = Pacing(flush_s=(flush or 0.0) / 1000, progress_s=progress_s)
        self.warm_up = warm_up if warm_up is not None else os.environ.get("A2A_INFERENCE_WARMUP", "1") != "0"
        self.queue_update_s = queue_update_s
        self._factory = llm_factory
        self._models: dict[str, LoadedModel] = {}
        self._generations: set[Generation] = set()

    def card(self) -> SkillCard:
        spec = self.registry.default_spec
        return SkillCard(
            id=self.name,
            name="Local LLM inference",
            description=(
                f"Answers with a local language model (default {spec.id}), streaming the tokens as they are "
                "generated. Input: the message text as the user turn, optionally after a chat "
                "`messages: [{role, content}]` (system prompt included) in a data part or in metadata. "
                f"Parameters, in request or message metadata: {describe(spec.context_length)}. "
                "The final status carries usage (prompt_tokens, completion_tokens, total_tokens, finish_reason "
                "stop|length|timeout|cancelled|budget_exhausted, cost in base units as a decimal string) and "
                "timings (ttft_ms, tokens_per_second, queue_ms, threads, prompt_threads)."
            ),
            tags=["llm", "text-generation", "chat", "streaming"],
            examples=[
                "What is the capital of France? Answer in one sentence.",
                '{"messages": [{"role": "system", "content": "You are terse."}, '
                '{"role": "user", "content": "Name three primes."}], "max_tokens": 32, "temperature": 0}',
            ],
            input_modes=["text/plain", "application/json"],
            output_modes=["text/plain"],
        )

    def models(self) -> list[ModelInfo]:
        """Every registry model: "loaded" once this process has it in memory, else its state on disk."""
        infos = []
        for spec in self.registry:
            loaded = spec.id in self._models and self._models[spec.id].status is None
            infos.append(
                ModelInfo(
                    id=spec.id,
                    state="loaded" if loaded else str(spec.state()),
                    context_length=spec.context_length,
                    price_prompt_token=spec.price_prompt_token,
                    price_completion_token=spec.price_completion_token,
                )
            )
        return infos

    def _spec(self, metadata: Mapping[str, Any]) -> ModelSpec:
        model_id = metadata.get("model")
        if model_id is not None and not isinstance(model_id, str):
            raise InvalidSkillParams(f"invalid parameter 'model': must be a string, got {model_id!r}", param="model")
        spec = self.registry.get(model_id)
        if spec is None:
            known = ", ".join(self.registry.ids())
            raise InvalidSkillParams(f"invalid parameter 'model': must be one of {known}", param="model")
        return spec

    def validate(self, message: Message, metadata: Mapping[str, Any]) -> None:
        turns = chat_from(message, metadata)
        spec = self._spec(metadata)
        parse_params(metadata, context_length=spec.context_length, default_timeout=self.timeout_s)
        self._check_context(spec, turns)

    def _check_context(self, spec: ModelSpec, turns: Sequence[Turn]) -> None:
        """Refuse a prompt the context cannot hold. Only a prompt whose UTF-8 size could exceed the context is
        tokenized (on the event loop: ~12 us per token measured, ~0.1 s for an 8,000-token prompt)."""
        model = self._models.get(spec.id)
        llm = model.tokenizer if model is not None else None
        if llm is None or model is None:  # not loaded yet: the run checks once it is
            return
        context = model.budget.context_length
        if prompt_bound(turns, spec.system_prompt) < context:
            return
        count = len(self._prompt(llm, spec, turns))
        if count >= context:
            text = self._overflow(count, context)
            logger.info("refused a prompt: %s", text)
            raise invalid(text, reason=CONTEXT_LENGTH_EXCEEDED, param="messages")

    @staticmethod
    def _overflow(prompt: int, context: int) -> str:
        return (
            f"the prompt is {prompt} tokens; the model's context is {context} tokens "
            "(the answer needs room too): shorten the input"
        )

    @staticmethod
    def _prompt(
        llm: LLM, spec: ModelSpec, turns: Sequence[Turn], cache: dict[str, list[int]] | None = None
    ) -> list[int]:
        memo = {} if cache is None else cache

        def tokenize(text: str) -> list[int]:
            if text not in memo:
                memo[text] = list(llm.tokenize(text, add_bos_token=False))
            return memo[text]

        return prompt_ids(turns, tokenize, chat_format=spec.chat_format, system_prompt=spec.system_prompt)

    def _model(self, spec: ModelSpec) -> LoadedModel:
        model = self._models.get(spec.id)
        if model is None:
            fixed = spec.threads or self.threads
            model = LoadedModel(
                spec,
                pool_size=self.pool_size,
                max_waiting=self.queue_size,
                thread_counts=[fixed] if fixed else range(1, self.max_threads + 1),
                factory=self._factory,
                warm=self.warm_up,
            )
            self._models[spec.id] = model
        model.ensure_loading()
        return model

    async def start(self) -> None:
        """Start converting/loading the default model in the background; ``ready()`` says how far it got."""
        self._model(self.registry.default_spec)

    async def wait_ready(self) -> None:
        """Wait for the default model; raises its ``ModelLoadError``."""
        await self._model(self.registry.default_spec).wait()

    def queue_depth(self) -> int:
        """Tasks waiting for a model instance (the core adds them to ``a2a_queue_depth``)."""
        return sum(m.pool.waiting for m in self._models.values() if m.status is None)

    def ready(self) -> str | None:
        model = self._models.get(self.registry.default)
        return "the inference skill has not been started" if model is None else model.status

    async def close(self) -> None:
        for generation in list(self._generations):
            generation.cancel()
        # Each worker stops within one token; wait for them so no thread touches a model being freed.
        await asyncio.gather(*(asyncio.to_thread(g.join, 10) for g in list(self._generations)))
        await asyncio.gather(*(m.close() for m in self._models.values()))
        self._models.clear()

    async def run(self, ctx: SkillContext) -> AsyncIterator[SkillEvent]:
        own = chat_from(ctx.message, ctx.metadata)
        turns = with_history(own, ctx.history)
        spec = self._spec(ctx.metadata)
        params = parse_params(ctx.metadata, context_length=spec.context_length, default_timeout=self.timeout_s)
        budget = getattr(ctx, "token_budget", None)
        if budget is not None and budget < params.max_tokens:
            params = dataclasses.replace(params, max_tokens=max(budget, 1))
        began = time.monotonic()
        deadline = None if params.timeout_s is None else began + params.timeout_s
        model = self._model(spec)
        zero = {"ttft_ms": 0.0, "tokens_per_second": 0.0, "queue_ms": 0.0}

        def left() -> float | None:
            return None if deadline is None else max(deadline - time.monotonic(), 0.0)

        if not model.loaded.is_set():
            yield Status(TaskState.WORKING, text=f"loading model {spec.id}")
            await _first(model.loaded, ctx.cancelled, timeout=left())
            if ctx.cancelled.is_set():
                yield _final(TaskState.CANCELED, spec, "cancelled", 0, 0, zero)
                return
            if not model.loaded.is_set():
                yield Token("", last=True)
                yield _final(TaskState.COMPLETED, spec, "timeout", 0, 0, zero)
                return
        pool = await model.wait()
        try:
            ticket = pool.enqueue()
        except QueueFull as exc:  # "error" is the word the OpenAI face answers with (503 + Retry-After)
            yield Status(TaskState.REJECTED, text=str(exc), metadata={"error": "queue_full"})
            return
        queued = time.monotonic()
        try:
            shown = 0
            while not ticket.granted:
                if ticket.position != shown:
                    shown = ticket.position
                    yield Status(TaskState.WORKING, text=f"queued: position {shown}")
                    continue
                if ctx.cancelled.is_set() or left() == 0.0:
                    zero["queue_ms"] = (time.monotonic() - queued) * 1000
                    if ctx.cancelled.is_set():
                        yield _final(TaskState.CANCELED, spec, "cancelled", 0, 0, zero)
                    else:
                        yield Token("", last=True)
                        yield _final(TaskState.COMPLETED, spec, "timeout", 0, 0, zero)
                    return
                ticket.changed.clear()
                wait = self.queue_update_s if deadline is None else min(self.queue_update_s, left() or 0.0)
                woken = await _first(ticket.changed, ctx.cancelled, timeout=wait)
                if not woken and not ticket.granted and left() != 0.0:
                    # still waiting: say so, so that a long prompt ahead does not look like a hang
                    waited = time.monotonic() - queued
                    yield Status(TaskState.WORKING, text=f"queued: position {shown} (waiting {waited:.0f} s)")
            instance, ticket.item = ticket.item, None  # from here on the worker thread owns it
        finally:
            pool.leave(ticket)
        assert instance is not None
        queue_ms = (time.monotonic() - queued) * 1000
        context = model.budget.context_length
        history = len(turns) - len(own)

        def build(llm: LLM) -> list[int]:
            """The prompt; earlier turns of the conversation that would not fit are dropped, oldest first."""
            cache: dict[str, list[int]] = {}
            for drop in range(history + 1):
                ids = self._prompt(llm, spec, turns[drop:], cache)
                if len(ids) < context:
                    return ids
            raise ContextOverflow(self._overflow(len(ids), context))

        generation = Generation(
            instance.llm, build, params, model.budget, instance.tuning, pacing=self.pacing, deadline=deadline
        )
        self._generations.add(generation)

        def on_exit() -> None:
            self._generations.discard(generation)
            pool.release(instance)

        generation.start(on_exit)
        watcher = asyncio.ensure_future(ctx.cancelled.wait())
        watcher.add_done_callback(lambda _: generation.cancel())
        delivered = 0
        held = 0  # tokens delivered whose text is held back (part of a character): counted on the next chunk
        rest = ""  # the text of the batch that ended the generation: sent with the closing chunk
        try:
            yield Status(TaskState.WORKING, metadata={"model": spec.id})
            finished: Finished | None = None
            while finished is None:
                texts: list[str] = []
                tokens = 0
                progress: Progress | None = None
                for event in await generation.next_events():
                    if isinstance(event, Piece):
                        texts.append(event.text)
                        tokens += event.tokens
                    elif isinstance(event, Progress):
                        progress = event
                    elif isinstance(event, Finished):
                        finished = event
                    elif isinstance(event, Failed) and isinstance(event.error, ContextOverflow):
                        # the model was not loaded when the request was validated: a user error all the same
                        logger.info("refused a prompt: %s", event.error)
                        yield Status(TaskState.FAILED, text=str(event.error))
                        return
                    else:
                        raise event.error
                if ctx.cancelled.is_set():  # after a cancel nothing more is sent (nor counted as delivered)
                    continue
                delivered += tokens
                held += tokens
                if progress is not None:
                    percent = 100 * progress.evaluated // progress.total
                    yield Status(
                        TaskState.WORKING,
                        text=f"evaluating prompt: {percent} %",
                        metadata={"prompt_progress": {"evaluated": progress.evaluated, "total": progress.total}},
                    )
                if finished is not None and self.pacing.flush_s:
                    # batching is on: the last batch's text travels with the closing chunk, one event (one wake-up
                    # of the whole store/SSE chain, ~0.8 ms of server CPU) less per answer
                    rest = "".join(texts)
                elif text := "".join(texts):  # "" while bytes are held back: the tokens show up in a later chunk
                    yield Token(text, tokens=held)
                    held = 0
            timings = {
                "ttft_ms": round(finished.ttft_ms, 1),
                "tokens_per_second": round(finished.tokens_per_second, 1),
                "queue_ms": round(queue_ms, 1),
                "threads": finished.threads,
                "prompt_threads": finished.prompt_threads,
            }
            if ctx.cancelled.is_set() or finished.reason == "cancelled":
                yield _final(TaskState.CANCELED, spec, "cancelled", finished.prompt_tokens, delivered, timings)
                return
            yield Token(rest + finished.tail, last=True, tokens=held)
            reason = finished.reason
            if reason == "length" and budget is not None and delivered >= budget:
                reason = "budget_exhausted"  # the billing channel's balance capped max_tokens
            yield _final(TaskState.COMPLETED, spec, reason, finished.prompt_tokens, delivered, timings)
        finally:
            watcher.cancel()
            generation.cancel()  # a no-op after a normal end; stops the worker if the engine closed us early
