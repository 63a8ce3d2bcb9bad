"""The ``--store redis://…`` setting: what it accepts, what it refuses with a clear message, which roles it allows."""

from __future__ import annotations

import pytest

from a2a_server.app import StartupError, preflight
from a2a_server.backends import roles_of, store_path
from a2a_server.backends.redis_conn import parse_url
from a2a_server.config import Settings


def test_a_redis_url_keeps_its_address_and_takes_a_prefix() -> None:
    assert parse_url("redis://10.0.0.5:6380/2").prefix == "a2a"
    parsed = parse_url("redis://10.0.0.5:6380/2?prefix=staging")
    assert (parsed.url, parsed.prefix, parsed.address) == ("redis://10.0.0.5:6380/2", "staging", "10.0.0.5:6380/2")


@pytest.mark.parametrize("url", ["redis://h:6379/x", "redis://h:6379/0/1"])
def test_a_bad_database_is_refused_before_the_server_binds(url: str) -> None:
    with pytest.raises(StartupError, match="the database after the port must be a number"):
        preflight(Settings(store=url, role="api"))


def test_a_shared_store_allows_every_role_and_has_no_file() -> None:
    assert roles_of("redis://127.0.0.1:6379/0") == ("all", "api", "worker")
    assert store_path("redis://127.0.0.1:6379/0") is None
    preflight(Settings(store="redis://127.0.0.1:6379/0", role="worker"))  # no connection is made here


def test_the_embedded_stores_still_refuse_the_split_roles() -> None:
    with pytest.raises(StartupError, match="use --role all"):
        preflight(Settings(store="memory", role="worker"))
