"""A fast structural check of a GGUF file, before ctransformers sees it.

Why: ctransformers' bundled llama.cpp *aborts the whole process* on a truncated GGUF (measured: "Fatal Python
error: Aborted" loading the first 4,000 bytes of a valid file), and on other problems says only "Failed to create
LLM". The ``gguf`` package's reader would tell us more but takes 4.7 s on the 49k-token SmolLM2 vocabulary; this
walk of the header takes milliseconds: it reads the metadata keys and tensor table and checks that every tensor's
bytes are inside the file.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

# GGUF value types -> byte size of a scalar (8 = string and 9 = array are variable).
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4


class GGUFFormatError(ValueError):
    pass


@dataclass
class GGUFInfo:
    version: int
    strings: dict[str, str] = field(default_factory=dict)  # string-valued metadata
    keys: set[str] = field(default_factory=set)
    tensors: set[str] = field(default_factory=set)
    data_end: int = 0  # where the last tensor's bytes end
    file_size: int = 0


class _Cursor:
    def __init__(self, buf: mmap.mmap) -> None:
        self.buf, self.pos = buf, 0

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise GGUFFormatError(f"the header ends early, at byte {self.pos}")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return int(value)

    def string(self) -> bytes:
        n = self.take("<Q")
        if self.pos + n > len(self.buf):
            raise GGUFFormatError(f"the header ends early, inside a string at byte {self.pos}")
        self.pos += n
        return bytes(self.buf[self.pos - n : self.pos])

    def skip(self, value_type: int) -> None:
        if value_type == _STRING:
            n = self.take("<Q")  # not `self.pos += self.take(...)`: that would add to the old position
            self.pos += n
        elif value_type == _ARRAY:
            item_type, count = self.take("<I"), self.take("<Q")
            if item_type in _SCALAR_SIZES:
                self.pos += _SCALAR_SIZES[item_type] * count
            else:
                for _ in range(count):
                    self.skip(item_type)
        elif value_type in _SCALAR_SIZES:
            self.pos += _SCALAR_SIZES[value_type]
        else:
            raise GGUFFormatError(f"unknown metadata value type {value_type} at byte {self.pos}")


def inspect_gguf(path: Path) -> GGUFInfo:
    """Metadata keys, string values and tensor names of a GGUF v2/v3 file; raises ``GGUFFormatError``."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType  # lazy: the inference extra's dependency

    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf)
        if buf[:4] != b"GGUF":
            raise GGUFFormatError("not a GGUF file")
        cur.pos = 4
        info = GGUFInfo(version=cur.take("<I"), file_size=len(buf))
        if info.version < 2:
            return info  # v1 used 32-bit counts; leave it to the loader
        n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
        alignment = 32
        for _ in range(n_kv):
            key = cur.string().decode("utf-8", "replace")
            value_type = cur.take("<I")
            info.keys.add(key)
            if value_type == _STRING:
                info.strings[key] = cur.string().decode("utf-8", "replace")
            elif key == "general.alignment" and value_type == _UINT32:
                alignment = cur.take("<I")
            else:
                cur.skip(value_type)
        spans = []
        for _ in range(n_tensors):
            name = cur.string().decode("utf-8", "replace")
            dims = [cur.take("<Q") for _ in range(cur.take("<I"))]
            kind, offset = cur.take("<I"), cur.take("<Q")
            try:
                block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
            except ValueError:
                raise GGUFFormatError(f"tensor {name} has unknown type {kind}") from None
            elements = 1
            for d in dims:
                elements *= d
            spans.append(offset + elements // block * type_size)
            info.tensors.add(name)
        if cur.pos > len(buf):
            raise GGUFFormatError(f"the header ends early, at byte {len(buf)}")
        data_start = -(-cur.pos // alignment) * alignment
        info.data_end = data_start + max(spans, default=0)
    return info
