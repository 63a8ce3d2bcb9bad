"""The client subcommands, ``send``, ``task get|cancel|watch`` and ``events``: each returns the exit code.

``send`` and ``task`` work against any A2A server that speaks JSON-RPC in one of the three
generations; nothing here knows about this server's skills beyond passing ``--skill`` as
``metadata.skill``. ``events`` follows this server's firehose (``GET /a2a/events``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from a2a_client.firehose import Firehose
from a2a_client.session import ClientError, Session
from a2a_client.target import Target
from a2a_client.ticker import open_ticker
from a2a_client.view import Transcript, View, open_view
from a2a_client.wire import DIALECTS, JSON, V01, Update, parse_result

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_CANCELED = 4
EXIT_REJECTED = 5
EXIT_NEEDS_INPUT = 6
EXIT_INTERRUPTED = 130

_BY_STATE = {
    "failed": EXIT_FAILED,
    "canceled": EXIT_CANCELED,
    "rejected": EXIT_REJECTED,
    "input-required": EXIT_NEEDS_INPUT,
    "auth-required": EXIT_NEEDS_INPUT,
}

EXIT_CODES_HELP = f"""\
exit codes (send, task get, task watch):
  {EXIT_OK}  completed, or the agent answered with a message (task get: also a task still running)
  {EXIT_ERROR}  cannot connect, HTTP or JSON-RPC error, or the stream could not be resumed
  {EXIT_USAGE}  usage error
  {EXIT_FAILED}  the task failed
  {EXIT_CANCELED}  the task was canceled
  {EXIT_REJECTED}  the task was rejected
  {EXIT_NEEDS_INPUT}  the task waits for the caller (input-required, auth-required)
task cancel exits {EXIT_OK} once the server accepted the cancel, {EXIT_ERROR} when it refused (not cancelable)."""

EVENTS_EXIT_CODES_HELP = f"""\
exit codes:
  {EXIT_OK}  stopped with Ctrl-C (or the reader of its output went away)
  {EXIT_ERROR}  cannot connect, an HTTP error (a bad --state: the server's message), or the stream could not be resumed
  {EXIT_USAGE}  usage error"""

DEFAULT_TIMEOUT = 120.0
DEFAULT_RETRIES = 5


def meta_item(text: str) -> tuple[str, Any]:
    """``key=value`` of ``--meta``: the value as JSON when it parses (``delay_ms=100`` is an int), else text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def exit_code(state: str | None) -> int:
    return _BY_STATE.get(state or "", EXIT_OK)


def send(
    url: str,
    text: str,
    *,
    dialect: str = "1.0",
    skill: str | None = None,
    stream: bool = False,
    meta: Iterable[tuple[str, Any]] = (),
    message_id: str | None = None,
    plain: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
) -> int:
    wire = DIALECTS[dialect]
    metadata: JSON = dict(meta)
    if skill:
        metadata["skill"] = skill
    if message_id and wire is V01:
        _say("note: 0.1 messages have no messageId; --message-id is not sent")
    params = wire.send_params(text, message_id=message_id, metadata=metadata, stream=stream)
    # 0.1 lets the client choose the task id: known before the first byte comes back
    transcript = Transcript(params.get("id") if wire is V01 else None)

    def run(session: Session, view: View) -> int:
        if stream:
            return _show(session.follow("stream", params, transcript.task_id), transcript, view)
        return _show([session.call("send", params)], transcript, view)

    return _guarded(url, dialect, run, plain=plain, timeout=timeout, retries=retries, transcript=transcript)


def get(
    url: str,
    task_id: str,
    *,
    dialect: str = "1.0",
    as_json: bool = False,
    plain: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    def run(session: Session, view: View) -> int:
        if as_json:
            result = session.raw("get", session.dialect.task_params(task_id))
            print(json.dumps(result, indent=2, ensure_ascii=False))
            return exit_code(parse_result(result).state)
        return _show([session.call("get", session.dialect.task_params(task_id))], Transcript(task_id), view)

    return _guarded(url, dialect, run, plain=plain or as_json, timeout=timeout)


def cancel(
    url: str,
    task_id: str,
    *,
    dialect: str = "1.0",
    as_json: bool = False,
    plain: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    def run(session: Session, view: View) -> int:
        if as_json:
            print(json.dumps(session.raw("cancel", session.dialect.task_params(task_id)), indent=2, ensure_ascii=False))
            return EXIT_OK
        _show([session.call("cancel", session.dialect.task_params(task_id))], Transcript(task_id), view)
        return EXIT_OK

    return _guarded(url, dialect, run, plain=plain or as_json, timeout=timeout)


def watch(
    url: str,
    task_id: str,
    *,
    dialect: str = "1.0",
    plain: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
) -> int:
    transcript = Transcript(task_id)

    def run(session: Session, view: View) -> int:
        updates = session.follow("subscribe", session.dialect.task_params(task_id), task_id)
        return _show(updates, transcript, view)

    return _guarded(url, dialect, run, plain=plain, timeout=timeout, retries=retries, transcript=transcript)


def _show(updates: Iterable[Update], transcript: Transcript, view: View) -> int:
    for update in updates:
        transcript.apply(update)
        view.show(transcript)
    view.finish(transcript)
    return EXIT_OK if transcript.reply else exit_code(transcript.state)


def _guarded(
    url: str,
    dialect: str,
    run: Callable[[Session, View], int],
    *,
    plain: bool,
    timeout: float,
    retries: int = DEFAULT_RETRIES,
    transcript: Transcript | None = None,
) -> int:
    """Run one command; a :class:`ClientError` or Ctrl-C becomes one line on stderr and an exit code."""
    try:
        target = Target.parse(url)
    except ValueError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    view = open_view(plain)
    try:
        with Session(target, DIALECTS[dialect], timeout=timeout, retries=retries) as session:
            return run(session, view)
    except ClientError as exc:
        view.close()
        _say(f"error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        view.close()
        task_id = transcript.task_id if transcript else None
        # a task outlives the connection that started it: say how to get back to it
        flag = "" if dialect == "1.0" else f" --dialect {dialect}"
        hint = f"; the task goes on: a2a-server task watch {url} {task_id}{flag}" if task_id else ""
        _say(f"interrupted{hint}")
        return EXIT_INTERRUPTED
    finally:
        view.close()


def events(
    url: str,
    *,
    context: str | None = None,
    skill: str | None = None,
    state: str | None = None,
    plain: bool = False,
    as_json: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
) -> int:
    """Follow the firehose until Ctrl-C; one line per event (see ``ticker``)."""
    try:
        target = Target.parse(url)
    except ValueError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE

    def on_retry(reason: str, attempt: int, delay: float) -> None:
        _say(f"{reason}; reconnecting in {delay:g} s ({attempt}/{retries})")

    ticker = open_ticker(plain, raw=as_json)
    hose = Firehose(
        target, context=context, skill=skill, state=state, timeout=timeout, retries=retries, on_retry=on_retry
    )
    try:
        with hose:
            for event in hose.events():
                ticker.show(event)
    except ClientError as exc:
        _say(f"error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_OK  # the only way a firehose ends: the user has seen enough
    except BrokenPipeError:
        # ``| head``: the reader is gone. Point stdout at /dev/null so the interpreter's last flush
        # cannot fail again at exit (the recipe of the signal module's documentation).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return EXIT_OK  # events() only returns by raising; kept for the type checker


def _say(line: str) -> None:
    print(f"a2a-server: {line}", file=sys.stderr, flush=True)
