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
            if node.module == "a2a_server":  # from a2a_server import cursor: the module is a2a_server.cursor
                names.update(f"a2a_server.{alias.name}" for alias in node.names)
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
        "uvicorn": {"cli.py", "http_parser.py"},  # the server, and its HTTP parser (a uvicorn protocol)
        "jsonrpcserver": {"rpc.py"},
        "sqlite3": {"backends"},
    }
    for library, allowed in corners.items():
        users = {
            p.relative_to(PACKAGE).parts[0]
            for p in PACKAGE.rglob("*.py")
            if any(n == library or n.startswith(library + ".") for n in _imports(p))
        }
        assert users <= allowed, f"{library} imported outside {allowed}: {users - allowed}"


def _modules(*paths: str) -> list[Path]:
    out: list[Path] = []
    for rel in paths:
        target = PACKAGE / rel
        out.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target])
    return out


def _internal(path: Path) -> set[str]:
    return {n for n in _imports(path) if n.startswith("a2a_server.")}


TRANSPORTS = ("http", "rpc.py", "operations.py")


def test_transports_call_only_the_service() -> None:
    """A transport parses, calls the service, renders: it never reaches a backend, a runner or a port."""
    allowed = ("service", "model", "dialects", "errors", "methods", "cursor", "config", "card", "metrics", "skill",
               "http", "rpc", "operations", "extensions", "keys", "limits")  # fmt: skip
    for path in _modules(*TRANSPORTS):
        bad = {n for n in _internal(path) if n.split(".")[1] not in allowed}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_the_runner_never_imports_a_transport_or_the_service() -> None:
    for path in _modules("runner"):
        bad = {n for n in _internal(path) if n.split(".")[1] in ("http", "rpc", "operations", "service", "app")}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_backends_import_nothing_above_the_ports() -> None:
    for path in _modules("backends"):
        bad = {n for n in _internal(path) if n.split(".")[1] not in ("ports", "ledger", "model", "errors", "backends")}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_the_server_never_imports_the_cli_client() -> None:
    offenders = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if any(
        n == "a2a_client" or n.startswith("a2a_client.") for n in _imports(p))}  # fmt: skip
    assert offenders == set()


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
