"""The gate's pure parts (http/auth.py, http/refusal.py): the face a path answers in, the key a request shows."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from a2a_server.http.auth import SCOPE_OF, credential
from a2a_server.http.refusal import Face, face_of
from a2a_server.methods import Op


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({}, None),
        ({"authorization": "Bearer a2a_x"}, "a2a_x"),
        ({"authorization": "bearer   a2a_x  "}, "a2a_x"),
        ({"x-api-key": " a2a_y "}, "a2a_y"),
        ({"authorization": "Basic dXNlcjpwdw==", "x-api-key": "a2a_y"}, "a2a_y"),  # a proxy's Basic beside ours
        ({"authorization": "Bearer a2a_x", "x-api-key": "a2a_y"}, "a2a_x"),
        ({"authorization": "Basic dXNlcjpwdw=="}, ""),  # said as 'must be Bearer', not 'missing'
        ({"authorization": "Bearer"}, ""),
    ],
)
def test_the_key_a_request_shows(headers: dict[str, str], key: str | None) -> None:
    assert credential(Headers(headers)) == key


@pytest.mark.parametrize(
    ("method", "path", "face"),
    [
        ("GET", "/.well-known/agent-card.json", Face.PUBLIC),
        ("GET", "/healthz", Face.PUBLIC),
        ("GET", "/metrics", Face.PUBLIC),
        ("GET", "/static/console.js", Face.PUBLIC),
        ("GET", "/v1/models", Face.PUBLIC),
        ("GET", "/v1/models/words", Face.PUBLIC),
        ("OPTIONS", "/a2a", Face.PUBLIC),  # CORS preflight
        ("POST", "/a2a", Face.JSONRPC),
        ("POST", "/a2a/stream/", Face.JSONRPC),
        ("GET", "/a2a/rest/tasks", Face.REST),
        ("POST", "/v1/chat/completions", Face.OPENAI),
        ("GET", "/a2a/events", Face.PLAIN),
        ("GET", "/a2a/tasks/t/stream", Face.PLAIN),
        ("GET", "/anything/else", Face.PLAIN),  # deny by default: an unknown path needs a key too
    ],
)
def test_each_path_answers_in_its_face(method: str, path: str, face: Face) -> None:
    assert face_of(method, path) is face


def test_every_operation_names_the_scope_it_needs() -> None:
    assert set(SCOPE_OF) == set(Op) and set(SCOPE_OF.values()) == {"send", "read"}
