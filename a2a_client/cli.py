"""The client's subcommands of ``a2a-server``: ``send``, ``task`` and ``events``.

``a2a-server`` finds them through the entry-point group ``a2a_server.commands`` (pyproject.toml) and
hands each its remaining arguments, so the server's CLI never imports the client. Each function's
docstring is its one-line description in ``a2a-server --help``. This module only parses; the work is
in ``commands``.
"""

from __future__ import annotations

import argparse
from typing import Any

from a2a_client import commands

_URL_HELP = (
    "the server: its base URL (http://localhost:8000, or localhost:8000) or the endpoint its card names "
    "(http://localhost:8000/a2a)"
)
_FORMATTER = argparse.RawDescriptionHelpFormatter


def send(argv: list[str]) -> int:
    """send a message to any A2A agent and show the answer"""
    parser = argparse.ArgumentParser(
        prog="a2a-server send",
        description="Send a message to any A2A agent; the card at URL/.well-known/agent-card.json names the endpoint.",
        epilog=commands.EXIT_CODES_HELP,
        formatter_class=_FORMATTER,
    )
    _common(parser)
    parser.add_argument("text", help="the message text")
    parser.add_argument("--skill", help="skill to run (sent as metadata.skill)")
    parser.add_argument("--stream", action="store_true", help="stream the answer as it is generated")
    parser.add_argument(
        "--meta",
        type=_meta,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata entry, repeatable; the value is JSON when it parses (delay_ms=100), else text",
    )
    parser.add_argument("--message-id", help="messageId of the message (0.3, 1.0; default: random)")
    parser.add_argument("--retries", type=int, default=commands.DEFAULT_RETRIES, help="resume attempts of a stream")
    args = parser.parse_args(argv)
    return commands.send(
        args.url,
        args.text,
        skill=args.skill,
        stream=args.stream,
        meta=args.meta,
        message_id=args.message_id,
        retries=args.retries,
        **_shared(args),
    )


def task(argv: list[str]) -> int:
    """get, cancel or watch a task of any A2A agent"""
    parser = argparse.ArgumentParser(
        prog="a2a-server task",
        description="Get, cancel or watch a task of any A2A agent.",
        epilog=commands.EXIT_CODES_HELP,
        formatter_class=_FORMATTER,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    for action, help_text in (
        ("get", "print the task"),
        ("cancel", "cancel the task"),
        ("watch", "follow the task's events; resumes a dropped stream with Last-Event-ID"),
    ):
        p = actions.add_parser(action, help=help_text, epilog=commands.EXIT_CODES_HELP, formatter_class=_FORMATTER)
        _common(p)
        p.add_argument("id", help="task id")
        if action == "watch":
            p.add_argument("--retries", type=int, default=commands.DEFAULT_RETRIES, help="resume attempts")
        else:
            p.add_argument("--json", dest="as_json", action="store_true", help="print the result as the server sent it")
    args = parser.parse_args(argv)
    if args.action == "watch":
        return commands.watch(args.url, args.id, retries=args.retries, **_shared(args))
    run = commands.get if args.action == "get" else commands.cancel
    return run(args.url, args.id, as_json=args.as_json, **_shared(args))


def events(argv: list[str]) -> int:
    """follow the events of every task live (the server's firehose), one line each"""
    parser = argparse.ArgumentParser(
        prog="a2a-server events",
        description=(
            "Follow the server's firehose (GET URL/a2a/events) until Ctrl-C: one line per event, the task id "
            "first. A dropped connection is resumed with Last-Event-ID, so nothing is lost or repeated."
        ),
        epilog=commands.EVENTS_EXIT_CODES_HELP,
        formatter_class=_FORMATTER,
    )
    parser.add_argument("url", help=_URL_HELP)
    parser.add_argument("--context", help="only the tasks of this contextId")
    parser.add_argument("--skill", help="only the tasks of this skill")
    parser.add_argument(
        "--state", help="only events of tasks in this state (working, completed, … or TASK_STATE_COMPLETED)"
    )
    parser.add_argument("--json", dest="as_json", action="store_true", help="each event as sent, one JSON per line")
    parser.add_argument("--plain", action="store_true", help="plain text even on a terminal")
    parser.add_argument(
        "--timeout", type=float, default=commands.DEFAULT_TIMEOUT, help="longest silence before reconnecting, seconds"
    )
    parser.add_argument("--retries", type=int, default=commands.DEFAULT_RETRIES, help="reconnect attempts in a row")
    args = parser.parse_args(argv)
    return commands.events(
        args.url,
        context=args.context,
        skill=args.skill,
        state=args.state,
        plain=args.plain,
        as_json=args.as_json,
        timeout=args.timeout,
        retries=args.retries,
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help=_URL_HELP)
    parser.add_argument("--dialect", choices=("0.1", "0.3", "1.0"), default="1.0", help="wire generation (default 1.0)")
    parser.add_argument("--timeout", type=float, default=commands.DEFAULT_TIMEOUT, help="read timeout, seconds")
    parser.add_argument("--plain", action="store_true", help="plain text even on a terminal (no live view)")


def _shared(args: argparse.Namespace) -> dict[str, Any]:
    return {"dialect": args.dialect, "timeout": args.timeout, "plain": args.plain}


def _meta(text: str) -> tuple[str, object]:
    try:
        return commands.meta_item(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
