"""API keys: a JSON file of hashed keys, the ``a2a-server keys`` command, and the server's view of the file.

    a2a-server keys add NAME [--scopes send,read,admin] [--file PATH]  ─► prints the key ONCE; stores its hash
    a2a-server keys add NAME --another                                ─► a second key of NAME (rotation)
    a2a-server keys list | revoke NAME [--id ID]
    serve --api-keys-file PATH ─► Keyring: re-read when the file changes (its mtime, size or inode), no restart

A key is ``a2a_`` + 32 random bytes (urlsafe base64); the file holds ``sha256(key)`` only. A fast unsalted hash
is enough for a random 256-bit secret (no dictionary to try) and keeps a lookup to one hash per request; each
stored hash is compared with ``hmac.compare_digest``, all of them every time, so the time does not depend on
which key (if any) matched. The key's NAME is the principal: the owner of every task it creates.

Scopes: ``send`` (create, continue and cancel tasks), ``read`` (get, list, subscribe, the streams, the firehose,
the extended card), ``admin`` (both, and sees every principal's tasks).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("a2a_server.keys")

SCOPES = ("send", "read", "admin")
DEFAULT_SCOPES = ("send", "read")
ENV_FILE = "A2A_API_KEYS_FILE"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_PREFIX = "a2a_"
_SETTLE_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's name (the owner of the tasks it creates) and what it may do."""

    name: str
    scopes: frozenset[str]

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    def may(self, scope: str) -> bool:
        return self.admin or scope in self.scopes

    @property
    def reader(self) -> str | None:
        """The owner reads are scoped to: None (every owner) for an admin."""
        return None if self.admin else self.name


@dataclass(frozen=True, slots=True)
class StoredKey:
    name: str
    scopes: tuple[str, ...]
    hash: str  # "sha256:<hex>"
    created: str

    @property
    def id(self) -> str:
        """A short fingerprint that tells a principal's keys apart in ``list`` and ``revoke --id`` (8 hex digits of
        the hash: nothing to learn the key from)."""
        return self.hash.removeprefix("sha256:")[:8]

    def json(self) -> dict[str, Any]:
        return {"name": self.name, "scopes": list(self.scopes), "hash": self.hash, "created": self.created}


class KeyFileError(ValueError):
    """The keys file cannot be read or is malformed; the message names the file and the problem."""


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    return _PREFIX + secrets.token_urlsafe(32)


def parse_scopes(raw: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"--scopes {raw!r}: expected a comma-separated list of {', '.join(SCOPES)}")
    return scopes


