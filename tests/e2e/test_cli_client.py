"""The ``a2a-server`` console script as a user runs it: the client (``send``, ``task``) against a real
server, then ``serve`` itself started and stopped (a taken port, Ctrl-C once and twice, ``--role``).

Every command runs in a subprocess with stdout on a pipe (the plain view), as a user's script would.
The client tests run once per wire generation. A small TCP proxy that cuts the first event stream
proves that ``send --stream`` and ``task watch`` resume with ``Last-Event-ID`` and lose or repeat
nothing. Signals are real. Every wait is bounded: a hung process must fail a test, not CI.
``a2a-server events`` has its own tests in tests/a2a_client/test_events.py.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import ROOT, free_port, start_server, stop_server
from tests.e2e.cli_harness import TIMEOUT, DroppingProxy, Running, on_terminal, run_cli

if TYPE_CHECKING:
    from tests.conftest import ServerProcess

pytestmark = [
    # tests/conftest.py start_server() passes ``log_path.open("wb")`` to Popen and never closes it (see
    # test_sdk_client.py); drop this once conftest closes its log file.
    pytest.mark.filterwarnings(r"ignore:unclosed file <_io.BufferedWriter name='.*/server-\d+\.log'>:ResourceWarning"),
]

DIALECTS = ["0.1", "0.3", "1.0"]
WORDS = " ".join(f"w{i}" for i in range(1, 13))  # w1 … w12


@pytest.fixture(autouse=True)
def _no_stray_processes() -> Iterator[None]:
    """A failed test leaves its background CLI running: stop it, and read its pipes to the end."""
    yield
    while Running.alive:
        Running.alive[-1].proc.kill()
        Running.alive[-1].finish()


def stream_echo(server: ServerProcess, dialect: str, text: str = WORDS, delay_ms: int = 400) -> Running:
    """A running ``send --stream`` of the echo skill; 12 words at 400 ms leave a second CLI time to start."""
    args = ("send", server.url, text, "--skill", "echo", "--stream", "--dialect", dialect)
    return Running(*args, "--meta", f"delay_ms={delay_ms}")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("stream", [False, True], ids=["send", "stream"])
def test_send_prints_task_text_and_state_and_exits_0(server: ServerProcess, dialect: str, stream: bool) -> None:
    flags = ["--stream"] if stream else []
    r = run_cli("send", server.url, "hello  wide world", "--skill", "echo", "--dialect", dialect, *flags)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("task: ")
    assert lines[1:] == ["hello  wide world", "state: completed"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_streamed_tokens_arrive_as_they_are_generated(server: ServerProcess, dialect: str) -> None:
    sender = stream_echo(server, dialect, "one two three four five six", delay_ms=300)
    first = sender.wait_for("one ")
    third = sender.wait_for("three ")
    done = sender.wait_for("state: completed")
    code, out, err = sender.finish()
    assert code == 0, err
    # five more words are 300 ms apart on the server: the first must be on our stdout long before the end
    assert done - first > 1.0, sender.pieces
    assert third - first > 0.4, sender.pieces
    assert "one two three four five six\n" in out


@pytest.mark.parametrize("dialect", DIALECTS)
def test_task_get_prints_the_finished_task(server: ServerProcess, dialect: str) -> None:
    sent = run_cli("send", server.url, "keep this", "--skill", "echo", "--dialect", dialect)
    task_id = sent.stdout.splitlines()[0].removeprefix("task: ")
    r = run_cli("task", "get", server.url, task_id, "--dialect", dialect)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"task: {task_id}", "keep this", "state: completed"]
    raw = run_cli("task", "get", server.url, task_id, "--dialect", dialect, "--json")
    assert raw.returncode == 0, raw.stderr
    assert task_id in json.dumps(json.loads(raw.stdout))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_cancel_ends_a_running_stream_with_the_canceled_exit_code(server: ServerProcess, dialect: str) -> None:
    sender = stream_echo(server, dialect)
    task_id = sender.task_id()
    sender.wait_for("w1 ")  # the task is running on the server
    r = run_cli("task", "cancel", server.url, task_id, "--dialect", dialect)
    assert r.returncode == 0, r.stderr
    assert "state: canceled" in r.stdout.splitlines()
    code, out, _ = sender.finish()
    assert code == 4, out
    assert out.splitlines()[-1] == "state: canceled"
    assert "w12" not in out
    for action in ("get", "watch"):  # a finished task: watch prints how it ended (1.0 refuses to subscribe)
        again = run_cli("task", action, server.url, task_id, "--dialect", dialect)
        assert (again.returncode, again.stdout.splitlines()[-1]) == (4, "state: canceled"), again


def assert_watched(out: str, task_id: str, *, from_start: bool) -> None:
    first, text, last = out.splitlines()
    assert (first, last) == (f"task: {task_id}", "state: completed")
    if from_start:
        assert text == WORDS
    else:
        assert WORDS.endswith(" " + text), text
        assert "w1 " not in text


# 0.1 streams have no Task snapshot to start from: a 0.1 watch shows what came after it subscribed. In 0.3
# and 1.0 the first event of the subscription (a Task) carries the text so far.
FROM_START = {"0.1": False, "0.3": True, "1.0": True}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_watch_follows_a_running_task_to_its_end(server: ServerProcess, dialect: str) -> None:
    sender = stream_echo(server, dialect)
    task_id = sender.task_id()
    sender.wait_for("w2 ")
    r = run_cli("task", "watch", server.url, task_id, "--dialect", dialect)
    assert r.returncode == 0, r.stderr
    assert_watched(r.stdout, task_id, from_start=FROM_START[dialect])
    assert sender.finish()[0] == 0


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("command", ["watch", "send"])
def test_a_dropped_stream_resumes_with_last_event_id(server: ServerProcess, dialect: str, command: str) -> None:
    proxy = DroppingProxy(server.port)
    try:
        if command == "send":
            r = run_cli(
                "send", proxy.url, WORDS, "--skill", "echo", "--stream", "--dialect", dialect, "--meta", "delay_ms=200"
            )
            task_id, from_start = r.stdout.partition("\n")[0].removeprefix("task: "), True
        else:
            sender = stream_echo(server, dialect)
            task_id = sender.task_id()
            sender.wait_for("w1 ")
            r = run_cli("task", "watch", proxy.url, task_id, "--dialect", dialect)
            assert sender.finish()[0] == 0
            from_start = FROM_START[dialect]
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert any(b"last-event-id:" in req.lower() for req in proxy.requests), proxy.requests
    assert r.returncode == 0, r.stderr
    # nothing lost, nothing repeated across the reconnect
    assert_watched(r.stdout, task_id, from_start=from_start)


# 0.1 messages have no messageId, and the conformance skill reacts to the messageId prefix.
@pytest.mark.parametrize("dialect", ["0.3", "1.0"])
@pytest.mark.parametrize("stream", [False, True], ids=["send", "stream"])
def test_a_rejected_task_exits_5(server: ServerProcess, dialect: str, stream: bool) -> None:
    flags = ["--stream"] if stream else []
    args = ("--skill", "conformance", "--message-id", "tck-reject-task-cli", "--dialect", dialect, *flags)
    r = run_cli("send", server.url, "please", *args)
    assert r.returncode == 5, (r.stdout, r.stderr)
    assert r.stdout.splitlines()[-2:] == ["message: Task rejected", "state: rejected"]


def test_meta_values_are_json_when_they_parse(server: ServerProcess) -> None:
    as_number = run_cli("send", server.url, "x", "--skill", "echo", "--meta", "delay_ms=1")
    assert as_number.returncode == 0, as_number.stderr
    as_text = run_cli("send", server.url, "x", "--skill", "echo", "--meta", "delay_ms=soon")
    assert as_text.returncode == 1
    assert "'soon'" in as_text.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("send", "{unused}", "hi"),
        ("task", "get", "{unused}", "some-task"),
        ("task", "watch", "{unused}", "some-task"),
    ],
    ids=["send", "get", "watch"],
)
def test_an_unreachable_server_is_one_clear_line(args: tuple[str, ...]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    r = run_cli(*(a.replace("{unused}", url) for a in args))
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"a2a-server: error: cannot reach {url}")


def test_a_json_rpc_error_is_one_clear_line(server: ServerProcess) -> None:
    r = run_cli("task", "get", server.url, "no-such-task")
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["a2a-server: error: JSON-RPC error -32001: Task not found: no-such-task"]


@pytest.mark.parametrize(
    "args",
    [
        ("send", "http://x"),
        ("send", "http://x", "hi", "--meta", "novalue"),
        ("send", "http://x", "hi", "--dialect", "2"),
    ],
    ids=["missing-text", "bad-meta", "bad-dialect"],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    assert run_cli(*args).returncode == 2


URL_FORMS = ["{url}", "{url}/", "{url}/a2a", "{url}/a2a/", "127.0.0.1:{port}"]


@pytest.mark.parametrize("form", URL_FORMS)
def test_send_and_task_take_the_base_the_endpoint_or_no_scheme(server: ServerProcess, form: str) -> None:
    url = form.format(url=server.url, port=server.port)
    sent = run_cli("send", url, "any form", "--skill", "echo")
    assert sent.returncode == 0, sent.stderr
    task_id = sent.stdout.splitlines()[0].removeprefix("task: ")
    for action in ("get", "watch"):
        r = run_cli("task", action, url, task_id)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == [f"task: {task_id}", "any form", "state: completed"]


def test_a_url_that_is_no_server_url_is_a_usage_error() -> None:
    r = run_cli("send", "ftp://127.0.0.1:1", "hi")
    assert r.returncode == 2
    assert r.stderr == "a2a-server: error: 'ftp://127.0.0.1:1': only http and https URLs are supported\n"


def test_help_describes_every_command_in_words() -> None:
    r = run_cli("--help")
    assert r.returncode == 0, r.stderr
    listed = {}
    for line in r.stdout.splitlines():
        words = line.split(maxsplit=1)
        if line.startswith("    ") and len(words) == 2:
            listed[words[0]] = words[1]
    assert set(listed) >= {"serve", "card", "send", "task", "events", "models"}, r.stdout
    for name, text in listed.items():
        assert ":" not in text and "(plugin" not in text, (name, text)  # words, not an entry point
    assert listed["events"].startswith("follow the events of every task live")


def test_help_documents_the_exit_codes() -> None:
    for args in (("send", "--help"), ("task", "watch", "--help")):
        out = run_cli(*args).stdout
        for line in ("0  completed", "3  the task failed", "4  the task was canceled", "5  the task was rejected"):
            assert line in out, (args, out)


def test_a_terminal_gets_the_live_view(server: ServerProcess) -> None:
    args = ("send", server.url, "live on a terminal", "--skill", "echo", "--stream", "--meta", "delay_ms=50")
    code, out = on_terminal(*args)
    assert code == 0, out
    assert b"\x1b[" in out  # redrawn with terminal escapes, not plain lines
    assert b"live on a terminal" in out and b"completed" in out


@pytest.fixture(scope="module")
def sdk_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server built with the official a2a-sdk, its JSON-RPC endpoint at /rpc (found through the card)."""
    port = free_port()
    log = tmp_path_factory.mktemp("sdk") / "agent.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.sdk_agent", str(port)], stdout=out, stderr=out, cwd=ROOT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT
        while not _answers(url + "/.well-known/agent-card.json"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=TIMEOUT)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("dialect", ["0.3", "1.0"])
