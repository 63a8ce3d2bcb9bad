"""What the user sees: a task folded from its updates, shown live (rich, on a terminal) or as plain text.

Plain output is for pipes and tests: each new piece of text is written and flushed the moment it
arrives, then ``state:`` and ``usage:`` lines follow. The task id comes first (``task: <id>``) so a
script can cancel or watch the task while it runs.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Protocol, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from a2a_client.wire import JSON, Update

_STYLE = {"completed": "green", "failed": "red", "rejected": "red", "canceled": "yellow"}


class Transcript:
    """Everything known about one task so far."""

    def __init__(self, task_id: str | None = None) -> None:
        self.task_id = task_id
        self.state: str | None = None
        self.message: str | None = None
        self.usage: JSON | None = None
        self.reply = False
        self.artifacts: dict[str, str] = {}

    def apply(self, update: Update) -> None:
        self.task_id = update.task_id or self.task_id
        self.state = update.state or self.state
        self.message = update.message if update.message is not None else self.message
        self.usage = update.usage or self.usage
        self.reply = self.reply or update.reply
        for chunk in update.chunks:
            before = self.artifacts.get(chunk.key, "") if chunk.append else ""
            self.artifacts[chunk.key] = before + chunk.text

    @property
    def text(self) -> str:
        return "\n".join(self.artifacts.values())


class View(Protocol):
    def show(self, transcript: Transcript) -> None: ...

    def finish(self, transcript: Transcript) -> None: ...

    def close(self) -> None:
        """Leave the terminal usable; safe to call after ``finish`` or after an error."""


def open_view(plain: bool = False) -> View:
    if plain or not sys.stdout.isatty():
        return PlainView(sys.stdout)
    return LiveView(Console())


def usage_line(usage: JSON) -> str:
    return " ".join(f"{k}={v if isinstance(v, (int, float, str)) else json.dumps(v)}" for k, v in usage.items())


class PlainView:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._announced = False
        self._printed: dict[str, str] = {}
        self._at_line_start = True

    def show(self, transcript: Transcript) -> None:
        if transcript.task_id and not self._announced:
            self._announced = True
            self._write(f"task: {transcript.task_id}\n")
        for key, text in transcript.artifacts.items():
            printed = self._printed.get(key)
            if printed is not None and text.startswith(printed):
                self._write(text[len(printed) :])
            else:  # a new artifact, or one replaced by a snapshot: start it on its own line
                self._write(("" if self._at_line_start else "\n") + text)
            self._printed[key] = text
        self._out.flush()

    def finish(self, transcript: Transcript) -> None:
        self.show(transcript)
        if not self._at_line_start:
            self._write("\n")
        if transcript.reply:
            self._write(f"{transcript.message or ''}\n")
        elif transcript.message:
            self._write(f"message: {transcript.message}\n")
        if transcript.state:
            self._write(f"state: {transcript.state}\n")
        if transcript.usage:
            self._write(f"usage: {usage_line(transcript.usage)}\n")
        self._out.flush()

    def close(self) -> None:
        if not self._at_line_start:
            self._write("\n")
        self._out.flush()

    def _write(self, text: str) -> None:
        if text:
            self._out.write(text)
            self._at_line_start = text.endswith("\n")


@dataclass(frozen=True)
class _Frame:
    """What the live view draws; immutable, because rich redraws it from its own refresh thread."""

    task_id: str | None
    state: str
    body: str
    message: str | None
    usage: JSON | None
    done: bool


class LiveView:
    """A redrawn block: the text so far, then task id, state and a clock that ticks while waiting."""

    def __init__(self, console: Console) -> None:
        self._started = time.monotonic()
        self._frame = _Frame(None, "waiting", "", None, None, False)
        self._live = Live(console=console, get_renderable=self._render, refresh_per_second=8, transient=False)
        self._live.start()

    def show(self, transcript: Transcript, done: bool = False) -> None:
        t = transcript
        state = t.state or ("reply" if t.reply else "waiting")
        body = (t.message or "") if t.reply else t.text
        message = None if t.reply else t.message
        self._frame = _Frame(t.task_id, state, body, message, t.usage, done)
        self._live.refresh()

    def finish(self, transcript: Transcript) -> None:
        self.show(transcript, done=True)
        self._live.stop()

    def close(self) -> None:
        self._live.stop()

    def _render(self) -> Group:
        f = self._frame
        status = Text.assemble(
            (f"task {f.task_id or '?'}  ", "dim"),
            (f.state, _STYLE.get(f.state, "cyan")),
            (f"  {time.monotonic() - self._started:.1f}s", "dim"),
        )
        lines = [Text(f.body)]
        if f.message:
            lines.append(Text(f"message: {f.message}", style="italic"))
        lines.append(status)
        if f.done and f.usage:
            lines.append(Text(f"usage: {usage_line(f.usage)}", style="dim"))
        return Group(*lines)
