"""The chat to answer and its ChatML prompt as token ids (no stray BOS, special tokens as ids)."""

from __future__ import annotations

from a2a_server.model import Message, Part, Role
from skills.inference.chat import IM_END, IM_START, Turn, chat_from, prompt_ids, stop_ids


def fake_tokenize(text: str) -> list[int]:
    return [ord(c) + 1000 for c in text]  # one id per character, none below 1000


def decode(ids: list[int]) -> str:
    names = {IM_START: "<|im_start|>", IM_END: "<|im_end|>"}
    return "".join(names.get(i) or chr(i - 1000) for i in ids)


def test_chatml_prompt_is_built_from_ids_and_ends_at_the_assistant_turn() -> None:
    turns = [Turn("system", "Be brief."), Turn("user", "Hi")]
    ids = prompt_ids(turns, fake_tokenize, chat_format="chatml", system_prompt="ignored: the chat has one")
    assert (
        decode(ids)
        == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert ids[0] == IM_START and ids.count(IM_START) == 3  # no BOS of the library's own


def test_the_models_default_system_prompt_is_added_when_the_chat_has_none() -> None:
    ids = prompt_ids([Turn("user", "Hi")], fake_tokenize, chat_format="chatml", system_prompt="You are SmolLM")
    assert decode(ids).startswith("<|im_start|>system\nYou are SmolLM<|im_end|>\n<|im_start|>user\nHi")


def test_chat_from_data_part_metadata_and_text() -> None:
    message = Message(
        role=Role.USER,
        parts=[
            Part(kind="data", data={"messages": [{"role": "assistant", "content": "Hello!"}]}),
            Part.of_text("And France?"),
        ],
    )
    metadata = {"messages": [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hi"}]}
    assert chat_from(message, metadata) == [
        Turn("system", "Answer in French."),
        Turn("user", "Hi"),
        Turn("assistant", "Hello!"),
        Turn("user", "And France?"),
    ]


def test_plain_format_and_stop_ids() -> None:
    ids = prompt_ids([Turn("user", "Hi")], fake_tokenize, chat_format="plain", system_prompt=None)
    assert decode(ids) == "user: Hi\nassistant:"
    assert stop_ids("chatml", 0) == {IM_END, 0}
    assert stop_ids("plain", 50256) == {50256}
