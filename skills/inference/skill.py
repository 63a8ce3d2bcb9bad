"""The ``inference`` skill: a local model answers the message, streaming every token as it is generated.

Contract of ``InferenceSkill.run`` (on top of ``a2a_server.skill``'s):
- while loading: ``Status(WORKING, "loading model <id>")``; while waiting for an instance:
  ``Status(WORKING, "queued: position N")`` each time N changes; a full queue: ``Status(REJECTED, "queue full: ...")``.
- then ``Status(WORKING, metadata={"model": id})`` when generation starts, one ``Token`` per generated token the
  moment it exists (a token that is only part of a UTF-8 character, or could be the start of a stop sequence, is
  held back and sent with a later one), a ``Token(last=True)`` with whatever was still held back (often ""), and
  ``Status(COMPLETED, metadata={"usage", "timings", "model"})``.
- cancel (``ctx.cancelled``): the worker stops within one token; no further tokens are yielded and the last event is
  ``Status(CANCELED, metadata=...)`` with ``finish_reason: "cancelled"`` and the usage of the tokens delivered.
  A generator closed by the engine stops the worker as well; the model instance returns to the pool when the
  worker thread ends, never earlier.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Mapping
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
from skills.inference.chat import chat_from, prompt_ids, with_history
from skills.inference.generate import Failed, Finished, Generation
from skills.inference.models import ModelSpec, Registry
from skills.inference.params import describe, parse_params
from skills.inference.pool import QueueFull
from skills.inference.runtime import LLMFactory, LoadedModel, ctransformers_factory


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {raw!r}")
    return int(raw)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _final(
    state: TaskState, spec: ModelSpec, reason: str, prompt: int, completion: int, timings: dict[str, float]
) -> Status:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "finish_reason": reason,
    }
    return Status(state, metadata={"usage": usage, "timings": timings, "model": spec.id})


class InferenceSkill(BaseSkill):
    """Settings: arguments, else ``A2A_INFERENCE_POOL`` (instances per model, default 1), ``A2A_INFERENCE_QUEUE``
    (waiting tasks per model, default 16), ``A2A_INFERENCE_THREADS`` (per instance, default cores / pool size),
    and the registry's ``A2A_INFERENCE_MODELS_FILE`` / ``A2A_INFERENCE_MODEL``."""

    name = "inference"

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        pool_size: int | None = None,
        queue_size: int | None = None,
        threads: int | None = None,
        llm_factory: LLMFactory = ctransformers_factory,
    ) -> None:
        self.registry = registry or Registry.from_env()
        self.pool_size = pool_size or _env_int("A2A_INFERENCE_POOL", 1, 1)
        self.queue_size = queue_size if queue_size is not None else _env_int("A2A_INFERENCE_QUEUE", 16, 0)
        default_threads = max(1, (os.cpu_count() or 1) // self.pool_size)
        self.threads = threads or _env_int("A2A_INFERENCE_THREADS", default_threads, 1)
        self._factory = llm_factory
        self._models: dict[str, LoadedModel] = {}
        self._generations: set[Generation] = set()

    def card(self) -> SkillCard:
        spec = self.registry.default_spec
        return SkillCard(
            id=self.name,
            name="Local LLM inference",
            description=(
                f"Answers with a local language model (default {spec.id}), streaming each token as it is "
                "generated. Input: the message text as the user turn, optionally after a chat "
                "`messages: [{role, content}]` (system prompt included) in a data part or in metadata. "
                f"Parameters, in request or message metadata: {describe(spec.context_length)}. "
                "The final status carries usage (prompt_tokens, completion_tokens, total_tokens, finish_reason "
                "stop|length|cancelled) and timings (ttft_ms, tokens_per_second)."
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
                    price_per_token=spec.price_per_token,
                )
            )
        return infos

    def _spec(self, metadata: Mapping[str, Any]) -> ModelSpec:
        model_id = metadata.get("model")
        if model_id is not None and not isinstance(model_id, str):
            raise InvalidSkillParams(f"invalid parameter 'model': must be a string, got {model_id!r}")
        spec = self.registry.get(model_id)
        if spec is None:
            raise InvalidSkillParams(f"invalid parameter 'model': must be one of {', '.join(self.registry.ids())}")
        return spec

    def validate(self, message: Message, metadata: Mapping[str, Any]) -> None:
        chat_from(message, metadata)
        parse_params(metadata, context_length=self._spec(metadata).context_length)

    def _model(self, spec: ModelSpec) -> LoadedModel:
        model = self._models.get(spec.id)
        if model is None:
            model = LoadedModel(
                spec,
                pool_size=self.pool_size,
                max_waiting=self.queue_size,
                threads=spec.threads or self.threads,
                factory=self._factory,
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
        turns = with_history(chat_from(ctx.message, ctx.metadata), ctx.history)
        spec = self._spec(ctx.metadata)
        params = parse_params(ctx.metadata, context_length=spec.context_length)
        model = self._model(spec)
        zero = {"ttft_ms": 0.0, "tokens_per_second": 0.0, "queue_ms": 0.0}
        if not model.loaded.is_set():
            yield Status(TaskState.WORKING, text=f"loading model {spec.id}")
            await _first(model.loaded, ctx.cancelled)
            if ctx.cancelled.is_set():
                yield _final(TaskState.CANCELED, spec, "cancelled", 0, 0, zero)
                return
        pool = await model.wait()
        try:
            ticket = pool.enqueue()
        except QueueFull as exc:
            yield Status(TaskState.REJECTED, text=str(exc))
            return
        queued = time.perf_counter()
        try:
            shown = 0
            while not ticket.granted:
                if ticket.position != shown:
                    shown = ticket.position
                    yield Status(TaskState.WORKING, text=f"queued: position {shown}")
                    continue
                if ctx.cancelled.is_set():
                    zero["queue_ms"] = (time.perf_counter() - queued) * 1000
                    yield _final(TaskState.CANCELED, spec, "cancelled", 0, 0, zero)
                    return
                ticket.changed.clear()
                await _first(ticket.changed, ctx.cancelled)
            instance, ticket.item = ticket.item, None  # from here on the worker thread owns it
        finally:
            pool.leave(ticket)
        assert instance is not None
        queue_ms = (time.perf_counter() - queued) * 1000

        def build(llm: LLM) -> list[int]:
            def tokenize(text: str) -> list[int]:
                return list(llm.tokenize(text, add_bos_token=False))

            return prompt_ids(turns, tokenize, chat_format=spec.chat_format, system_prompt=spec.system_prompt)

        generation = Generation(instance.llm, build, params, model.budget)
        self._generations.add(generation)

        def on_exit() -> None:
            self._generations.discard(generation)
            pool.release(instance)

        generation.start(on_exit)
        watcher = asyncio.ensure_future(ctx.cancelled.wait())
        watcher.add_done_callback(lambda _: generation.cancel())
        delivered = 0
        try:
            yield Status(TaskState.WORKING, metadata={"model": spec.id})
            while True:
                event = await generation.next_event()
                if isinstance(event, Failed):
                    raise event.error
                cancelled = ctx.cancelled.is_set()
                if isinstance(event, Finished):
                    break
                if cancelled:  # after a cancel nothing more is sent (nor counted as delivered)
                    continue
                delivered += 1
                if event.text:  # "" while bytes are held back: the token shows up in a later chunk
                    yield Token(event.text)
            timings = {
                "ttft_ms": round(event.ttft_ms, 1),
                "tokens_per_second": round(event.tokens_per_second, 1),
                "queue_ms": round(queue_ms, 1),
            }
            if cancelled or event.reason == "cancelled":
                yield _final(TaskState.CANCELED, spec, "cancelled", event.prompt_tokens, delivered, timings)
                return
            yield Token(event.tail, last=True)
            yield _final(TaskState.COMPLETED, spec, event.reason, event.prompt_tokens, delivered, timings)
        finally:
            watcher.cancel()
            generation.cancel()  # a no-op after a normal end; stops the worker if the engine closed us early
