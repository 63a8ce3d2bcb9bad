"""``a2a-server``: parses flags into Settings and calls; nothing else lives here.

Subcommands: ``serve``, ``card``, the A2A client ``send`` and ``task get|cancel|watch`` (in
``a2a_server.client.commands``), plus any command a plugin registers in the entry-point group
``a2a_server.commands`` (the inference skill adds ``models``).
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import queue
import socket
import sys
from importlib.metadata import entry_points
from pathlib import Path

from a2a_server.client import commands as client
from a2a_server.config import Settings

COMMAND_GROUP = "a2a_server.commands"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="a2a-server", description="An A2A agent task server.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("serve", "run the server"), ("card", "print the agent card")):
        p = sub.add_parser(name, help=help_text, description=f"{help_text}; every flag is also an A2A_* variable")
        p.add_argument("--skills", help="comma-separated skills to enable; the first is the default (A2A_SKILLS)")
        p.add_argument("--public-url", help="URL the card advertises (A2A_PUBLIC_URL); default: the request's host")
        p.add_argument("--card-file", type=Path, help="JSON file with the card's static fields (A2A_CARD_FILE)")
        if name == "serve":
            p.add_argument("--host", help="bind address (A2A_HOST, default 127.0.0.1)")
            p.add_argument("--port", type=int, help="port (A2A_PORT, default 8000)")
            p.add_argument("--keepalive-seconds", type=float, help="SSE keepalive comment interval (default 15)")
            p.add_argument("--max-body-bytes", type=int, help="largest accepted request body (default 1 MiB)")
            p.add_argument("--blocking-timeout", type=float, help="longest wait of a blocking send (default 60 s)")
            p.add_argument("--log-level", help="debug, info, warning (default info)")
            p.add_argument(
                "--store", help="sqlite (default: a file in the user's data dir), sqlite:///path/to.db or memory"
            )
            p.add_argument("--role", choices=("all", "api", "worker"), help="all (default), api or worker (A2A_ROLE)")
            p.add_argument("--cors-origins", help="comma-separated CORS allow-list (A2A_CORS_ORIGINS); default off")
        else:
            p.add_argument("--version", dest="card_version", help="1.0 or 0.3 (default: the compat card)")
    _client_parsers(sub)
    for ep in entry_points(group=COMMAND_GROUP):
        if ep.name in sub.choices:
            continue
        sub.add_parser(ep.name, help=f"(plugin) {ep.value}", add_help=False)
    return parser


def _client_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(p: argparse.ArgumentParser, url_help: str) -> None:
        p.add_argument("url", help=url_help)
        p.add_argument("--dialect", choices=("0.1", "0.3", "1.0"), default="1.0", help="wire generation (default 1.0)")
        p.add_argument("--timeout", type=float, default=client.DEFAULT_TIMEOUT, help="read timeout, seconds")
        p.add_argument("--plain", action="store_true", help="plain text even on a terminal (no live view)")

    def meta(text: str) -> tuple[str, object]:
        try:
            return client.meta_item(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    formatter = argparse.RawDescriptionHelpFormatter
    base_help = "server base URL (the card at URL/.well-known/agent-card.json names the endpoint; else URL/a2a)"
    send = sub.add_parser(
        "send", help="send a message to any A2A agent", epilog=client.EXIT_CODES_HELP, formatter_class=formatter
    )
    common(send, base_help)
    send.add_argument("text", help="the message text")
    send.add_argument("--skill", help="skill to run (sent as metadata.skill)")
    send.add_argument("--stream", action="store_true", help="stream the answer as it is generated")
    send.add_argument(
        "--meta",
        type=meta,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata entry, repeatable; the value is JSON when it parses (delay_ms=100), else text",
    )
    send.add_argument("--message-id", help="messageId of the message (0.3, 1.0; default: random)")
    send.add_argument("--retries", type=int, default=client.DEFAULT_RETRIES, help="resume attempts of a dropped stream")
    task = sub.add_parser(
        "task",
        help="get, cancel or watch a task of any A2A agent",
        epilog=client.EXIT_CODES_HELP,
        formatter_class=formatter,
    )
    actions = task.add_subparsers(dest="action", required=True)
    for action, help_text in (
        ("get", "print the task"),
        ("cancel", "cancel the task"),
        ("watch", "follow the task's events; resumes a dropped stream with Last-Event-ID"),
    ):
        p = actions.add_parser(action, help=help_text, epilog=client.EXIT_CODES_HELP, formatter_class=formatter)
        common(p, base_help)
        p.add_argument("id", help="task id")
        if action == "watch":
            p.add_argument("--retries", type=int, default=client.DEFAULT_RETRIES, help="resume attempts")
        else:
            p.add_argument("--json", dest="as_json", action="store_true", help="print the result as the server sent it")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    plugins = {ep.name: ep for ep in entry_points(group=COMMAND_GROUP) if ep.name not in ("send", "task", "events")}
    if argv and argv[0] in plugins:
        result: int = plugins[argv[0]].load()(argv[1:])
        return result
    args = _parser().parse_args(argv)
    if args.command in ("send", "task"):
        return _client(args)
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "card_version")}
    for listed in ("skills", "cors_origins"):
        if overrides.get(listed):
            overrides[listed] = [s.strip() for s in overrides[listed].split(",") if s.strip()]
    try:
        settings = Settings.from_env(**overrides)
    except ValueError as exc:
        print(f"a2a-server: {exc}", file=sys.stderr)
        return 2
    if args.command == "card":
        return _card(settings, args.card_version)
    return _serve(settings)


def _client(args: argparse.Namespace) -> int:
    shared = {"dialect": args.dialect, "timeout": args.timeout, "plain": args.plain}
    if args.command == "send":
        return client.send(
            args.url,
            args.text,
            skill=args.skill,
            stream=args.stream,
            meta=args.meta,
            message_id=args.message_id,
            retries=args.retries,
            **shared,
        )
    if args.action == "watch":
        return client.watch(args.url, args.id, retries=args.retries, **shared)
    run = client.get if args.action == "get" else client.cancel
    return run(args.url, args.id, as_json=args.as_json, **shared)


def _card(settings: Settings, version: str | None) -> int:
    from a2a_server import card
    from a2a_server.skill import SkillRegistry, load_skill

    registry = SkillRegistry(load_skill(name) for name in settings.skills)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    print(json.dumps(card.build(card.load_static(settings.card_file), registry, base, version), indent=2))
    return 0


def _serve(settings: Settings) -> int:
    import uvicorn

    from a2a_server.app import StartupError, create_app, drain, preflight
    from a2a_server.skill import UnknownSkill

    try:
        preflight(settings)
    except StartupError as exc:
        print(f"a2a-server: {exc}", file=sys.stderr)
        return 1
    listener = _log_in_background(settings.log_level)
    try:
        app = create_app(settings)
    except (UnknownSkill, ValueError, TypeError) as exc:
        print(f"a2a-server: {exc}", file=sys.stderr)
        return 2

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Drain the tasks while their streams are still open, so every subscriber receives its
            # final event; uvicorn's own shutdown would close the connections first.
            await drain(app, settings.shutdown_grace)
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,  # after the drain: time for the last frames to leave
        access_log=False,
    )
    try:
        Server(config).run()
    finally:
        listener.stop()
    return 0


def _log_in_background(level: str) -> logging.handlers.QueueListener:
    """Log records are formatted and written by a thread: a task's log lines never wait on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # the logging HOWTO's "Optimization": no caller, thread or process lookups for each record
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    enqueue = logging.handlers.QueueHandler(records)
    enqueue.setFormatter(logging.Formatter("%(message)s"))  # the writer thread adds time, level and name
    logging.basicConfig(level=level.upper(), handlers=[enqueue], force=True)
    listener = logging.handlers.QueueListener(records, handler)
    listener.start()
    return listener
