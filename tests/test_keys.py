"""The keys file and the server's view of it (a2a_server/keys.py), without a server."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from a2a_server.keys import KeyFileError, Keyring, StoredKey, hash_key, load, main, new_key, parse_scopes, save


def _write(path: Path, *keys: tuple[str, str, tuple[str, ...]]) -> None:
    save(path, [StoredKey(name, scopes, hash_key(key), "2026-01-01T00:00:00Z") for name, key, scopes in keys])


def test_a_key_is_found_by_its_hash_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    alice, bob = new_key(), new_key()
    assert alice != bob and len(alice) > 40
    _write(path, ("alice", alice, ("send", "read")), ("bob", bob, ("admin",)))
    ring = Keyring(path)
    found = ring.lookup(alice)
    assert found is not None and found.name == "alice" and found.reader == "alice" and not found.admin
    root = ring.lookup(bob)
    assert root is not None and root.admin and root.reader is None and root.may("send")
    assert ring.lookup(alice + "x") is None and ring.lookup("") is None and ring.lookup(hash_key(alice)) is None


def test_the_keyring_follows_the_file_and_keeps_the_last_good_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.json"
    alice, bob = new_key(), new_key()
    _write(path, ("alice", alice, ("read",)))
    ring = Keyring(path)
    _write(path, ("alice", alice, ("read",)), ("bob", bob, ("read",)))
    assert ring.lookup(bob) is not None and len(ring) == 2
    caplog.set_level(logging.ERROR, "a2a_server.keys")
    path.write_text("{not json")
    assert ring.lookup(bob) is not None, "a broken file must not lock everyone out"
    assert ring.lookup(alice) is not None and "not a keys file" in caplog.text
    ring.lookup(alice)
    assert caplog.text.count("not a keys file") == 1  # said once per change, not per request
    _write(path, ("bob", bob, ("read",)))
    assert ring.lookup(alice) is None and ring.lookup(bob) is not None  # revoked


def test_a_missing_or_malformed_file_at_start_up_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="a2a-server keys add NAME --file"):
        Keyring(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"keys": [{"name": "x", "scopes": ["root"], "hash": "sha256:00"}]}))
    with pytest.raises(KeyFileError, match="unknown hash or scope"):
        Keyring(bad)
    assert load(tmp_path / "absent.json") == []


def test_save_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "keys.json"
    _write(path, ("alice", new_key(), ("read",)))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["keys.json"]  # no temporary file left behind


def test_scopes_are_checked() -> None:
    assert parse_scopes("send, read,send") == ("send", "read")
    for bad in ("", "write", "read,owner"):
        with pytest.raises(ValueError, match="send, read, admin"):
            parse_scopes(bad)


def test_rotation_a_second_key_for_the_same_principal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "keys.json")
    assert main(["add", "alice", "--file", path]) == 0
    old = capsys.readouterr().out.strip()
    assert main(["add", "alice", "--file", path]) == 2
    assert "--another" in capsys.readouterr().err
    assert main(["add", "alice", "--another", "--file", path]) == 0
    new = capsys.readouterr().out.strip()
    ring = Keyring(Path(path))
    assert ring.lookup(old) == ring.lookup(new) is not None  # one principal: the same tasks
    old_id = hash_key(old)[7:15]
    assert main(["list", "--file", path]) == 0
    assert old_id in capsys.readouterr().out
    assert main(["revoke", "alice", "--id", old_id, "--file", path]) == 0
    assert ring.lookup(old) is None and ring.lookup(new) is not None
    assert main(["revoke", "alice", "--id", old_id, "--file", path]) == 2
    assert main(["add", "bob", "--another", "--file", path]) == 2
    assert main(["revoke", "alice", "--file", path]) == 0
    assert ring.lookup(new) is None
