"""Settings are data: built from flags and ``A2A_*`` environment variables by the CLI, or directly in tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_SKILLS = ["echo", "conformance", "inference"]
CARD_DEFAULTS = ("0.3", "1.0")


# the largest request head (request line + headers) the server reads: h11's option, httptools' http_parser.py
HEAD_LIMIT = 64 * 1024

@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    skills: list[str] = field(default_factory=lambda: list(DEFAULT_SKILLS))
    public_url: str | None = None
    card_file: Path | None = None
    keepalive_seconds: float = 15.0
    max_body_bytes: int = 1024 * 1024
    # how long a blocking send waits for the task to settle before returning it as it is
    blocking_timeout: float = 60.0
    # events a stream's live buffer may hold before the stream drops it and reads on from the log instead
    subscriber_buffer: int = 8192
    # and the (estimated) bytes of those events: a client that asks for a stream and never reads holds at most
    # about this much in the server's buffers (ARCHITECTURE.md "Stalled subscriber"); going past costs the
    # reader a read of the log, not its stream, so the bound is small
    subscriber_buffer_bytes: int = 64 * 1024
    cancel_grace: float = 2.0
    shutdown_grace: float = 10.0
    # end a send to a client that stopped reading after this long (sse-starlette send_timeout)
    send_timeout: float = 30.0
    # SO_SNDBUF of every accepted connection (set on the listening sockets; Linux doubles it); 0 = the kernel's
    # autotuning (up to tcp_wmem max, 4 MiB here). A client that stops reading costs what its socket takes before
    # the stream blocks: rendering that is CPU taken from the tasks, and kernel memory (bench/slow_readers.py,
    # ARCHITECTURE.md). 64 KiB bounds a connection to ~128 KiB per round trip: far above any token stream
    send_buffer_bytes: int = 64 * 1024
    # the cyclic garbage collector's first threshold in a served process (collector.py: start-up objects frozen,
    # young objects collected every this many net allocations); 0 = Python's own (700)
    gc_threshold: int = 10_000
    card_max_age: int = 300
    # the card a request without A2A-Version gets at agent-card.json: "0.3" (the 0.3 card plus
    # supportedInterfaces, which 0.3 clients, who never send the header, need) or "1.0" (the strict 1.0 card)
    card_default: str = "0.3"
    log_level: str = "info"
    # "sqlite" (a file in the user's data directory), "sqlite:///path/to.db" or "memory"
    store: str = "sqlite"
    # a task's event log holds at most this many events; a skill that goes past fails its task
    max_events_per_task: int = 100_000
    # finished tasks older than this are purged (0 = keep forever), checked every purge_interval seconds
    retention_days: float = 30.0
    purge_interval: float = 3600.0
    # all: API and runner in one process (the only choice with the embedded stores); api: no skills run;
    # worker: no API, only runners
    role: str = "all"
    # a runner that stops heartbeating loses its task to another runner after this long
    lease_seconds: float = 30.0
    # CORS allow-list; empty = CORS off
    cors_origins: list[str] = field(default_factory=list)

    # push notifications: hosts, IPs or CIDRs a webhook may call although they are not public (and over plain
    # http); everything else must be https to a public address (the SSRF guard, consumers/guard.py)
    push_allow: list[str] = field(default_factory=list)
    # failed attempts in a row before a config shows "failing" (delivery goes on, at push_retry_max)
    push_max_failures: int = 5
    # the first retry waits ~push_retry_base seconds, doubling up to push_retry_max (with jitter)
    push_retry_base: float = 1.0
    push_retry_max: float = 300.0
    # seconds one webhook call may take
    push_timeout: float = 10.0
    # a PEM file of CA certificates webhooks may also present (an internal CA), besides the system's
    push_ca_file: Path | None = None

    # callers (README "Security"): the keys file (None = auth off), and the limits per principal (per client
    # address with auth off; loopback clients are not rate-limited then). 0 turns a limit off.
    api_keys_file: Path | None = None
    rate_limit: float = 50.0  # requests per second
    rate_burst: int = 100
    max_running_tasks: int = 32
    max_streams: int = 64
    max_message_bytes: int = 1024 * 1024
    max_parts: int = 256
    max_metadata_depth: int = 16
    max_metadata_bytes: int = 64 * 1024
    # slow clients (uvicorn): an idle keep-alive connection is closed after this long; past max_connections
    # (open connections + running requests, streams included) new ones get 503 at once
    keep_alive_seconds: int = 5
    max_connections: int = 2048

    def __post_init__(self) -> None:
        if self.card_default not in CARD_DEFAULTS:
            raise ValueError(f"card_default must be one of {', '.join(CARD_DEFAULTS)}, got {self.card_default!r}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``A2A_<FIELD>`` variables, then explicit overrides (flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"A2A_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _coerce(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _coerce(name: str, raw: str) -> Any:
    default = Settings.__dataclass_fields__[name]
    kind = default.type
    try:
        if name in ("skills", "cors_origins", "push_allow"):
            return [s.strip() for s in raw.split(",") if s.strip()]
        if name in ("card_file", "push_ca_file", "api_keys_file"):
            return Path(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ValueError(f"A2A_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
