"""The A2A extensions this server offers: their agent-card entries and the ``A2A-Extensions`` header.

One today: token billing (``urn:a2a-server:ext:token-billing:v1``, issue 12), billing channels that pay per
delivered token. It is optional (``required: false``): a client that names a channel in a send is served
whether or not it activated the extension; a client that lists it in ``A2A-Extensions`` gets it echoed.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Any

from a2a_server.ledger import EXTENSION_URI
from a2a_server.skill import SkillRegistry

JSON = dict[str, Any]
OFFERED = (EXTENSION_URI,)
# the extensions a request made use of (a send that named a channel), filled while it is handled: the response
# echoes them too, so a client that did not activate billing still learns that its request was billed
_USED: ContextVar[set[str] | None] = ContextVar("a2a_extensions_used", default=None)


def track() -> set[str]:
    """Start recording the extensions the current request uses; the returned set fills as it is handled."""
    used: set[str] = set()
    _USED.set(used)
    return used


def used(uri: str) -> None:
    """The current request made use of ``uri`` (a no-op outside a tracked request)."""
    found = _USED.get()
    if found is not None:
        found.add(uri)


def card_entries(skills: SkillRegistry) -> list[JSON]:
    """``capabilities.extensions`` of the agent card: the token-billing entry with the unit and each priced
    model's rates (base units per token, decimal strings)."""
    rates: JSON = {}
    for skill in skills:
        models = getattr(skill, "models", None)
        for info in models() if callable(models) else []:
            prompt = getattr(info, "price_prompt_token", None)
            completion = getattr(info, "price_completion_token", None)
            if prompt is not None or completion is not None:
                rates[info.id] = {"promptToken": str(prompt or 0), "completionToken": str(completion or 0)}
    params = {
        "unit": os.environ.get("A2A_BILLING_UNIT", "base unit"),
        "amounts": "decimal strings of whole base units",
        "charge": "tokenRate per streamed token, when its event is committed (delivered); never past the deposit",
        "rates": rates,
        "methods": [
            *("channels/open", "channels/get", "channels/list", "channels/close"),
            *("OpenChannel", "GetChannel", "ListChannels", "CloseChannel"),
        ],
        "sendParam": "metadata.channel",
    }
    description = "Billing channels: open with a deposit and a token rate, stream, close for a receipt."
    return [{"uri": EXTENSION_URI, "description": description, "required": False, "params": params}]


def activated(header: str | None) -> list[str]:
    """The offered extensions a request's ``A2A-Extensions`` header (comma-separated URIs) activates."""
    if not header:
        return []
    asked = {part.strip() for part in header.split(",")}
    return [uri for uri in OFFERED if uri in asked]
