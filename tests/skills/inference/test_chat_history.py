"""A follow-up in the same context sees the conversation so far as chat turns."""

from __future__ import annotations

from a2a_server.model import Message, Part, Role
from skills.inference.chat import Turn, chat_from, prompt_ids, with_history


def _msg(role: Role, text: str) -> Message:
    return Message(role=role, parts=[Part.of_text(text)])


def test_earlier_messages_of_the_context_come_first_as_turns() -> None:
    history = [_msg(Role.USER, "my name is Ada"), _msg(Role.AGENT, "Hello Ada."), _msg(Role.USER, "  ")]
    turns = with_history(chat_from(_msg(Role.USER, "what is my name?"), {}), history)
    assert turns == [Turn("user", "my name is Ada"), Turn("assistant", "Hello Ada."), Turn("user", "what is my name?")]


def test_an_explicit_chat_is_not_mixed_with_the_history() -> None:
    chat = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}
    turns = with_history(chat_from(_msg(Role.USER, ""), chat), [_msg(Role.USER, "old")])
    assert turns == [Turn("system", "be brief"), Turn("user", "hi")]


def test_only_the_last_turns_are_kept() -> None:
    history = [_msg(Role.USER, f"q{i}") for i in range(50)]
    turns = with_history([Turn("user", "now")], history, limit=3)
    assert turns == [Turn("user", "q47"), Turn("user", "q48"), Turn("user", "q49"), Turn("user", "now")]


def test_the_prompt_holds_every_turn_in_order() -> None:
    def tokenize(text: str) -> list[int]:
        return [ord(c) for c in text]

    ids = prompt_ids(
        [Turn("user", "a"), Turn("assistant", "b"), Turn("user", "c")],
        tokenize,
        chat_format="chatml",
        system_prompt=None,
    )
    text = "".join(chr(i) if i > 2 else "|" for i in ids)
    assert text == "|user\na|\n|assistant\nb|\n|user\nc|\n|assistant\n"
