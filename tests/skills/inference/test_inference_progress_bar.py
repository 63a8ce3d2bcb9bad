"""The conversion's progress bar stays whole on a terminal (issue 14): log lines of the libraries doing the work
(``gguf.gguf_writer`` INFO) are printed on their own lines above the bar instead of in the middle of it."""

from __future__ import annotations

import io
import logging

import pytest

from skills.inference.convert import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def screen(raw: str) -> list[str]:
    """What a terminal shows: each line as its last carriage-return segment, with erase-line codes applied."""
    return [line.split("\r")[-1].replace("\x1b[K", "") for line in raw.split("\n")]


def test_library_log_lines_go_above_the_bar_and_the_bar_is_drawn_again(caplog: pytest.LogCaptureFixture) -> None:
    term = Terminal()
    progress = Progress("converting", term)
    writer = logging.getLogger("gguf.gguf_writer")
    caplog.set_level(logging.INFO, logger="gguf")
    with progress.showing_logs_of("gguf"):
        progress.start(100)
        progress.advance(40)
        writer.info("Writing the following files:")
        progress.advance(60)
    progress.finish("done")
    lines = screen(term.getvalue())
    assert lines[0] == "INFO gguf.gguf_writer: Writing the following files:"  # a line of its own, not in the bar
    assert lines[1] == "converting: done" and lines[2] == ""
    assert "[############" in term.getvalue().split("Writing the following files:")[1]  # the bar came back below
    assert not caplog.records  # not also written through the normal handlers, into the bar
    writer.info("after the conversion")
    assert [r.getMessage() for r in caplog.records] == ["after the conversion"]  # routing is undone afterwards


def test_off_a_terminal_logging_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    plain = io.StringIO()
    progress = Progress("converting", plain)
    caplog.set_level(logging.INFO, logger="gguf")
    with progress.showing_logs_of("gguf"):
        progress.start(10)
        logging.getLogger("gguf.gguf_writer").info("Writing the following files:")
        progress.advance(10)
    assert [r.getMessage() for r in caplog.records] == ["Writing the following files:"]
    assert plain.getvalue().splitlines() == ["converting: 0%", "converting: 100%"]
