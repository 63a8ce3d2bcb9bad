"""The reference for the benchmark: bare Starlette + sse-starlette doing the work a2a-server does.

Same Python, same uvicorn, same loop and HTTP settings as the server, and no A2A machinery:
- send: parse the JSON-RPC body, answer a small JSON-RPC result (a completed-task-shaped dict);
- stream: one sse-starlette ``EventSourceResponse`` of N ``data:`` JSON events with ``id:``s,
  one per word of the message text (the benchmark sends 100 words), shaped like 1.0 artifact
  updates so the bytes on the wire are comparable; ``metadata.delay_ms`` paces the events as it paces the
  echo skill's (lone events: ``bench/lone_events.py``).

Run with ``uvicorn bench.bare_app:app`` from the repository root.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


def _text_of(params: dict[str, Any]) -> str:
    parts = params.get("message", {}).get("parts", [])
    return "".join(part.get("text", "") for part in parts)


async def _chunks(rpc_id: Any, text: str, delay_s: float) -> AsyncIterator[dict[str, str]]:
    words = text.split(" ")
    for n, word in enumerate(words, start=1):
        if delay_s:
            await asyncio.sleep(delay_s)
        last = n == len(words)
        event = {
            "jsonrpc": "2.0",
            "id": rpc_id,
            "result": {
                "artifactUpdate": {
                    "taskId": "t1",
                    "contextId": "c1",
                    "artifact": {"artifactId": "a1", "parts": [{"text": word if last else word + " "}]},
                    "append": n > 1,
                    "lastChunk": last,
                }
            },
        }
        yield {"id": str(n), "data": json.dumps(event)}


async def a2a(request: Request) -> Response:
    body = json.loads(await request.body())
    rpc_id = body.get("id")
    params = body.get("params", {})
    text = _text_of(params)
    if body.get("method") == "SendStreamingMessage":
        delay_s = float((params.get("metadata") or {}).get("delay_ms", 0)) / 1000
        return EventSourceResponse(_chunks(rpc_id, text, delay_s), ping=15, headers={"Cache-Control": "no-cache"})
    task = {
        "id": "t1",
        "contextId": "c1",
        "status": {"state": "TASK_STATE_COMPLETED"},
        "artifacts": [{"artifactId": "a1", "parts": [{"text": text}]}],
    }
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "result": {"task": task}})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/a2a", a2a, methods=["POST"]), Route("/healthz", healthz)])