def test_the_client_works_against_the_official_sdk_server(sdk_agent: str, dialect: str) -> None:
    for flags in ([], ["--stream"]):
        r = run_cli("send", sdk_agent, "hello sdk world", "--dialect", dialect, *flags)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[1:] == ["hello sdk world ", "state: completed"]
    # 60 words at 0.2 s each: the cancel (a new CLI process) lands within 12 s even on a loaded machine; with 12
    # words (2.4 s) the SDK's task sometimes completed first in CI and the cancel was refused
    sender = Running("send", sdk_agent, " ".join(f"w{i}" for i in range(1, 61)), "--stream", "--dialect", dialect)
    task_id = sender.task_id()
    sender.wait_for("w1 ")
    assert run_cli("task", "cancel", sdk_agent, task_id, "--dialect", dialect).returncode == 0
    code, out, _ = sender.finish()
    assert (code, out.splitlines()[-1]) == (4, "state: canceled")


# ---- serve: start and stop ------------------------------------------------------------------------------------


def test_a_taken_port_is_the_only_thing_serve_prints() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = run_cli("serve", "--host", "127.0.0.1", "--port", str(port), "--store", "memory", "--skills", "echo")
    assert r.returncode != 0
    assert r.stdout == ""
    [line] = r.stderr.splitlines()
    assert line.startswith(f"a2a-server: cannot listen on 127.0.0.1:{port}: the address is already in use"), line


