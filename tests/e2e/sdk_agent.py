"""An agent built with the official A2A SDK (a2a-sdk 1.3.0), so the CLI client is tried on a server that is not ours.

``python -m tests.e2e.sdk_agent PORT`` serves JSON-RPC 1.0 and 0.3 at ``/rpc`` (not our ``/a2a``: the
client must find it in the card). It echoes the input one word per artifact chunk, 200 ms apart.
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn
from a2a.helpers.proto_helpers import get_message_text, new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
from starlette.applications import Starlette


class WordEcho(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = new_task_from_user_message(context.message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        words = get_message_text(context.message).split()
        for i, word in enumerate(words):
            await asyncio.sleep(0.2)
            last = i == len(words) - 1
            await updater.add_artifact([new_text_part(word + " ")], artifact_id="out", append=i > 0, last_chunk=last)
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None and context.context_id is not None
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def main(port: int) -> None:
    url = f"http://127.0.0.1:{port}/rpc"
    card = AgentCard(
        name="sdk-word-echo",
        description="Echoes the input one word per artifact chunk.",
        version="1",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version=version) for version in ("1.0", "0.3")
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="echo", description="word echo", tags=["echo"])],
    )
    handler = DefaultRequestHandler(agent_executor=WordEcho(), task_store=InMemoryTaskStore(), agent_card=card)
    routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/rpc", enable_v0_3_compat=True)]
    uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]))
