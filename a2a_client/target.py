"""The server a user points the client at, in any of the forms people type or copy.

``localhost:8000``, ``http://localhost:8000``, ``http://localhost:8000/`` and the endpoint a card
advertises, ``http://localhost:8000/a2a`` (also ``.../a2a/``), all name the same server: a URL
without a scheme gets ``http://``, and a trailing ``/a2a`` (or ``/a2a/events``, the firehose) is
taken off to get the base. From the base the client finds the card, and through it the endpoint;
this server's extensions (the firehose) live at fixed paths under the base.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
ENDPOINT_PATH = "/a2a"
FIREHOSE_PATH = "/a2a/events"


@dataclass(frozen=True)
class Target:
    base: str  # scheme://host[:port][/prefix], never a trailing slash

    @classmethod
    def parse(cls, text: str) -> Target:
        """Any accepted form; a ``ValueError`` names what is wrong with the rest."""
        url = text.strip()
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"{text!r}: only http and https URLs are supported")
        if not parts.hostname:
            raise ValueError(f"{text!r}: no host in the URL")
        if parts.query or parts.fragment:
            raise ValueError(f"{text!r}: give the server's URL without a query or fragment")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when it is read
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
        base = url.rstrip("/")
        for suffix in (FIREHOSE_PATH, ENDPOINT_PATH):
            if base.endswith(suffix):
                base = base.removesuffix(suffix)
                break
        return cls(base)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def card_urls(self) -> list[str]:
        """Where a card may be: under the base, then (a base with a path) at the origin's well-known paths."""
        urls = [self.base + path for path in CARD_PATHS]
        if self.origin != self.base:
            urls += [self.origin + path for path in CARD_PATHS]
        return urls

    @property
    def endpoint(self) -> str:
        """The JSON-RPC endpoint to use when no card names one."""
        return self.base + ENDPOINT_PATH

    @property
    def firehose(self) -> str:
        """This server's stream of every task's events (``a2a-server events``)."""
        return self.base + FIREHOSE_PATH
