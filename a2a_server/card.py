"""The agent card, in the shape each generation's clients accept (A2A-PROTOCOL.md §2).

- 1.0 (``A2A-Version: 1.0``): ``supportedInterfaces`` only; a strict 1.0 validator rejects the 0.3 keys.
- ``A2A-Version: 0.3`` (or 0.2, 0.1): a pure 0.3 card, with ``url``, ``protocolVersion``,
  ``preferredTransport``, ``additionalInterfaces`` and no 1.0 keys; it is also a valid 0.1 card.
- no header (old clients, browsers, curl): the 0.3 card plus ``supportedInterfaces``, so a 1.0 client
  that reads it finds its interface too (a2a-sdk 1.3.0 then prefers 1.0; 0.3 clients ignore the key).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from a2a_server.extensions import card_entries
from a2a_server.skill import SkillCard, SkillRegistry

JSON = dict[str, Any]
# the base URL of the 1.0 HTTP+JSON binding (``/v1`` is the OpenAI API's)
REST_BASE = "/a2a/rest"
_DEFAULT_FILE = Path(__file__).resolve().parent.parent / "agent_card.json"
_FALLBACK: JSON = {
    "name": "a2a-server",
    "description": "An A2A agent task server.",
    "version": "0.1.0",
    "defaultInputModes": ["text/plain"],
    "defaultOutputModes": ["text/plain"],
}


def load_static(path: Path | None) -> JSON:
    """The static fields; an explicit path that is missing or broken is an error, the default is optional."""
    if path is None:
        if not _DEFAULT_FILE.is_file():
            return dict(_FALLBACK)
        path = _DEFAULT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"agent card file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"agent card file {path}: must hold a JSON object")
    return {**_FALLBACK, **data}


def _skill(card: SkillCard) -> JSON:
    out: JSON = {
        "id": card.id,
        "name": card.name,
        "description": card.description,
        "tags": card.tags,
        "inputModes": card.input_modes,
        "outputModes": card.output_modes,
    }
    if card.examples:
        out["examples"] = card.examples
    return out


def build(
    static: JSON, skills: SkillRegistry, base_url: str, version: str | None, secured: bool = False, push: bool = True
) -> JSON:
    """The card for ``version`` ("1.0", an older "0.x", or None for the compat card) served at ``base_url``;
    ``secured``: API keys are on (the card says how to present one, see ``_secure``); ``push``: the store keeps
    push configs (a Redis store does not yet, and every push method answers -32003: the card must not promise it)."""
    card = _build(static, skills, base_url, version, push)
    return _secure(card, version == "1.0") if secured else card


def _build(static: JSON, skills: SkillRegistry, base_url: str, version: str | None, push: bool) -> JSON:
    rpc_url = base_url.rstrip("/") + "/a2a"
    rest_url = base_url.rstrip("/") + REST_BASE
    skills_json = [_skill(s.card()) for s in skills]
    interfaces = [
        {"url": rpc_url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": rpc_url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        {"url": rest_url, "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
    ]
    card: JSON = {
        **{k: v for k, v in static.items() if k not in ("skills", "capabilities")},
        "supportedInterfaces": interfaces,
        "capabilities": {"streaming": True, "pushNotifications": push, "extendedAgentCard": False},
        "skills": skills_json,
    }
    extensions = card_entries(skills)  # the token-billing extension (issue 12)
    card["capabilities"]["extensions"] = extensions
    if version == "1.0":
        return card
    if version is not None:
        del card["supportedInterfaces"]
    card["capabilities"] = {"streaming": True, "pushNotifications": push, "stateTransitionHistory": True}
    card["capabilities"]["extensions"] = extensions
    card.update(
        {
            "url": rpc_url,
            "protocolVersion": "0.3.0",
            "preferredTransport": "JSONRPC",
            "additionalInterfaces": [{"url": rpc_url, "transport": "JSONRPC"}],
            "supportsAuthenticatedExtendedCard": False,
        }
    )
    return card


# ------------------------------------------------------------------ security (API keys on)
_HOW = "an API key made with 'a2a-server keys add'"


def _secure(card: JSON, v10: bool) -> JSON:
    """Declare the two ways to present a key, each enough alone, and the extended card (same card, for an
    authenticated caller). 1.0: oneof-wrapped schemes and ``securityRequirements``; 0.3: OpenAPI-shaped schemes
    and ``security``."""
    if v10:
        card["securitySchemes"] = {
            "bearer": {"httpAuthSecurityScheme": {"scheme": "Bearer", "description": _HOW}},
            "apiKey": {"apiKeySecurityScheme": {"location": "header", "name": "X-API-Key", "description": _HOW}},
        }
        card["securityRequirements"] = [{"schemes": {"bearer": {"list": []}}}, {"schemes": {"apiKey": {"list": []}}}]
        card["capabilities"]["extendedAgentCard"] = True
        return card
    card["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": _HOW},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": _HOW},
    }
    card["security"] = [{"bearer": []}, {"apiKey": []}]
    card["supportsAuthenticatedExtendedCard"] = True
    return card