def load(path: Path) -> list[StoredKey]:
    """The keys in ``path``; a missing file is an empty list (``keys add`` creates it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise KeyFileError(f"keys file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if text.strip() else {"keys": []}
        rows = data["keys"]
        keys = [
            StoredKey(str(r["name"]), tuple(str(s) for s in r["scopes"]), str(r["hash"]), str(r.get("created", "")))
            for r in rows
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"keys file {path}: not a keys file ({type(exc).__name__}: {exc})") from None
    for key in keys:
        if not key.hash.startswith("sha256:") or any(s not in SCOPES for s in key.scopes):
            raise KeyFileError(f"keys file {path}: key {key.name!r} has an unknown hash or scope")
    return keys


def save(path: Path, keys: list[StoredKey]) -> None:
    """Write atomically (a server reading the file never sees half of it), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"keys": [k.json() for k in keys]}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Keyring:
    """The server's view of the keys file: re-read whenever the file changes (checked with one ``stat`` per
    lookup). A file that becomes unreadable or malformed keeps the last good keys and logs why, once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._keys: list[tuple[bytes, Principal]] = []
        self._reload(first=True)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _reload(self, first: bool = False) -> None:
        stamp = self._stat()
        # A file rewritten within one tick of the file system's clock, to the same size, on a recycled inode,
        # would keep its stamp: while the file is that young, read it anyway (small, and only for a moment).
        young = stamp is not None and time.time_ns() - stamp[0] < _SETTLE_NS
        if stamp == self._stamp and not first and not young:
            return
        if stamp is None and first:
            raise KeyFileError(f"keys file {self.path} does not exist; create a key with: "
                               f"a2a-server keys add NAME --file {self.path}")  # fmt: skip
        try:
            keys = load(self.path)
        except KeyFileError as exc:
            if first:
                raise
            if stamp != self._stamp:
                log.error("%s; keeping the %d keys read before", exc, len(self._keys))
            self._stamp = stamp
            return
        self._stamp = stamp
        fresh = [(k.hash.encode(), Principal(k.name, frozenset(k.scopes))) for k in keys]
        if fresh != self._keys and not first:
            log.info("keys file %s re-read: %d keys", self.path, len(fresh))
        self._keys = fresh

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, presented: str) -> Principal | None:
        """The principal of ``presented``, or None. Every stored hash is compared, in constant time each."""
        self._reload()
        digest = hash_key(presented).encode()
        found = None
        for stored, principal in self._keys:
            if hmac.compare_digest(stored, digest):
                found = principal
        return found


# ---------------------------------------------------------------------------------------------- the command


def _file(args: argparse.Namespace) -> Path:
    raw = args.file or os.environ.get(ENV_FILE)
    if not raw:
        raise ValueError(f"no keys file: pass --file PATH or set {ENV_FILE}")
    return Path(raw).expanduser()


def main(argv: list[str]) -> int:
    """``keys``: create, list and revoke API keys (the file serve --api-keys-file reads)."""
    parser = argparse.ArgumentParser(prog="a2a-server keys", description="Manage the API keys of a2a-server.")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="create a key and print it once (only its hash is stored)")
    add.add_argument("name", help="the principal: owner of the tasks this key creates")
    add.add_argument("--scopes", default=",".join(DEFAULT_SCOPES), help="send,read,admin (default send,read)")
    add.add_argument("--another", action="store_true", help="a further key for an existing NAME (to rotate keys)")
    sub.add_parser("list", help="the keys' names, ids, scopes and creation times (never the keys)")
    revoke = sub.add_parser("revoke", help="delete NAME's keys (or one: --id); a running server notices at once")
    revoke.add_argument("name")
    revoke.add_argument("--id", dest="key_id", help="only the key with this id (from 'keys list')")
    for p in sub.choices.values():
        p.add_argument("--file", help=f"the keys file (default ${ENV_FILE})")
    args = parser.parse_args(argv)
    try:
        path = _file(args)
        keys = load(path)
        if args.action == "add":
            return _add(path, keys, args.name, parse_scopes(args.scopes), args.another)
        if args.action == "list":
            for k in keys:
                print(f"{k.name}\t{k.id}\t{','.join(k.scopes)}\t{k.created}")
            if not keys:
                print(f"no keys in {path}", file=sys.stderr)
            return 0
        remaining = [k for k in keys if not (k.name == args.name and args.key_id in (None, k.id))]
        if len(remaining) == len(keys):
            which = f" with id {args.key_id}" if args.key_id else ""
            raise ValueError(f"no key named {args.name!r}{which} in {path}")
        save(path, remaining)
        print(f"revoked {len(keys) - len(remaining)} key(s) of {args.name}", file=sys.stderr)
        return 0
    except ValueError as exc:  # KeyFileError included
        print(f"a2a-server keys: {exc}", file=sys.stderr)
        return 2


def _add(path: Path, keys: list[StoredKey], name: str, scopes: tuple[str, ...], another: bool) -> int:
    if not _NAME.match(name):
        raise ValueError(f"name {name!r}: 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit")
    if any(k.name == name for k in keys) and not another:
        raise ValueError(f"a key named {name!r} exists; to rotate, add --another (same principal, same tasks), "
                         "move the clients to it, then 'keys revoke NAME --id OLD'")  # fmt: skip
    if another and not any(k.name == name for k in keys):
        raise ValueError(f"--another: there is no key named {name!r} yet")
    key = new_key()
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    added = StoredKey(name, scopes, hash_key(key), created)
    save(path, [*keys, added])
    print(key)
    print(f"added {name} (id {added.id}, {','.join(scopes)}) to {path}; the key above is shown only once",
          file=sys.stderr)  # fmt: skip
    return 0
