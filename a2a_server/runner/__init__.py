"""The worker side: runners claim queued tasks and drive their skills (see runner.py and run.py)."""

from __future__ import annotations

from a2a_server.runner.rerun import REQUEUED
from a2a_server.runner.run import Run
from a2a_server.runner.runner import Runner

__all__ = ["REQUEUED", "Run", "Runner"]
