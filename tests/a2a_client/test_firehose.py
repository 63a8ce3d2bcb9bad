"""``a2a-server events``: the real console script following a real SSE server that serves the firehose contract.

The server is the stand-in of firehose_server.py (Starlette + sse-starlette under uvicorn on
127.0.0.1); it records each request, so the tests see the filters and the ``Last-Event-ID`` the
client sent. The command never ends by itself: a test waits for the last line and presses Ctrl-C.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.a2a_client.firehose_server import LINES, LOG, FirehoseServer, Seen
from tests.conftest import free_port
from tests.e2e.cli_harness import Running, on_terminal, run_cli


@pytest.fixture(autouse=True)
def _no_stray_processes() -> Iterator[None]:
    """A failed test leaves its CLI running: stop it, and read its pipes to the end."""
    yield
    while Running.alive:
        Running.alive[-1].proc.kill()
        Running.alive[-1].finish()


def follow_until(last_line: str, *args: str) -> tuple[int, str, str]:
    """Run ``a2a-server events ARGS`` until ``last_line`` is on stdout, then Ctrl-C it."""
    events = Running("events", *args)
    events.wait_for(last_line + "\n")
    events.interrupt()
    return events.finish()


def test_every_event_is_one_line_and_ctrl_c_exits_0() -> None:
    with FirehoseServer() as server:
        code, out, err = follow_until(LINES[-1], server.base)
    assert code == 0, err
    assert out.splitlines() == LINES
    assert err == ""  # no traceback, no noise
    assert server.seen == [Seen("/a2a/events", {}, None)]


@pytest.mark.parametrize("hang_up", ["end", "abort"])
def test_a_dropped_stream_resumes_after_the_last_cursor(hang_up: str) -> None:
    with FirehoseServer(hang_ups=1, hang_up_after=3, hang_up=hang_up) as server:  # type: ignore[arg-type]
        code, out, err = follow_until(LINES[-1], server.base)
    assert code == 0, err
    # nothing lost, nothing repeated: the second request asked for what came after the third event
    assert out.splitlines() == LINES
    assert [s.last_event_id for s in server.seen] == [None, str(LOG[2].cursor)]
    assert "reconnecting in" in err and "Traceback" not in err


def test_the_filters_are_sent_as_query_parameters() -> None:
    with FirehoseServer() as server:
        args = ("--context", "c1", "--skill", "echo", "--state", "TASK_STATE_WORKING")
        code, out, err = follow_until('t1  text " is 4\\n"', server.base, *args)
    assert code == 0, err
    assert out.splitlines() == ["t1  working", 't1  text "The answer"', 't1  text " is 4\\n"']
    query = {"contextId": "c1", "skill": "echo", "state": "TASK_STATE_WORKING"}
    assert server.seen == [Seen("/a2a/events", query, None)]


def test_json_prints_each_event_as_the_server_sent_it() -> None:
    with FirehoseServer() as server:
        code, out, err = follow_until(json.dumps(LOG[-1].body), server.base, "--json")
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [e.body for e in LOG]


@pytest.mark.parametrize("form", ["{base}", "{base}/", "{base}/a2a", "{base}/a2a/", "127.0.0.1:{port}"])
def test_the_base_the_endpoint_and_a_url_without_scheme_all_work(form: str) -> None:
    with FirehoseServer() as server:
        code, out, err = follow_until(LINES[-1], form.format(base=server.base, port=server.port))
    assert code == 0, err
    assert out.splitlines() == LINES
    assert [s.path for s in server.seen] == ["/a2a/events"]


def test_an_unknown_state_is_the_servers_message_and_exit_1() -> None:
    with FirehoseServer() as server:
        r = run_cli("events", server.base, "--state", "bogus")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f"a2a-server: error: HTTP 400 from {server.base}/a2a/events: unknown state 'bogus'; one of "
        "TASK_STATE_SUBMITTED, TASK_STATE_WORKING, TASK_STATE_INPUT_REQUIRED, TASK_STATE_AUTH_REQUIRED, "
        "TASK_STATE_COMPLETED, TASK_STATE_CANCELED, TASK_STATE_FAILED, TASK_STATE_REJECTED"
    ]


def test_an_unreachable_server_is_one_clear_line_and_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    r = run_cli("events", url)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"a2a-server: error: cannot reach {url}/a2a/events: ")


def test_a_stream_that_keeps_ending_at_once_gives_up_after_the_retries() -> None:
    with FirehoseServer(hang_ups=100, hang_up_after=0) as server:
        r = run_cli("events", server.base, "--retries", "2")
    assert r.returncode == 1
    assert len(server.seen) == 3  # the first try and two retries
    assert r.stderr.splitlines()[-1] == "a2a-server: error: the server ended the stream; gave up after 2 retries"


def test_a_terminal_gets_coloured_lines() -> None:
    with FirehoseServer() as server:
        code, out = on_terminal("events", server.base, interrupt_after=b"model not installed")
    assert code == 0, out
    assert b"\x1b[" in out  # styled by rich, not plain lines
    assert b"Traceback" not in out
    for text in (b"t1", b"working", b'"The answer"', b"completed"):
        assert text in out
