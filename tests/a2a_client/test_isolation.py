"""The client and the server share no code, and ``a2a-server serve`` never loads the client.

Checked two ways: an ``ast`` walk of the imports (neither package names the other), and a real
interpreter that imports what ``serve`` imports, builds the app and its argument parser, and then
lists what ended up in ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import a2a_client
import a2a_server
from tests.conftest import ROOT

CLIENT = Path(a2a_client.__file__).parent
SERVER = Path(a2a_server.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _offenders(package: Path, *forbidden: str) -> dict[str, list[str]]:
    found = {
        str(p.relative_to(package)): sorted(n for n in _imports(p) if n.split(".")[0] in forbidden)
        for p in package.rglob("*.py")
    }
    return {path: names for path, names in found.items() if names}


def test_the_client_imports_nothing_of_the_server() -> None:
    assert _offenders(CLIENT, "a2a_server", "skills") == {}


def test_the_server_imports_nothing_of_the_client() -> None:
    assert _offenders(SERVER, "a2a_client") == {}


SERVE_IMPORTS = """
import json, sys
import a2a_server.cli as cli
import a2a_server.app as app
from a2a_server.config import Settings
cli._parser()  # the parser main() builds before it calls serve
app.create_app(Settings(store="memory", skills=["echo"]))
print(json.dumps(sorted(sys.modules)))
"""


def test_serve_loads_neither_the_client_nor_rich() -> None:
    r = subprocess.run(
        [sys.executable, "-c", SERVE_IMPORTS], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    modules = json.loads(r.stdout)
    assert "a2a_server.app" in modules  # the probe did import the server
    loaded = [m for m in modules if m.split(".")[0] in ("a2a_client", "rich")]
    assert loaded == []


def test_the_public_api_is_sorted_and_complete() -> None:
    assert a2a_client.__all__ == sorted(a2a_client.__all__)
    for name in a2a_client.__all__:
        assert hasattr(a2a_client, name), name
