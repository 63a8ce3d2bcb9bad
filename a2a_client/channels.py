"""``a2a-server channels open|get|list|close``: billing channels of an a2a-server (the token-billing extension).

Each subcommand is one JSON-RPC call to URL/a2a (1.0 names: OpenChannel, GetChannel, ListChannels, CloseChannel)
with the extension activated (``A2A-Extensions``). It prints the channel (or the receipt) as ``key: value`` lines,
or with ``--json`` as the server sent it; ``open`` prints the id first so that scripts can read it
(``id=$(a2a-server channels open URL --deposit 1000 --rate 10 --json | jq -r .id)``).

exit codes: 0 done; 1 cannot connect, HTTP or JSON-RPC error (the server's message); 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

from a2a_client.target import Target

EXTENSION = "urn:a2a-server:ext:token-billing:v1"
_METHODS = {"open": "OpenChannel", "get": "GetChannel", "list": "ListChannels", "close": "CloseChannel"}


def main(argv: list[str]) -> int:
    """open, show, list or close billing channels (pay per token) on an a2a-server"""
    parser = argparse.ArgumentParser(
        prog="a2a-server channels",
        description="Billing channels of an a2a-server: open with a deposit and a token rate, close for a receipt.",
        epilog="exit codes: 0 done; 1 cannot connect, HTTP or JSON-RPC error; 2 usage error",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    for action, help_text in (
        ("open", "open a channel; prints it, its id first"),
        ("get", "show a channel: deposit, charged, balance, tokens, state"),
        ("list", "list your channels, newest first"),
        ("close", "close a channel (its running tasks are canceled first) and print the receipt"),
    ):
        p = actions.add_parser(action, help=help_text)
        p.add_argument("url", help="the server's base URL (http://localhost:8000)")
        if action == "open":
            p.add_argument("--deposit", required=True, help="the most the channel may be charged, in base units")
            p.add_argument("--rate", required=True, help="tokenRate: base units charged per delivered token")
            p.add_argument("--model", help="the model the channel pays for")
            p.add_argument("--expires-in", type=float, help="seconds until the channel closes itself")
        elif action in ("get", "close"):
            p.add_argument("id", help="the channel id")
        p.add_argument("--json", dest="as_json", action="store_true", help="print the result as the server sent it")
        p.add_argument("--timeout", type=float, default=60.0, help="read timeout, seconds")
    args = parser.parse_args(argv)
    params: dict[str, Any] = {}
    if args.action == "open":
        params = {"deposit": args.deposit, "tokenRate": args.rate}
        if args.model:
            params["model"] = args.model
        if args.expires_in is not None:
            params["expiresIn"] = args.expires_in
    elif args.action in ("get", "close"):
        params = {"id": args.id}
    try:
        target = Target.parse(args.url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = _call(target, _METHODS[args.action], params, args.timeout)
    except (httpx.HTTPError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.as_json:
        print(json.dumps(result, indent=2))
    elif args.action == "list":
        for channel in result.get("channels", []):
            print(_line(channel))
    else:
        _print(result)
    return 0


def _call(target: Target, method: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    headers = {"A2A-Version": "1.0", "A2A-Extensions": EXTENSION}
    response = httpx.post(target.endpoint, json=body, headers=headers, timeout=timeout)
    try:
        reply = response.json()
    except ValueError:
        raise ValueError(f"HTTP {response.status_code} from {target.endpoint}: not JSON-RPC") from None
    if "error" in reply:
        raise ValueError(f"{reply['error'].get('message')} (code {reply['error'].get('code')})")
    result: dict[str, Any] = reply["result"]
    return result


def _print(result: dict[str, Any]) -> None:
    first = "channelId" if "channelId" in result else "id"
    print(f"{first}: {result[first]}")
    for key, value in result.items():
        if key == first:
            continue
        if key == "tasks":
            for task in value:
                extra = f"  abandoned={task['abandoned']['tokens']} tokens" if "abandoned" in task else ""
                print(f"task: {task['taskId']}  tokens={task['tokens']}  charged={task['charged']}{extra}")
        elif value is not None:
            print(f"{key}: {value}")


def _line(channel: dict[str, Any]) -> str:
    return (f"{channel['id']}  {channel['state']}  deposit={channel['deposit']}  charged={channel['charged']}  "
            f"balance={channel['balance']}  tokens={channel['tokens']}")  # fmt: skip
