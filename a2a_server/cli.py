"""``a2a-server``: parses flags into Settings and calls; nothing else lives here.

Subcommands: ``serve``, ``card``, and every command registered in the entry-point group
``a2a_server.commands``: the A2A client's ``send``, ``task`` and ``events`` (package ``a2a_client``,
which shares no code with the server) and the inference skill's ``models``. A plugin is imported
only to run it, or to describe it in ``a2a-server --help``; ``serve`` imports none of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import logging.handlers
import queue
import re
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from a2a_server import collector
from a2a_server.config import HEAD_LIMIT, Settings

if TYPE_CHECKING:
    import uvicorn

COMMAND_GROUP = "a2a_server.commands"
ROLES = ("all", "api", "worker")
log = logging.getLogger("a2a_server")


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
            p.add_argument(
                "--role",
                choices=ROLES,
                help="all: answer requests and run tasks (the default); api: answer requests only; "
                "worker: run tasks only (A2A_ROLE)",
            )
            p.add_argument(
                "--card-default",
                choices=("0.3", "1.0"),
                help="the card a request without A2A-Version gets at agent-card.json (A2A_CARD_DEFAULT, default 0.3)",
            )
            p.add_argument("--keepalive-seconds", type=float, help="SSE keepalive comment interval (default 15)")
            p.add_argument("--max-body-bytes", type=int, help="largest accepted request body (default 1 MiB)")
            p.add_argument("--blocking-timeout", type=float, help="longest wait of a blocking send (default 60 s)")
            p.add_argument("--log-level", help="debug, info, warning (default info)")
            p.add_argument(
                "--store",
                help="sqlite (default: a file in the user's data dir), sqlite:///path/to.db, memory, or "
                "redis://host:port/db (shared by API replicas and workers: see --role)",
            )
            p.add_argument("--cors-origins", help="comma-separated CORS allow-list (A2A_CORS_ORIGINS); default off")
            # callers (README "Security"); every limit is also an A2A_* variable (config.py)
            p.add_argument("--api-keys-file", type=Path, help="API keys made by 'a2a-server keys add' "
                           "(A2A_API_KEYS_FILE); without it auth is off")  # fmt: skip
            p.add_argument("--rate-limit", type=float, help="requests per second per key (default 50; 0 = off)")
            p.add_argument("--max-running-tasks", type=int, help="tasks one key may run at once (default 32)")
            p.add_argument("--max-streams", type=int, help="SSE streams one key may hold open (default 64)")
            p.add_argument(
                "--push-allow",
                help="comma-separated hosts, IPs or CIDRs webhooks may call although they are loopback or private, "
                "over http too (A2A_PUSH_ALLOW); default: https to public addresses only",
            )
            p.add_argument(
                "--push-ca-file", type=Path, help="PEM file of extra CAs webhook certificates may chain to "
                "(A2A_PUSH_CA_FILE)"
            )
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
    for listed in ("skills", "cors_origins", "push_allow"):
        if overrides.get(listed):
            overrides[listed] = [s.strip() for s in overrides[listed].split(",") if s.strip()]
    try:
        settings = Settings.from_env(**overrides)
    except ValueError as exc:
        print(f"a2a-server: {exc}", file=sys.stderr)
        return 2
    if args.command == "card":
        return _card(settings, args.card_version)
    try:
        return _serve(settings)
    except KeyboardInterrupt:  # Ctrl-C before uvicorn took over the signal (during start-up): not an error
        return 0


def _card(settings: Settings, version: str | None) -> int:
    from a2a_server import card
    from a2a_server.backends.redis_conn import is_redis_url
    from a2a_server.skill import SkillRegistry, load_skill

    registry = SkillRegistry(load_skill(name) for name in settings.skills)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    static = card.load_static(settings.card_file)
    # as the server on this store would say it (a Redis store keeps no push configs yet)
    print(json.dumps(card.build(static, registry, base, version, push=not is_redis_url(settings.store)), indent=2))
    return 0


def _serve(settings: Settings) -> int:
    import uvicorn

    from a2a_server.app import StartupError, create_app, drain, preflight
    from a2a_server.skill import UnknownSkill

    # before anything binds or starts: what would fail later (a --role the store cannot serve, the store in
    # use by another server) is said in one message
    try:
        preflight(settings)
        # before anything else that may print: a taken port is then the first and last thing the user reads
        sockets = _listen(settings.host, settings.port, settings.send_buffer_bytes)
    except StartupError as exc:
        print(f"a2a-server: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"a2a-server: cannot listen on {settings.host}:{settings.port}: {_bind_error(exc)}", file=sys.stderr)
        return 1
    listener = _log_in_background(settings.log_level)
    try:
        try:
            app = create_app(settings)
        except StartupError as exc:
            print(f"a2a-server: {exc}", file=sys.stderr)
            return 1
        except (UnknownSkill, ValueError, TypeError) as exc:
            print(f"a2a-server: {exc}", file=sys.stderr)
            return 2
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            timeout_graceful_shutdown=5,  # after the drain: time for the last frames to leave
            # slow clients: idle keep-alive connections close; a request's head is at most 64 KiB; past
            # max_connections uvicorn answers 503 at once instead of queueing without bound
            timeout_keep_alive=settings.keep_alive_seconds,
            http=_http_protocol(),
            h11_max_incomplete_event_size=HEAD_LIMIT,
            limit_concurrency=settings.max_connections or None,
            access_log=False,
        )
        serving = _server(config, lambda grace: drain(app, grace), settings.shutdown_grace, settings.gc_threshold)
        serving.run(sockets=sockets)
    finally:
        listener.stop()
        for sock in sockets:
            sock.close()
    return 0


def _http_protocol() -> type[asyncio.Protocol] | str:
    """httptools with our head bound when it is installed (a dependency; not on every platform), else h11. The
    loop is uvicorn's ``auto``: uvloop when installed."""
    try:
        from a2a_server.http_parser import BoundedHttpTools
    except ImportError:
        return "h11"
    return BoundedHttpTools