def _wait_for_log(server: ServerProcess, text: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} not in the server log:\n{server.log()}"
        assert server.process.poll() is None or text in server.log(), server.log()
        time.sleep(0.05)


def test_ctrl_c_says_what_the_shutdown_waits_for_and_exits_0(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--role", "all", skills="echo")
    try:
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=TIMEOUT) == 0, server.log()
    finally:
        stop_server(server)
    log = server.log()
    assert "a2a-server: stopping: waiting up to 10 s for running tasks to finish; press Ctrl-C again to stop now" in log
    assert "Traceback" not in log


def test_a_second_ctrl_c_ends_the_running_tasks_at_once_and_exits_0(tmp_path: Path) -> None:
    # a grace far longer than the wait below: only the second Ctrl-C can make the server exit in time
    server = start_server(tmp_path, skills="echo", env={"A2A_SHUTDOWN_GRACE": "300"})
    try:
        sender = Running("send", server.url, WORDS, "--skill", "echo", "--stream", "--meta", "delay_ms=1000")
        sender.wait_for("w1 ")  # the task is running
        server.process.send_signal(signal.SIGINT)
        _wait_for_log(server, "waiting up to 300 s for running tasks to finish; press Ctrl-C again to stop now")
        assert server.process.poll() is None  # waiting for the task, as it said
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=TIMEOUT) == 0, server.log()
        code, out, _ = sender.finish()
    finally:
        stop_server(server)
    log = server.log()
    assert "a2a-server: stopping now: ending the running tasks" in log
    assert "Traceback" not in log
    # the task's stream stayed open to the end: the client saw how it ended
    assert (code, out.splitlines()[-2:]) == (3, ["message: interrupted by server shutdown", "state: failed"])


def test_role_is_one_of_all_api_worker() -> None:
    assert "--role {all,api,worker}" in run_cli("serve", "--help").stdout
    r = run_cli("serve", "--role", "everything")
    assert r.returncode == 2
    assert "invalid choice: 'everything'" in r.stderr


# a preflight that refuses, whether or not the core has one yet (then StartupError is a plain RuntimeError)
REFUSING_PREFLIGHT = """
import sys
import a2a_server.app as app
from a2a_server.cli import main

error = getattr(app, "StartupError", None)
if error is None:
    error = app.StartupError = type("StartupError", (RuntimeError,), {})

def preflight(settings):
    raise error(f"the store {settings.store} is in use by pid 123; use --store another file or stop that server")

app.preflight = preflight
sys.exit(main(sys.argv[1:]))
"""


def test_a_failed_preflight_is_one_message_and_exit_1() -> None:
    port = str(free_port())
    args = ["serve", "--host", "127.0.0.1", "--port", port, "--store", "memory", "--skills", "echo"]
    r = subprocess.run(
        [sys.executable, "-c", REFUSING_PREFLIGHT, *args], capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT
    )
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "a2a-server: the store memory is in use by pid 123; use --store another file or stop that server"
    ]
