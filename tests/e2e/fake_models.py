"""``words``: a small real skill that serves models, for the end-to-end tests of the OpenAI face.

Load it with ``--skills tests.e2e.fake_models:WordsSkill``. It follows the inference skill's contract
(skills/inference/skill.py) without a model: the answer is the last user turn, streamed word by word.

Models (``metadata.model``, default ``words``):
- ``words``: answers at once.
- ``words-slow``: says "loading model …" and waits ``LOAD_S``, then one word every ``WORD_S``.
- ``words-queue``: one word every ``WORD_S`` (no loading), with one slot and one waiting place; another
  task is rejected at once with "queue full: …", as the inference pool does once its model is loaded.
- ``words-broken``: raises after its first word (the task fails).

Parameters: ``max_tokens`` (integer >= 1: at most that many words, then finish_reason "length") and
``temperature`` (0..2, validated only). The final status carries ``usage`` like the inference skill's, ``cost``
included (``PRICE_PROMPT`` per prompt word, ``PRICE_COMPLETION`` per completion word).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from a2a_server import (
    BaseSkill,
    InvalidSkillParams,
    Message,
    ModelInfo,
    SkillCard,
    SkillContext,
    SkillEvent,
    Status,
    TaskState,
    Token,
)

LOAD_S = 0.6
WORD_S = 0.1
# prices in base units per prompt word and per completion word: usage.cost = 2 * prompt + 5 * completion
PRICE_PROMPT, PRICE_COMPLETION = 2, 5


@dataclass
class _Model:
    id: str
    load_s: float = 0.0
    word_s: float = 0.0
    queue: bool = False
    broken: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


def _chat(message: Message, metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for part in message.parts:
        if part.kind == "data" and isinstance(part.data, Mapping):
            turns += part.data.get("messages") or []
    if message.text:
        turns.append({"role": "user", "content": message.text})
    if not all(isinstance(t, Mapping) and t.get("role") in ("system", "user", "assistant") for t in turns):
        raise InvalidSkillParams(
            "invalid data part 'messages': roles must be system, user or assistant", param="messages"
        )
    if not any(t.get("role") == "user" for t in turns):
        raise InvalidSkillParams(
            "nothing to answer: send text, or 'messages' with at least one user turn", param="messages"
        )
    return turns


class WordsSkill(BaseSkill):
    name = "words"

    def __init__(self) -> None:
        self._models = {
            m.id: m
            for m in (
                _Model("words"),
                _Model("words-slow", LOAD_S, WORD_S),
                _Model("words-queue", word_s=WORD_S, queue=True),
                _Model("words-broken", broken=True),
            )
        }

    def card(self) -> SkillCard:
        return SkillCard(id="words", name="Words", description="Echoes the last user turn word by word (tests).")

    def models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                id=m,
                state="loaded",
                context_length=64,
                owned_by="tests",
                price_prompt_token=PRICE_PROMPT,
                price_completion_token=PRICE_COMPLETION,
            )
            for m in self._models
        ]

    def _params(self, metadata: Mapping[str, Any]) -> tuple[_Model, int | None]:
        model = self._models.get(metadata.get("model") or "words")
        if model is None:
            raise InvalidSkillParams(
                f"invalid parameter 'model': must be one of {', '.join(self._models)}", param="model"
            )
        temp = metadata.get("temperature", 1)
        if isinstance(temp, bool) or not isinstance(temp, int | float) or not 0 <= temp <= 2:
            raise InvalidSkillParams(
                f"invalid parameter 'temperature': must be a number in [0, 2], got {temp!r}", param="temperature"
            )
        limit = metadata.get("max_tokens")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidSkillParams(
                f"invalid parameter 'max_tokens': must be an integer >= 1, got {limit!r}", param="max_tokens"
            )
        return model, limit

    def validate(self, message: Message, metadata: Mapping[str, Any]) -> None:
        _chat(message, metadata)
        self._params(metadata)

    async def run(self, ctx: SkillContext) -> AsyncIterator[SkillEvent]:
        turns = _chat(ctx.message, ctx.metadata)
        model, limit = self._params(ctx.metadata)
        if model.load_s:
            yield Status(TaskState.WORKING, f"loading model {model.id}")
            if await ctx.sleep(model.load_s):
                return
        if model.queue and model.lock.locked():
            if model.waiting:
                yield Status(
                    TaskState.REJECTED,
                    f"queue full: {model.id} has 1 slot and 1 waiting place",
                    {"error": "queue_full"},
                )
                return
            model.waiting += 1
            try:
                yield Status(TaskState.WORKING, "queued: position 1")
                await model.lock.acquire()
            finally:
                model.waiting -= 1
        elif model.queue:
            await model.lock.acquire()
        try:
            yield Status(TaskState.WORKING, metadata={"model": model.id})
            words = str(next(t["content"] for t in reversed(turns) if t["role"] == "user")).split()
            sent, reason = 0, "stop"
            for i, word in enumerate(words):
                if limit is not None and sent == limit:
                    reason = "length"
                    break
                if model.word_s and await ctx.sleep(model.word_s):
                    break
                yield Token(word if i == 0 else " " + word)
                sent += 1
                if model.broken:
                    raise RuntimeError(f"{model.id} broke after {sent} word")
            prompt = sum(len(str(t.get("content", "")).split()) for t in turns)
            usage = {"prompt_tokens": prompt, "completion_tokens": sent, "total_tokens": prompt + sent,
                     "cost": str(prompt * PRICE_PROMPT + sent * PRICE_COMPLETION)}  # fmt: skip
            state = TaskState.CANCELED if ctx.cancelled.is_set() else TaskState.COMPLETED
            reason = "cancelled" if state == TaskState.CANCELED else reason
            yield Status(state, metadata={"usage": {**usage, "finish_reason": reason}, "model": model.id})
        finally:
            if model.queue:
                model.lock.release()
