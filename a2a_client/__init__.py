"""A command-line A2A client: ``a2a-server send``, ``a2a-server task`` and ``a2a-server events``.

``target`` reads the URL a user gives, ``wire`` builds each generation's requests and reads any
generation's results, ``sse`` reads event streams, ``session`` talks to one agent (card, calls,
resumable streams), ``firehose`` follows this server's stream of every task, ``view`` and ``ticker``
show what arrives, ``commands`` turns all that into exit codes and ``cli`` parses the arguments.

It shares no code with the server on purpose (tests/a2a_client/test_isolation.py keeps it so): it
speaks to any A2A server, and ``a2a-server serve`` never imports it.
"""

from __future__ import annotations

from a2a_client.commands import cancel, events, get, send, watch
from a2a_client.firehose import Firehose, FirehoseEvent
from a2a_client.session import ClientError, RpcError, Session
from a2a_client.target import Target

__all__ = [
    "ClientError",
    "Firehose",
    "FirehoseEvent",
    "RpcError",
    "Session",
    "Target",
    "cancel",
    "events",
    "get",
    "send",
    "watch",
]
