"""Keys made the way a user makes them (the real ``a2a-server keys add`` in a subprocess), and a server on them."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from a2a.client import ClientCallContext
from a2a.client.auth import CredentialService

from tests.conftest import ROOT, ServerProcess, start_server


class ApiKey(CredentialService):
    """The official a2a-sdk's credential source for its ``AuthInterceptor``: one key for every scheme."""

    def __init__(self, key: str) -> None:
        self.key = key

    async def get_credentials(self, security_scheme_name: str, context: ClientCallContext | None) -> str | None:
        return self.key


def keys_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "a2a_server", "keys", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def add_key(path: Path, name: str, scopes: str = "send,read") -> str:
    done = keys_cli("add", name, "--scopes", scopes, "--file", str(path))
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("a2a_") and "\n" not in key, done.stdout
    return key


@dataclass
class KeyedServer:
    server: ServerProcess
    keys_file: Path
    keys: dict[str, str]  # name -> key

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, name: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}", **extra}


def keyed_server(
    tmp: Path, scopes: dict[str, str], *args: str, skills: str = "echo,conformance", env: dict[str, str] | None = None
) -> KeyedServer:
    path = tmp / "keys.json"
    keys = {name: add_key(path, name, s) for name, s in scopes.items()}
    server = start_server(tmp, "--api-keys-file", str(path), "--keepalive-seconds", "1", *args, skills=skills, env=env)
    return KeyedServer(server, path, keys)