def _server(
    config: uvicorn.Config, drain: Callable[[float], Awaitable[None]], grace: float, gc_threshold: int
) -> uvicorn.Server:
    """uvicorn, with the engine drained on the way down and a second Ctrl-C that ends the tasks at once.

    First SIGINT or SIGTERM: stop accepting, give running tasks ``grace`` seconds (``shutdown_grace``; their
    streams stay open, so every subscriber gets the final event), then uvicorn's own shutdown. Second
    SIGINT during that wait: end the running tasks now, as an expired grace would (failed, "interrupted
    by server shutdown"), and finish the shutdown, which has nothing left to wait for.
    """
    import uvicorn

    class Server(uvicorn.Server):
        stop_signal: int | None = None
        _wake: Callable[[], None] | None = None

        async def main_loop(self) -> None:
            # uvicorn's loop ticks ten times a second to notice a stop signal; on an idle server each tick is a
            # wake-up of the loop (with a model computing beside it, ~0.1-0.3 ms of CPU each: ~3 % of a
            # streaming server's loop, issue 14). This one wakes on the signal itself, and once a second for
            # what the tick does besides (the Date header, callback_notify, limit_max_requests).
            loop, stop = asyncio.get_running_loop(), asyncio.Event()

            def wake() -> None:  # safe from a signal handler
                loop.call_soon_threadsafe(stop.set)

            self._wake = wake
            counter = 0
            while not await self.on_tick(counter):
                counter = (counter + 10) % 864000  # a multiple of 10: on_tick's once-a-second work runs each time
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await stop.wait()

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            self._stop_soon()
            self.stop_signal = self.stop_signal or sig
            if sig != signal.SIGINT:
                super().handle_exit(sig, frame)  # SIGTERM: uvicorn raises it again at the end, as before
                return
            # Not uvicorn's handler for SIGINT: it also raises the signal again once serve() is over, and
            # that KeyboardInterrupt would end `make serve` with a traceback and an error status.
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True

        def _stop_soon(self) -> None:
            if self._wake is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed already
                    self._wake()

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            collector.settle(gc_threshold)  # the app, its store and skills are loaded: freeze what they made
            if self.started:  # uvicorn says where it listens only for the sockets it bound itself
                for sock in sockets or []:
                    host, port = sock.getsockname()[:2]
                    log.info("listening on http://%s:%d (Ctrl-C to stop)", f"[{host}]" if ":" in host else host, port)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if not self.force_exit:
                again = "; press Ctrl-C again to stop now" if self.stop_signal == signal.SIGINT else ""
                _say(f"stopping: waiting up to {grace:g} s for running tasks to finish{again}")
                await self._drain()
            await super().shutdown(sockets)

        async def _drain(self) -> None:
            draining = asyncio.ensure_future(drain(grace))
            while not draining.done() and not self.force_exit:
                await asyncio.wait({draining}, timeout=0.1)
            if draining.done():
                draining.result()
                return
            _say("stopping now: ending the running tasks")
            draining.cancel()
            await asyncio.wait({draining})
            await drain(0)
            # DO NOT keep force_exit: with it uvicorn skips the lifespan shutdown (skills and store
            # left open) and leaves the open connections to be cancelled, each logging a traceback.
            # With the tasks ended, their streams have closed and the rest of the shutdown is quick.
            self.force_exit = False

    return Server(config)


def _listen(host: str, port: int, send_buffer: int = 0) -> list[socket.socket]:
    """Bind the listening sockets the way asyncio would for uvicorn, before anything else starts.

    Every address the host resolves to; SO_REUSEADDR, so a restart need not wait out TIME_WAIT;
    IPv6 sockets IPv6-only, so ``::`` and ``0.0.0.0`` can be served side by side; an address family
    the machine lacks (EADDRNOTAVAIL) is skipped, as asyncio does. ``send_buffer``: SO_SNDBUF, which
    accepted sockets inherit (0: leave the kernel's autotuning).
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if send_buffer > 0:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRNOTAVAIL:
                    continue
                raise
            sockets.append(sock)
            sock.listen(2048)  # uvicorn's default backlog
        if not sockets:
            raise OSError(errno.EADDRNOTAVAIL, f"no usable address for {host}")
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind_error(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the address is already in use (another server is running there?); choose another with --port"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges); choose another with --port"
    return exc.strerror or str(exc)


def _say(line: str) -> None:
    print(f"a2a-server: {line}", file=sys.stderr, flush=True)


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
