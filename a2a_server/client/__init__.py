"""A command-line A2A client for any A2A server: ``a2a-server send`` and ``a2a-server task``.

``wire`` builds each generation's requests and reads any generation's results, ``sse`` reads event
streams, ``session`` talks to one agent (card, calls, resumable streams), ``view`` shows a task,
``commands`` turns all that into exit codes. It shares no code with the server on purpose.
"""

from __future__ import annotations

from a2a_server.client.commands import cancel, get, send, watch
from a2a_server.client.session import ClientError, RpcError, Session

__all__ = ["ClientError", "RpcError", "Session", "cancel", "get", "send", "watch"]
