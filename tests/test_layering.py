"""The house rules that keep the layers apart, checked by walking the imports."""

from __future__ import annotations

import ast
from pathlib import Path

import a2a_server

PACKAGE = Path(a2a_server.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_never_imports_a_skill() -> None:
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(n for n in _imports(p) if n == "skills" or n.startswith("skills."))
        for p in PACKAGE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_each_third_party_library_lives_in_one_corner() -> None:
    corners = {
        "starlette": {"http", "app.py"},
        "sse_starlette": {"http"},
        "uvicorn": {"cli.py"},
        "jsonrpcserver": {"rpc.py", "errors.py"},
    }
    for library, allowed in corners.items():
        users = {
            p.relative_to(PACKAGE).parts[0]
            for p in PACKAGE.rglob("*.py")
            if any(n == library or n.startswith(library + ".") for n in _imports(p))
        }
        assert users <= allowed, f"{library} imported outside {allowed}: {users - allowed}"


def test_dialect_shapes_stay_in_dialects() -> None:
    """Only dialects/ spells the wire enums; the engine knows the canonical model alone."""
    for p in PACKAGE.rglob("*.py"):
        if p.parent.name == "dialects":
            continue
        text = p.read_text()
        assert "TASK_STATE_" not in text, p
        assert '"kind": "task"' not in text, p


def test_public_api_is_sorted_and_complete() -> None:
    assert a2a_server.__all__ == sorted(a2a_server.__all__)
    for name in a2a_server.__all__:
        assert hasattr(a2a_server, name), name
