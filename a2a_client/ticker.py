"""One line per firehose event: coloured on a terminal, plain text on a pipe.

Each line starts with the task id, then what happened::

    4f1c…  submitted
    4f1c…  user "What is the capital of France?"      a message, with its role
    4f1c…  working
    4f1c…  text "The capital"                         an artifact chunk, quoted so spaces and newlines show
    4f1c…  completed  usage: tokens=7                 a state, with its status message and usage if any
    4f1c…  task failed: model not installed           a whole task (a snapshot), with its status message

Every line is written and flushed as its event arrives, so ``| grep`` and ``| tee`` see it at once.
"""

from __future__ import annotations

import json
import sys
from typing import Protocol, TextIO

from rich.console import Console
from rich.text import Text

from a2a_client.firehose import FirehoseEvent
from a2a_client.view import usage_line
from a2a_client.wire import JSON, parse_result, parts_text

_STATE_STYLE = {"completed": "green", "failed": "red", "rejected": "red", "canceled": "yellow"}

# (text, rich style) pieces; plain output joins the texts
Line = list[tuple[str, str]]


def describe(body: JSON) -> Line:
    """The line for one StreamResponse; an unknown shape is shown as its JSON rather than dropped."""
    try:
        update = parse_result(body)
    except ValueError:
        return [("?", "dim"), ("  " + json.dumps(body, ensure_ascii=False), "")]
    kind, inner = next(iter(body.items())) if len(body) == 1 else ("", body)
    inner = inner if isinstance(inner, dict) else {}
    line: Line = [(update.task_id or "?", "dim"), ("  ", "")]
    if kind == "artifactUpdate":
        text = "".join(chunk.text for chunk in update.chunks)
        line.append(("text ", "dim"))
        line.append((json.dumps(text, ensure_ascii=False), ""))
    elif kind == "message":
        role = str(inner.get("role", "message")).lower().removeprefix("role_")
        line.append((f"{role} ", "dim"))
        line.append((json.dumps(parts_text(inner.get("parts")), ensure_ascii=False), ""))
    elif kind in ("statusUpdate", "task"):
        state = update.state or "?"
        if kind == "task":
            line.append(("task ", "dim"))
        line.append((state, _STATE_STYLE.get(state, "cyan")))
        if update.message:
            line.append((": " + update.message.replace("\n", " "), "italic"))
        if update.usage:
            line.append(("  usage: " + usage_line(update.usage), "dim"))
    else:
        line.append((json.dumps(body, ensure_ascii=False), ""))
    return line


class Ticker(Protocol):
    def show(self, event: FirehoseEvent) -> None: ...


def open_ticker(plain: bool = False, raw: bool = False) -> Ticker:
    """``raw``: each event's data as the server sent it, one JSON object per line."""
    if raw:
        return RawTicker(sys.stdout)
    if plain or not sys.stdout.isatty():
        return PlainTicker(sys.stdout)
    return RichTicker(Console(highlight=False, soft_wrap=True))


class PlainTicker:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def show(self, event: FirehoseEvent) -> None:
        self._out.write("".join(text for text, _ in describe(event.body)) + "\n")
        self._out.flush()


class RawTicker:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def show(self, event: FirehoseEvent) -> None:
        # one line per event even if the server spread the JSON over several data lines
        self._out.write(event.data.replace("\n", " ") + "\n")
        self._out.flush()


class RichTicker:
    def __init__(self, console: Console) -> None:
        self._console = console

    def show(self, event: FirehoseEvent) -> None:
        self._console.print(Text.assemble(*describe(event.body)))
