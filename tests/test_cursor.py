from __future__ import annotations

import pytest

from a2a_server import cursor


def test_sse_ids_name_the_task_and_the_log_id() -> None:
    assert cursor.sse_id("t1", 7) == "t1:7"
    assert cursor.parse("t1:7", "t1", last=9) == 7


def test_a_bare_number_is_accepted_for_curl() -> None:
    assert cursor.parse(" 3 ", "t1", last=9) == 3
    assert cursor.parse("0", "t1", last=0) == 0


def test_task_ids_may_contain_colons() -> None:
    assert cursor.parse("urn:task:1:4", "urn:task:1", last=4) == 4


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("t2:3", "an event of task 't2', not of task 't1'"),
        ("t1:10", "beyond the last event (9)"),
        ("t1:-1", "beyond the last event"),
        ("abc", "must be '<task id>:<n>' or a number"),
        ("t1:x", "must be '<task id>:<n>' or a number"),
    ],
)
def test_bad_cursors_say_what_is_wrong(raw: str, needle: str) -> None:
    with pytest.raises(cursor.BadCursor, match=needle.replace("(", r"\(").replace(")", r"\)")):
        cursor.parse(raw, "t1", last=9)
