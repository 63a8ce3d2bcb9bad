"""``a2a-server``: parses flags into Settings and calls; nothing else lives here.

Subcommands: ``serve``, ``card``, and every command registered in the entry-point group
``a2a_server.commands``: the A2A client's ``send``, ``task`` and ``events`` (package ``a2a_client``,
which shares no code with the server) and the inference skill's ``models``. A plugin is imported
only to run it, or to describe it in ``a2a-server --help``; ``serve`` imports none of them.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import queue
import re
import socket
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from a2a_server.config import Settings

COMMAND_GROUP = "a2a_server.commands"


def _parser(describe_plugins: bool = False) -> argparse.ArgumentParser:
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
            p.add_argument("--cors-origins", help="comma-separated CORS allow-list (A2A_CORS_ORIGINS); default off")
        else:
            p.add_argument("--version", dest="card_version", help="1.0 or 0.3 (default: the compat card)")
    for ep in sorted(_plugins().values(), key=lambda ep: ep.name):
        # describing a plugin imports it: only for the top-level help, never for serve
        sub.add_parser(ep.name, help=_describe(ep) if describe_plugins else ep.value, add_help=False)
    return parser


def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=COMMAND_GROUP)}


def _describe(ep: EntryPoint) -> str:
    """A plugin's one-line help: its function's docstring, else its module's, without a leading ``name``:."""
    try:
        command = ep.load()
    except Exception as exc:  # a broken plugin must not break --help
        return f"(plugin {ep.value}, cannot be loaded: {exc})"
    module = sys.modules.get(getattr(command, "__module__", ""))
    doc = (getattr(command, "__doc__", None) or getattr(module, "__doc__", None) or "").strip()
    first = re.sub(r"^``[^`]*``:\s*", "", doc.splitlines()[0]) if doc else ""
    return first.rstrip(".") or f"(plugin) {ep.value}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    plugins = _plugins()
    if argv and argv[0] in plugins:
        result: int = plugins[argv[0]].load()(argv[1:])
        return result
    # no subcommand named: this is `a2a-server --help` (or a usage error), the one place plugins are described
    args = _parser(describe_plugins=all(a.startswith("-") for a in argv)).parse_args(argv)
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


def _card(settings: Settings, version: str | None) -> int:
    from a2a_server import card
    from a2a_server.skill import SkillRegistry, load_skill

    registry = SkillRegistry(load_skill(name) for name in settings.skills)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    print(json.dumps(card.build(card.load_static(settings.card_file), registry, base, version), indent=2))
    return 0


def _serve(settings: Settings) -> int:
    import uvicorn

    from a2a_server.app import create_app, drain
    from a2a_server.skill import UnknownSkill

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
