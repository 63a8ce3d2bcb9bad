"""The Redis store's queries over many tasks: listing, the unsettled ones, retention (see redis_lua.py's keys).

Listing scans the creation index newest first and filters in this process: O(tasks) per page, fine for tens of
thousands of tasks; a secondary index per context and state is the next step when it is not.
"""

from __future__ import annotations

import builtins

from a2a_server.backends.redis_conn import Client, guard
from a2a_server.errors import InvalidParams
from a2a_server.model import Task, TaskState
from a2a_server.ports import TaskPage

PAGE = 1000


class RedisIndex:
    """``list``, ``unsettled`` and ``purge_finished_before`` of ``RedisStore`` (a base class of it)."""

    redis: Client
    address: str
    p: str

    def hkey(self, task_id: str) -> str:
        return f"{self.p}:t:{task_id}"

    def lkey(self, task_id: str) -> str:
        return f"{self.p}:l:{task_id}"

    @property
    def gkey(self) -> str:
        return f"{self.p}:g"

    async def list(
        self,
        *,
        owner: str | None = None,
        context_id: str | None = None,
        state: TaskState | None = None,
        updated_after: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> TaskPage:
        matching: list[str] = []
        with guard(self.address, "list tasks"):
            ids = [i.decode() for i in await self.redis.zrevrange(f"{self.p}:all", 0, -1)]
            for start in range(0, len(ids), PAGE):
                chunk = ids[start : start + PAGE]
                async with self.redis.pipeline(transaction=False) as pipe:
                    for task_id in chunk:
                        pipe.hmget(self.hkey(task_id), ["o", "c", "s", "ts"])
                    rows = await pipe.execute()
                for task_id, (o, c, s, ts) in zip(chunk, rows, strict=True):
                    if o is None:
                        continue  # expired after its retention
                    if ((owner is None or o.decode() == owner) and (context_id is None or c.decode() == context_id)
                            and (state is None or s.decode() == state.value)
                            and (updated_after is None or ts.decode() > updated_after)):  # fmt: skip
                        matching.append(task_id)
            first = 0
            if page_token:
                if page_token not in matching:
                    raise InvalidParams(f"Invalid params: pageToken {page_token!r} is not from a previous page",
                                        param="pageToken")  # fmt: skip
                first = matching.index(page_token)
            page = matching[first : first + page_size]
            rest = matching[first + page_size : first + page_size + 1]
            async with self.redis.pipeline(transaction=False) as pipe:
                for task_id in page:
                    pipe.hget(self.hkey(task_id), "j")
                blobs = await pipe.execute() if page else []
        tasks = [Task.model_validate_json(b) for b in blobs if b is not None]
        return TaskPage(tasks=tasks, next_page_token=rest[0] if rest else "", total_size=len(matching))

    async def unsettled(self) -> builtins.list[Task]:
        with guard(self.address, "list unsettled tasks"):
            ids = await self.redis.zrange(f"{self.p}:open", 0, -1)
            async with self.redis.pipeline(transaction=False) as pipe:
                for task_id in ids:
                    pipe.hget(self.hkey(task_id.decode()), "j")
                blobs = await pipe.execute() if ids else []
        return [Task.model_validate_json(b) for b in blobs if b is not None]

    async def purge_finished_before(self, timestamp: str) -> int:
        done_key = f"{self.p}:done"
        purged = 0
        with guard(self.address, "purge finished tasks"):
            members = await self.redis.zrangebylex(done_key, "-", "(" + timestamp)
            for member in members:
                ts, _, raw_id = member.partition(b"\0")
                task_id = raw_id.decode()
                s, cur_ts = await self.redis.hmget(self.hkey(task_id), ["s", "ts"])
                await self.redis.zrem(done_key, member)
                if s is None or not TaskState(s.decode()).terminal or cur_ts != ts:
                    continue
                cursors = [f[b"g"].decode() for _, f in await self.redis.xrange(self.lkey(task_id))]
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.delete(self.hkey(task_id), self.lkey(task_id))
                    pipe.zrem(f"{self.p}:all", task_id)
                    pipe.zrem(f"{self.p}:open", task_id)
                    for start in range(0, len(cursors), PAGE):
                        pipe.xdel(self.gkey, *[f"0-{c}" for c in cursors[start : start + PAGE]])
                    await pipe.execute()
                purged += 1
        return purged
