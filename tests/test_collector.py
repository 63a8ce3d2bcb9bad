"""The cyclic collector as a served process sets it (collector.py): start-up frozen, young collections rarer."""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from a2a_server import collector
from tests.conftest import start_server, stop_server


@pytest.fixture
def restored() -> Iterator[None]:
    """The test process's collector as it was (this process is not a server)."""
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_settle_freezes_what_exists_and_raises_the_first_threshold(restored: None) -> None:
    middle, old = gc.get_threshold()[1:]
    collector.settle(10_000)
    assert gc.get_freeze_count() > 1000  # this process's modules, classes, pytest's own objects
    assert gc.get_threshold() == (10_000, middle, old)  # only the young generation's threshold moves


def test_settle_with_0_leaves_pythons_thresholds(restored: None) -> None:
    before = gc.get_threshold()
    collector.settle(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() > 1000


@pytest.mark.parametrize(("env", "young"), [({}, 10_000), ({"A2A_GC_THRESHOLD": "0"}, 700)])
def test_a_served_process_settles_its_collector_once_started(tmp_path: Path, env: dict[str, str], young: int) -> None:
    server = start_server(tmp_path, "--log-level", "debug", env=env, skills="echo")
    try:
        said = ""
        for _ in range(100):  # the log is written by a background thread: a moment after /healthz answers
            said = server.log_path.read_text()
            if "garbage collector:" in said:
                break
            time.sleep(0.05)
        found = re.search(r"garbage collector: (\d+) start-up objects frozen, thresholds \((\d+), ", said)
        assert found is not None, said[-2000:]
        assert int(found[1]) > 10_000  # the app, its store, its skills and their libraries
        assert int(found[2]) == young
        metrics = httpx.get(server.url + "/metrics", timeout=5).text
        assert 'python_gc_collections_total{generation="2"}' in metrics
    finally:
        stop_server(server)
