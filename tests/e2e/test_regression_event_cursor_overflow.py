"""Regression: a huge or non-ASCII ``Last-Event-ID`` on /a2a/events (found by tests/e2e/test_fuzz.py).

Bug: ``Last-Event-ID: 99999999999999999999`` passed the digits check, the stream answered 200, and its first read
of the SQLite log raised OverflowError inside the stream (a traceback in the log, the stream cut); ``²`` passed
``str.isdigit`` and ``int()`` refused it (an unhandled ValueError).
Fix: events.py takes ASCII digits up to 2**63 - 1 (SQLite's INTEGER) and answers anything else 400.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from a2a_server import Settings, create_app


# headers travel as latin-1: b"\xb2" is what the server reads as "²"
@pytest.mark.parametrize("cursor", [b"99999999999999999999", str(2**63).encode(), b"\xb2", b"\xb9\xb2", b"-1", b"1e3"])
async def test_a_cursor_the_log_cannot_hold_is_a_400(tmp_path: Path, cursor: bytes) -> None:
    app = create_app(Settings(skills=["echo"], store=f"sqlite://{tmp_path / 'tasks.db'}"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            answer = await client.get("/a2a/events", headers={b"Last-Event-ID": cursor})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request" and "an integer from 0 to" in answer.json()["message"]
