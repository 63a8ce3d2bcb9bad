"""``Control`` on Redis pub/sub: a runner subscribes to ``<p>:cancel:<task>`` for each task it runs; ``cancel``
publishes there, and the number of subscribers that received it says whether a runner holds the task.

One pub/sub connection per process, whatever the number of tasks. Delivery is immediate (well under the 100 ms
bound). Pub/sub is fire-and-forget, so a cancel also leaves a key ``<p>:cancelled:<task>`` (an hour): a runner
checks it for each task right after subscribing to it, and for every watched task after a reconnection, so a
cancel published while its connection was being lost or made still arrives. A cancel that finds no subscriber at
all: the service takes the task over and writes ``canceled`` itself, and the run's next write is fenced
(``LeaseLost``), so it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio.client import PubSub

from a2a_server.backends.redis_conn import Client, dedicated_client, guard

log = logging.getLogger("a2a_server.redis")


class RedisControl:
    def __init__(self, url: str, name: str, commands: Client, prefix: str, address: str) -> None:
        self.url, self.name, self.redis, self.p, self.address = url, name, commands, prefix, address
        self._watchers: dict[str, Callable[[], None]] = {}
        self._client: Client | None = None
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._ops: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    def channel(self, task_id: str) -> str:
        return f"{self.p}:cancel:{task_id}"

    def watch(self, task_id: str, on_cancel: Callable[[], None]) -> None:
        self._watchers[task_id] = on_cancel
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen_forever())
        self._ops.put_nowait(("subscribe", task_id))

    def unwatch(self, task_id: str, on_cancel: Callable[[], None]) -> None:
        if self._watchers.get(task_id) is on_cancel:
            del self._watchers[task_id]
            self._ops.put_nowait(("unsubscribe", task_id))

    async def cancel(self, task_id: str) -> bool:
        on_cancel = self._watchers.get(task_id)
        if on_cancel is not None:  # this process runs it
            on_cancel()
            return True
        with guard(self.address, "deliver a cancel"):
            await self.redis.set(self.mark(task_id), "1", ex=3600)
            return int(await self.redis.publish(self.channel(task_id), "cancel")) > 0

    def mark(self, task_id: str) -> str:
        return f"{self.p}:cancelled:{task_id}"

    async def _check_marks(self, task_ids: list[str]) -> None:
        """Cancels left while this process was not subscribed to the task (yet, or any more)."""
        if not task_ids:
            return
        marks = await self.redis.mget([self.mark(t) for t in task_ids])
        for task_id, mark in zip(task_ids, marks, strict=True):
            on_cancel = self._watchers.get(task_id)
            if mark is not None and on_cancel is not None:
                on_cancel()

    async def _connect(self) -> PubSub:
        # a new client each time: a pub/sub connection that failed is dropped whole, never waited for
        await self._drop()
        self._client = dedicated_client(self.url, self.name)
        pubsub: PubSub = self._client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(f"{self.p}:control")  # keeps the connection subscribed when no task is watched
        channels = [self.channel(t) for t in self._watchers]
        if channels:
            await pubsub.subscribe(*channels)
        return pubsub

    async def _listen_forever(self) -> None:
        delay = 0.05
        while True:
            try:
                self._pubsub = pubsub = await self._connect()
                await self._check_marks(list(self._watchers))
                delay = 0.05
                while True:
                    while not self._ops.empty():
                        op, task_id = self._ops.get_nowait()
                        if op == "subscribe" and task_id in self._watchers:
                            await pubsub.subscribe(self.channel(task_id))
                            await self._check_marks([task_id])
                        elif op == "unsubscribe" and task_id not in self._watchers:
                            await pubsub.unsubscribe(self.channel(task_id))
                    message = await pubsub.get_message(timeout=0.01)
                    if message is not None and message.get("type") == "message":
                        task_id = message["channel"].decode().removeprefix(f"{self.p}:cancel:")
                        on_cancel = self._watchers.get(task_id)
                        if on_cancel is not None:
                            on_cancel()
            except Exception as exc:  # unreachable, LOADING after a restart, anything: never end the listener
                log.warning("control: lost Redis (%s); reconnecting in %.2f s", exc, delay)
                await self._drop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._drop()
        self._watchers.clear()

    async def _drop(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose(close_connection_pool=True)
            self._client = None
