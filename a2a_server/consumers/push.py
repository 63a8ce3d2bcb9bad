"""The push sender: a consumer of the EventLog with a durable cursor per config (not a bus subscriber).

    PushSender.start ─► PushStore.active() ─► one worker per config (and one for each config set later)
    worker ─► EventLog.follow(task, cursor) ─► for each event after the cursor, in order, one at a time:
                 render (0.x: the Task at a status change; 1.0: the StreamResponse) ─► Webhook.post
                 2xx ─► cursor = event id, saved (PushStore.record) ─► the next event
                 5xx / 408 / 429 / network error ─► retry after min(retry_max, base·2^(n-1))·jitter, or
                    Retry-After if longer; the attempt, its status and the next try are saved; after
                    max_failures in a row the config shows "failing" (and keeps retrying at that pace)
                 another 4xx / 3xx ─► that event is given up (cursor moves past it, the status says why)
           ─► the task terminal and every event sent ─► "done", the worker ends

At least once: the cursor is saved after the receiver accepted an event, so a crash in between re-sends that one
event after a restart (receivers deduplicate on X-A2A-Event-Id), never an earlier one. The worker reads the log
itself, so a receiver that is down for an hour, or a sender that fell behind and was dropped by the live bus,
catches up from the cursor. Nothing here is awaited by a runner: publish never waits for a follower.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field

from a2a_server import cursor
from a2a_server.consumers.webhook import Outcome, Webhook
from a2a_server.dialects import BY_VERSION
from a2a_server.dialects.push import PUSH
from a2a_server.metrics import Metrics
from a2a_server.model import ArtifactEvent, LoggedEvent, MessageEvent, StatusEvent, Task
from a2a_server.ports import EventLog, PushConfig, PushStore, TaskStore

log = logging.getLogger("a2a_server.push")


@dataclass(slots=True)
class Policy:
    max_failures: int = 5  # failed attempts in a row before a config shows "failing"
    retry_base: float = 1.0  # the first retry waits about this long, doubling after each failure
    retry_max: float = 300.0  # no wait is longer (Retry-After included)
    concurrency: int = 32  # webhook calls in flight at once, over every config


@dataclass(slots=True)
class _Worker:
    config: PushConfig
    task: asyncio.Task[None] | None = None
    saved: int = field(default=0)  # the cursor as last saved


class PushSender:
    def __init__(
        self,
        push: PushStore,
        tasks: TaskStore,
        events: EventLog,
        webhook: Webhook,
        policy: Policy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.push, self.tasks, self.events, self.webhook = push, tasks, events, webhook
        self.policy = policy or Policy()
        self.metrics = metrics or Metrics()
        self._workers: dict[tuple[str, str], _Worker] = {}
        self._slots = asyncio.Semaphore(self.policy.concurrency)
        self._closed = False

    async def start(self) -> None:
        """Resume every config that is not done from its saved cursor."""
        configs = await self.push.active()
        for config in configs:
            self.watch(config)
        if configs:
            log.info("push: resuming delivery for %d webhook configs", len(configs))

    def watch(self, config: PushConfig) -> None:
        """Deliver ``config`` (new, or replacing the one with its task and id) from its cursor on."""
        if self._closed:
            return
        self.forget(config.task_id, config.id)
        worker = _Worker(config, saved=config.delivery.cursor)
        worker.task = asyncio.create_task(self._run(worker), name=f"push {config.task_id}/{config.id}")
        self._workers[(config.task_id, config.id)] = worker

    def forget(self, task_id: str, config_id: str) -> None:
        """Stop delivering a config (deleted, or replaced)."""
        worker = self._workers.pop((task_id, config_id), None)
        if worker is not None and worker.task is not None:
            worker.task.cancel()

    async def close(self) -> None:
        self._closed = True
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        self._workers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.webhook.close()

    # ------------------------------------------------------------------ one config

    async def _run(self, w: _Worker) -> None:
        key = (w.config.task_id, w.config.id)
        try:
            while True:
                try:
                    await self._deliver_all(w)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:  # a store failure (or a bug) must not end delivery silently: say so, go on later
                    log.exception("push %s/%s: delivery failed; trying again in %.0f s", *key, self.policy.retry_max)
                    await asyncio.sleep(self.policy.retry_max)
        finally:
            if self._workers.get(key) is w:
                del self._workers[key]

    async def _deliver_all(self, w: _Worker) -> None:
        c = w.config
        last: LoggedEvent | None = None
        while True:
            if (last is not None and isinstance(last.event, MessageEvent)) or await self._finished(c):
                c.delivery.state, c.delivery.next_try = "done", None
                await self._save(w, force=True)
                log.info("push %s/%s: done (%d delivered)", c.task_id, c.id, c.delivery.delivered)
                return
            # subscribed before the log is read (fresh when nothing is logged past the cursor): no event is missed
            follower = self.events.follow(c.task_id, c.delivery.cursor, fresh=True)
            if await self.events.last_event_id(c.task_id) > c.delivery.cursor:
                follower.close()
                follower = self.events.follow(c.task_id, c.delivery.cursor)
            async with follower:
                async for batch in follower.batches():
                    for logged in batch:
                        if logged.id <= c.delivery.cursor:
                            continue
                        if not await self._deliver(w, logged):
                            return  # the config is gone
                        last = logged
                    await self._save(w)

    async def _finished(self, c: PushConfig) -> bool:
        task = await self.tasks.get(c.task_id)
        if task is None or not task.status.state.terminal:
            return False
        return await self.events.last_event_id(c.task_id) <= c.delivery.cursor

    async def _save(self, w: _Worker, *, force: bool = False) -> bool:
        if not force and w.saved == w.config.delivery.cursor:
            return True
        w.saved = w.config.delivery.cursor
        return await self.push.record(w.config.task_id, w.config.id, w.config.delivery)

    async def _deliver(self, w: _Worker, logged: LoggedEvent) -> bool:
        """Deliver one event (retrying as long as it takes); False when the config was deleted meanwhile."""
        c, d = w.config, w.config.delivery
        body = await self._body(c, logged)
        if body is None:  # not notified by design (an artifact update nobody asked for, a token)
            d.cursor = logged.id
            return True
        event_id = cursor.sse_id(c.task_id, logged.id)
        content_type = "application/a2a+json" if c.dialect == "1.0" else "application/json"
        while True:
            async with self._slots:
                outcome = await self.webhook.post(c, event_id, body, content_type)
            d.last_status, d.last_attempt = outcome.status, _iso(time.time())
            verdict = "delivered" if outcome.ok else "retry" if outcome.retry else "gave_up"
            self.metrics.push_attempts.labels(verdict).inc()
            if outcome.ok or not outcome.retry:
                if not outcome.ok:
                    log.warning("push %s/%s: %s refused by the receiver (%s): given up", c.task_id, c.id, event_id,
                                outcome.status)  # fmt: skip
                    d.last_status = f"{outcome.status}; gave up on {event_id}"
                d.delivered += outcome.ok
                d.cursor, d.attempts, d.state, d.next_try = logged.id, 0, "active", None
                return await self._save(w, force=True)
            d.attempts += 1
            if d.attempts >= self.policy.max_failures and d.state != "failing":
                d.state = "failing"
                log.warning("push %s/%s: %d attempts failed in a row (%s); marked failing, still retrying",
                            c.task_id, c.id, d.attempts, outcome.status)  # fmt: skip
            delay = self._delay(d.attempts, outcome)
            d.next_try = _iso(time.time() + delay)
            if not await self._save(w, force=True):
                return False
            await asyncio.sleep(delay)

    def _delay(self, attempts: int, outcome: Outcome) -> float:
        p = self.policy
        backoff = min(p.retry_max, p.retry_base * 2.0 ** min(attempts - 1, 30))
        delay = backoff * random.uniform(0.5, 1.0)  # jitter: receivers coming back are not hit all at once
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, p.retry_max))
        return delay

    async def _body(self, c: PushConfig, logged: LoggedEvent) -> bytes | None:
        event = logged.event
        if isinstance(event, ArtifactEvent) and not c.artifacts:
            return None
        wire = PUSH[c.dialect]
        task: Task | None = None
        if wire.needs_task and isinstance(event, StatusEvent):
            task = await self.tasks.get(c.task_id)  # 0.x sends the Task: as stored now, with this event's status
        payload = wire.notification(BY_VERSION[c.dialect], c.task_id, logged, task)
        return None if payload is None else json.dumps(payload, separators=(",", ":")).encode()


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"

