"""The chat to complete, and its prompt as token ids.

Input: the message text is the last user turn; a chat in the seeds' form (``messages: [{role, content}]``, system
prompt included) may come first, in a data part or in metadata. The prompt is built as token ids because
ctransformers' tokenizer does not parse special tokens written in text (``<|im_start|>`` would become seven
ordinary tokens) and adds a BOS of its own to llama text unless told not to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from a2a_server.model import Message
from a2a_server.skill import InvalidSkillParams

ROLES = {"system": "system", "user": "user", "assistant": "assistant", "agent": "assistant"}
CHAT_FORMATS = ("chatml", "plain")
IM_START, IM_END = 1, 2  # ChatML's <|im_start|> / <|im_end|> in SmolLM2's vocab

Tokenize = Callable[[str], list[int]]


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    content: str


def _turns(value: Any, where: str) -> list[Turn]:
    shape = "a list of {role, content} objects with role system, user or assistant and content a string"
    if not isinstance(value, list):
        raise InvalidSkillParams(f"invalid {where}: must be {shape}", param="messages")
    turns = []
    for item in value:
        if not isinstance(item, Mapping) or item.get("role") not in ROLES or not isinstance(item.get("content"), str):
            raise InvalidSkillParams(f"invalid {where}: must be {shape}, got item {item!r}", param="messages")
        turns.append(Turn(ROLES[item["role"]], item["content"]))
    return turns


def chat_from(message: Message, metadata: Mapping[str, Any]) -> list[Turn]:
    """The turns to complete; raises ``InvalidSkillParams`` when there is nothing to answer or the chat is malformed."""
    turns: list[Turn] = []
    for part in message.parts:
        if part.kind == "data" and isinstance(part.data, Mapping) and "messages" in part.data:
            turns += _turns(part.data["messages"], "data part 'messages'")
    if metadata.get("messages") is not None:
        turns = _turns(metadata["messages"], "metadata 'messages'") + turns
    if message.text:
        turns.append(Turn("user", message.text))
    if not any(t.role == "user" for t in turns):
        raise InvalidSkillParams(
            "nothing to answer: send text, or 'messages' with at least one user turn", param="messages"
        )
    return turns


def with_history(turns: list[Turn], history: Sequence[Message], limit: int = 20) -> list[Turn]:
    """The earlier turns of the conversation (the context's messages, oldest first) before ``turns``, unless the
    request brought its own chat; at most the last ``limit`` turns, so a long conversation cannot crowd out the
    question."""
    if len(turns) != 1:  # an explicit 'messages' chat says what the model should see
        return turns
    earlier = [Turn("user" if m.role.value == "user" else "assistant", m.text) for m in history if m.text.strip()]
    return [*earlier[-limit:], *turns]


def prompt_ids(turns: Sequence[Turn], tokenize: Tokenize, *, chat_format: str, system_prompt: str | None) -> list[int]:
    """The prompt as token ids, ending where the assistant's answer starts. ``tokenize`` must not add a BOS."""
    if system_prompt and not any(t.role == "system" for t in turns):
        turns = [Turn("system", system_prompt), *turns]
    ids: list[int] = []
    if chat_format == "chatml":
        newline = tokenize("\n")
        for turn in turns:
            ids += [IM_START, *tokenize(f"{turn.role}\n{turn.content}"), IM_END, *newline]
        return [*ids, IM_START, *tokenize("assistant\n")]
    if chat_format == "plain":
        text = "".join(f"{t.role}: {t.content}\n" for t in turns)
        return tokenize(text + "assistant:")
    raise ValueError(f"unknown chat format {chat_format!r}; known: {', '.join(CHAT_FORMATS)}")


def stop_ids(chat_format: str, eos_token_id: int) -> frozenset[int]:
    """Token ids that end the answer: the end-of-turn marker and the model's end of sequence."""
    return frozenset({IM_END, eos_token_id}) if chat_format == "chatml" else frozenset({eos_token_id})
