"""The skill plugin interface: what a skill may assume, what it yields, how it is found.

A skill is an object with a ``name``, a ``card()`` for the agent card and an async generator
``run(ctx)`` of small events. It never sees JSON-RPC, SSE or the store.

Contract of ``Skill.run``:
- The engine calls it once per run of a task (a follow-up message to an input-required task
  starts another run with the longer history) and iterates it to the end.
- It yields ``Working``/``Status`` (a state change, optionally with an agent message and metadata),
  ``Token`` (a chunk of the streamed text artifact), ``ArtifactOut`` (a whole artifact or a chunk)
  and ``Reply`` (a direct message instead of a task; it ends the run).
- Returning normally completes the task. Yielding a terminal or interrupted ``Status`` ends the run
  in that state (the engine closes the generator). Raising fails the task with the error's text.
- Cancel: ``ctx.cancelled`` is set; the skill should stop soon (``await ctx.sleep(s)`` returns
  True at once when canceled) and may yield a last ``Status`` whose metadata (usage so far) is kept
  on the final ``canceled`` status. If it has not stopped within the engine's grace period it is
  cancelled with ``asyncio.CancelledError``.
- Blocking work must not run on the event loop: use a thread that checks a stop flag.
- Follow-ups: a skill with ``accepts_followups = True`` is sent the messages that arrive for its task
  while it runs (``await ctx.next_message(s)``; they are in the task's history too). Other skills' tasks
  refuse such a message with TaskBusy, naming the skill.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from a2a_server.model import Artifact, Message, Part, TaskState

ENTRY_POINT_GROUP = "a2a_server.skills"


@dataclass(frozen=True, slots=True)
class Status:
    state: TaskState
    text: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Token:
    """A chunk of the task's streamed text artifact; ``last`` marks the final chunk when known.

    ``tokens``: how many model tokens the chunk stands for (a billing channel charges them); None counts a
    chunk with text as one token (a word of the echo skill) and an empty one as none."""

    text: str
    last: bool = False
    tokens: int | None = None

    @property
    def count(self) -> int:
        return self.tokens if self.tokens is not None else (1 if self.text else 0)


@dataclass(frozen=True, slots=True)
class ArtifactOut:
    artifact: Artifact
    append: bool = False
    last_chunk: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    parts: list[Part]


SkillEvent = Status | Token | ArtifactOut | Reply


class Cancellation(asyncio.Event):
    """A run's cancel flag (``SkillContext.cancelled``): an ``asyncio.Event`` whose ``set`` also wakes the
    context's sleeps at once, so a sleep needs no task, no timeout scope and no exception."""

    def __init__(self) -> None:
        super().__init__()
        self._sleepers: set[asyncio.Future[None]] = set()

    def set(self) -> None:
        super().set()
        for waiter in self._sleepers:
            _wake(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


@dataclass
class SkillContext:
    task_id: str
    context_id: str
    message: Message
    # the conversation before ``message``, oldest first: the context's earlier tasks (their messages and
    # finished text answers) and this task's earlier turns; never ``message`` itself
    history: list[Message]
    # params metadata overlaid with message metadata (message wins)
    metadata: dict[str, Any]
    cancelled: asyncio.Event = field(default_factory=Cancellation)
    # messages for this task that arrived while it runs (fed by the runner; only to skills with accepts_followups)
    inbox: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    # the most tokens this run may deliver (a billing channel's balance / its rate when the run starts), None:
    # unmetered. A skill that can stops there itself (finish_reason "budget_exhausted"); otherwise the runner
    # stops it at the first chunk the channel cannot pay for.
    token_budget: int | None = None

    @property
    def text(self) -> str:
        return self.message.text

    async def next_message(self, seconds: float) -> Message | None:
        """The next follow-up message, waiting up to ``seconds``; None on timeout or cancel."""
        if not self.inbox.empty():
            return self.inbox.get_nowait()
        getter = asyncio.ensure_future(self.inbox.get())
        canceled = asyncio.ensure_future(self.cancelled.wait())
        try:
            await asyncio.wait({getter, canceled}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            canceled.cancel()
            if not getter.done():
                getter.cancel()
        return getter.result() if getter.done() and not getter.cancelled() else None

    async def sleep(self, seconds: float) -> bool:
        """Sleep, waking early on cancel; True when the task was canceled."""
        flag = self.cancelled
        if flag.is_set():
            return True
        if not isinstance(flag, Cancellation):  # an Event put here by hand: the general way
            try:
                async with asyncio.timeout(seconds):
                    await flag.wait()
            except TimeoutError:
                return False
            return True
        # A paced skill sleeps once per event: one future and one timer, woken by the timer or by the cancel.
        # (asyncio.timeout raised a CancelledError and a TimeoutError each time: 5.2 µs a sleep against 2.1,
        # uvloop, sleep(0); wait_for also made a task.)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, _wake, waiter)
        flag._sleepers.add(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            flag._sleepers.discard(waiter)
        return flag.is_set()


@dataclass(frozen=True, slots=True)
class SkillCard:
    """What the agent card says about a skill."""

    id: str
    name: str
    description: str
    tags: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    input_modes: list[str] = field(default_factory=lambda: ["text/plain"])
    output_modes: list[str] = field(default_factory=lambda: ["text/plain"])


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model a skill can run; faces such as the OpenAI-compatible API list and pick these."""

    id: str
    state: str  # "available", "loaded", "needs conversion" or "missing"
    context_length: int | None = None
    owned_by: str = "a2a-server"
    price_per_token: float | None = None  # superseded by the two integer prices below
    # integer prices in base units per token (None: the skill does not price this model)
    price_prompt_token: int | None = None
    price_completion_token: int | None = None


class InvalidSkillParams(ValueError):
    """Raised by ``Skill.validate``: the request is rejected with -32602 and this message, before it queues.

    ``param``: the metadata key that was wrong; ``reason``: a machine-readable word for faces that have one
    (the OpenAI API answers it as ``error.code``, e.g. ``context_length_exceeded``).
    """

    def __init__(self, message: str, *, param: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.reason = reason


@runtime_checkable
class Skill(Protocol):
    name: str

    def card(self) -> SkillCard: ...

    def validate(self, message: Message, metadata: Mapping[str, Any]) -> None:
        """Reject bad parameters before a task exists (raise InvalidSkillParams)."""
        ...

    async def start(self) -> None:
        """Prepare (load models...). Called once in the app's lifespan."""
        ...

    async def close(self) -> None: ...

    def ready(self) -> str | None:
        """None when ready to serve; otherwise why not (shown by /readyz)."""
        ...

    def run(self, ctx: SkillContext) -> AsyncIterator[SkillEvent]: ...


class BaseSkill:
    """Defaults for the optional parts of the protocol."""

    name = "base"
    # True when running the skill again from the task's last message is safe (after a server restart)
    rerunnable = False
    # True when the skill reads follow-up messages from ctx.inbox while it runs (see the module docstring)
    accepts_followups = False

    def validate(self, message: Message, metadata: Mapping[str, Any]) -> None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def ready(self) -> str | None:
        return None

    def models(self) -> list[ModelInfo]:
        """The models this skill serves (none for most skills); a request picks one with ``metadata.model``."""
        return []


class UnknownSkill(LookupError):
    pass


def load_skill(spec: str) -> Skill:
    """Instantiate a skill from an entry-point name (``echo``) or an import string (``pkg.mod:Class``)."""
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
    else:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
        if not found:
            known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
            raise UnknownSkill(f"unknown skill {spec!r}; installed skills: {', '.join(known)}")
        factory = found[0].load()
    skill = factory()
    if not isinstance(skill, Skill):
        raise TypeError(f"{spec!r} does not implement the Skill protocol")
    return skill


class SkillRegistry:
    """The enabled skills; the first is the default."""

    def __init__(self, skills: Iterable[Skill]) -> None:
        self._skills = {s.name: s for s in skills}
        if not self._skills:
            raise ValueError("at least one skill must be enabled")
        self.default = next(iter(self._skills))

    def __iter__(self) -> Any:
        return iter(self._skills.values())

    def names(self) -> list[str]:
        return list(self._skills)

    def find(self, name: str) -> Skill | None:
        return self._skills.get(name)

    def get(self, name: str | None) -> Skill:
        skill = self._skills.get(name or self.default)
        if skill is None:
            raise UnknownSkill(f"unknown skill {name!r}; enabled skills: {', '.join(self._skills)}")
        return skill
