"""Bug: ctransformers 0.2.27's ``LLM.tokenize`` sizes its output buffer by characters (``len(text) + 1``) and its C
side copies every token into it unchecked. A character the vocabulary lacks becomes several byte tokens, so a
prompt of such characters wrote past the buffer: 2,000 x '龘' (6,000 tokens into 2,001 slots) with SmolLM2 aborted
the process ("free(): corrupted unsorted chunks"); a shorter run returned a truncated token list.

Fix: ``backend.load_llm`` replaces the method with one whose buffer holds a token per byte (plus BOS and the
tokenizer's leading space): a token always covers at least one byte.
"""

from __future__ import annotations

from pathlib import Path

from skills.inference.runtime import ctransformers_factory


def test_text_with_more_tokens_than_characters_tokenizes_whole(tiny_model_path: Path) -> None:
    llm = ctransformers_factory(tiny_model_path, "llama", 512, 1)
    one = llm.tokenize("é", add_bos_token=False)  # the tiny vocab has no 'é': the leading space and two byte tokens
    assert len(one) == 3
    for _ in range(5):  # a corrupted heap shows itself on later allocations, if not at once
        tokens = llm.tokenize("é" * 3000, add_bos_token=False)
        assert len(tokens) == 1 + 2 * 3000  # not cut at 3,001 characters
    assert llm.tokenize("hello", add_bos_token=False) == llm.tokenize("hello", add_bos_token=False)
