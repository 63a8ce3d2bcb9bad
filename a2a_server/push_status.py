"""A task's failing webhooks, shown in every read of the task (issue 13: "the config is marked failing and the
task shows it").

    read of a task (tasks/get 0.1/0.3, GetTask, GET /tasks/{id}, ListTasks, a resubscribe's first item)
       ─► TaskService.shown ─► PushStore.failing(task ids, owner) ─► one query, answered by an index
       ─► a copy of each task with a failing config, its metadata holding
          "a2a-server/push": {"<configId>": {"state": "failing", "attempts": 7, "lastStatus": "500", ...}}

Computed at read time, never written into the task's stored snapshot: the runner owns the snapshot, and a config
recovers (or is deleted) without any event of the task. Only failing configs are shown: a task whose webhooks are
healthy (or that has none) reads exactly as before, and a client needs only to look for the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from a2a_server.model import Task
from a2a_server.ports import PushConfig, PushStore

# the metadata key (namespaced: a skill's or a client's own metadata keys are never touched)
KEY = "a2a-server/push"


def entry(config: PushConfig) -> dict[str, Any]:
    """What a read of the task says about one failing config (the config's own read says more)."""
    d = config.delivery
    shown: dict[str, Any] = {
        "state": d.state, "attempts": d.attempts, "lastStatus": d.last_status, "lastAttempt": d.last_attempt,
        "nextTry": d.next_try, "delivered": d.delivered,
    }  # fmt: skip
    return {k: v for k, v in shown.items() if v is not None}


async def shown(store: PushStore | None, tasks: Sequence[Task], owner: str | None) -> list[Task]:
    """``tasks`` as a client reads them: each one with a failing config is a copy with the key in its metadata
    (the originals, possibly the runner's live task, are never changed). No query without a push store."""
    if store is None or not tasks:
        return list(tasks)
    found = await store.failing([t.id for t in tasks], owner=owner)
    if not found:
        return list(tasks)
    by_task: dict[str, dict[str, Any]] = {}
    for config in found:
        by_task.setdefault(config.task_id, {})[config.id] = entry(config)
    return [
        t.model_copy(update={"metadata": {**(t.metadata or {}), KEY: by_task[t.id]}}) if t.id in by_task else t
        for t in tasks
    ]
