"""Token bytes in, safe text chunks out: never half a UTF-8 character, never part of a stop sequence.

A token is a byte string; a character such as "é" or "日" may be split across two or three tokens. The incremental
UTF-8 decoder holds an incomplete trailing sequence until its last byte arrives (and replaces bytes that can never
form a character with U+FFFD, exactly as decoding the whole output at once would).

A stop sequence may also arrive in pieces ("<|" then "user"): text that could be the start of one is held back
until it either completes the stop sequence (generation ends, the stop text is never sent) or cannot.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class TextStream:
    def __init__(self, stop: Sequence[str] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stop = [s for s in stop if s]
        self._held = ""  # decoded text not yet released: it may be the beginning of a stop sequence
        self.stopped = False

    def feed(self, data: bytes) -> str:
        """Add one token's bytes; return the text that is now safe to send ("" if none). Sets ``stopped``."""
        if self.stopped:
            return ""
        text = self._held + self._decoder.decode(data)
        if not self._stop:
            self._held = ""
            return text
        cut = min((i for i in (text.find(s) for s in self._stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return text[:cut]
        keep = self._longest_stop_prefix_suffix(text)
        self._held = text[len(text) - keep :]
        return text[: len(text) - keep]

    def flush(self) -> str:
        """The end of the output: whatever is still held (an incomplete character becomes U+FFFD)."""
        if self.stopped:
            return ""
        text = self._held + self._decoder.decode(b"", final=True)
        self._held = ""
        return text

    def _longest_stop_prefix_suffix(self, text: str) -> int:
        """Length of the longest end of ``text`` that is a proper prefix of some stop sequence."""
        best = 0
        for s in self._stop:
            for n in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:n]):
                    best = n
                    break
        return best
