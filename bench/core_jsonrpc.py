"""What jsonrpcserver 5.0.9 costs per request, next to the JSON work any server does anyway.

``async_dispatch`` parses the body, validates it against the JSON-RPC JSON schema (jsonschema),
binds the params to the method's signature (``inspect.signature``), runs the method inside
``asyncio.gather`` and serializes the response. The baseline is ``json.loads`` + ``json.dumps``
of the same request and response; the parts are timed one by one to show which step dominates.
All figures are microseconds per request on one asyncio loop, the best of several repeats (as
timeit advises: slower repeats measure other load on the machine, not the code).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import platform
import time
import warnings
from collections.abc import Awaitable, Callable
from functools import partial
from importlib.metadata import version
from typing import Any

with warnings.catch_warnings():
    # jsonrpcserver 5.0.9 reads its bundled schema with importlib.resources' deprecated API.
    warnings.simplefilter("ignore", DeprecationWarning)
    from jsonrpcserver import Result, Success, async_dispatch
    from jsonrpcserver.main import default_validator

REQUEST = json.dumps({
    "jsonrpc": "2.0",
    "id": 1,
    "method": "SendMessage",
    "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hello"}]}},
})  # fmt: skip
TASK = {
    "id": "t1",
    "contextId": "c1",
    "status": {"state": "TASK_STATE_COMPLETED"},
    "artifacts": [{"artifactId": "a1", "parts": [{"text": "hello"}]}],
}


async def send_message(message: dict[str, Any]) -> Result:
    return Success({"task": TASK})


METHODS = {"SendMessage": send_message}


class _Handlers:
    async def call(self, spec: str, **params: Any) -> Result:
        return Success({"task": TASK})


# A method table built as functools.partial over a bound method (one handler serving many wire
# methods) makes jsonrpcserver's per-request inspect.signature() walk two more layers.
PARTIAL_METHODS = {"SendMessage": partial(_Handlers().call, "SendMessage")}


def _identity(x: Any) -> Any:
    return x


async def _per_request_us(step: Callable[[], Awaitable[object]], n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            await step()
        times.append((time.perf_counter() - start) / n * 1e6)
    return min(times)


async def measure(n: int, repeats: int) -> list[tuple[str, float]]:
    parsed = json.loads(REQUEST)
    reply = {"jsonrpc": "2.0", "result": {"task": TASK}, "id": 1}
    signature = inspect.signature(send_message)

    async def full() -> object:
        return await async_dispatch(REQUEST, methods=METHODS)

    async def no_schema() -> object:
        return await async_dispatch(REQUEST, methods=METHODS, validator=_identity)

    async def no_schema_partial() -> object:
        return await async_dispatch(REQUEST, methods=PARTIAL_METHODS, validator=_identity)

    async def json_only() -> object:
        json.loads(REQUEST)
        return json.dumps(reply)

    async def schema() -> object:
        return default_validator(parsed)

    async def bind() -> object:
        return inspect.signature(send_message).bind(**parsed["params"])

    async def bind_partial() -> object:
        return inspect.signature(PARTIAL_METHODS["SendMessage"]).bind(**parsed["params"])

    async def bind_cached() -> object:
        return signature.bind(**parsed["params"])

    async def gather() -> object:
        return await asyncio.gather(send_message(**parsed["params"]))

    async def direct() -> object:
        return await send_message(**parsed["params"])

    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("async_dispatch (whole request)", full),
        ("async_dispatch, validator=identity (no schema check)", no_schema),
        ("async_dispatch, validator=identity, method = partial(bound method, ...)", no_schema_partial),
        ("baseline: json.loads + json.dumps", json_only),
        ("part: jsonschema validation of the request", schema),
        ("part: inspect.signature(method).bind(params), as dispatch does", bind),
        ("part: the same for partial(bound method, ...)", bind_partial),
        ("part: bind with a cached signature", bind_cached),
        ("part: await asyncio.gather(method(...)), as dispatch does", gather),
        ("part: await method(...) directly", direct),
    ]
    return [(name, await _per_request_us(step, n, repeats)) for name, step in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000, help="requests per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    rows = asyncio.run(measure(args.n, args.repeats))
    whole, no_schema, baseline = rows[0][1], rows[1][1], rows[3][1]
    print(f"jsonrpcserver {version('jsonrpcserver')}, jsonschema {version('jsonschema')}, "
          f"Python {platform.python_version()}; {args.n} requests x {args.repeats} repeats, best\n")  # fmt: skip
    print("| step | µs per request |")
    print("|---|---:|")
    for name, us in rows:
        print(f"| {name} | {us:.1f} |")
    print(
        f"\nasync_dispatch: {whole:.0f} µs per request, {whole / baseline:.0f}x the bare JSON round trip "
        f"({baseline:.1f} µs); the schema check is {(whole - no_schema) / whole:.0%} of it."
    )


if __name__ == "__main__":
    main()
