"""Billing channels as the service offers them: parse and check what a caller sends, then the Ledger.

    channels/open | OpenChannel {deposit, tokenRate, model?, expiresIn?} ─► Channel (amounts: decimal strings)
    channels/get | GetChannel {id}  ·  channels/list | ListChannels {}  (the caller's own channels)
    channels/close | CloseChannel {id} ─► cancel the channel's running tasks ─► Receipt (the same on every call)
    a send with metadata.channel ─► ``check`` before any work: unknown, another caller's, closed, expired or
                                    unable to pay one token ─► -32602 naming ``metadata.channel``
    every ``sweep_s`` ─► channels past ``expiresAt`` close themselves (state expired), tasks first

Amounts are integers in the currency's base units. On the wire they are decimal strings (a JSON integer is
accepted too); zero, negative, fractional or absurd (> 10^30) amounts are -32602 naming the field.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from a2a_server import extensions
from a2a_server.errors import ChannelClosed, ChannelNotFound, InvalidParams, TaskNotCancelable, TaskNotFound
from a2a_server.ledger import EXTENSION_URI, MAX_AMOUNT, Channel, ChannelState, Ledger, Receipt, iso_at
from a2a_server.model import new_id, utc_now

log = logging.getLogger("a2a_server.billing")

# the longest a channel may stay open: a year (a longer one is a mistake, not a plan)
MAX_EXPIRES_IN = 366 * 86_400
_KNOWN = ("deposit", "tokenRate", "model", "expiresIn")


def amount(params: Mapping[str, Any], name: str) -> int:
    """A positive integer amount in base units from a decimal string (or a JSON integer)."""
    raw = params.get(name)
    if raw is None:
        raise InvalidParams(f"Invalid params: {name} is required (a decimal string of base units)", param=name)
    if isinstance(raw, bool) or not isinstance(raw, (str, int)) or (isinstance(raw, str) and not raw.isdigit()):
        raise InvalidParams(
            f"Invalid params: {name} must be a decimal string of a whole number of base units, got {raw!r}",
            param=name,
        )
    value = int(raw)
    if value <= 0:
        raise InvalidParams(f"Invalid params: {name} must be positive, got {raw!r}", param=name)
    if value > MAX_AMOUNT:
        raise InvalidParams(f"Invalid params: {name} must be at most 10^30 base units, got {raw!r}", param=name)
    return value


def _expires_in(params: Mapping[str, Any]) -> float | None:
    raw = params.get("expiresIn")
    if raw is None:
        return None
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            raw = float(raw.removesuffix("s"))  # ProtoJSON durations are "30s"
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw <= MAX_EXPIRES_IN:
        raise InvalidParams(
            f"Invalid params: expiresIn must be a positive number of seconds, at most {MAX_EXPIRES_IN}, got {raw!r}",
            param="expiresIn",
        )
    return float(raw)


def _channel_id(params: Any) -> str:
    raw = params.get("id") if isinstance(params, dict) else None
    if not isinstance(raw, str) or not raw:
        raise InvalidParams("Invalid params: id (the channel's id) is required", param="id")
    return raw


class Channels:
    """The billing half of the service. ``cancel(task_id)`` is the service's own cancel (tasks end canceled)."""

    def __init__(self, ledger: Ledger, cancel: Callable[[str], Awaitable[object]], *, sweep_s: float = 1.0) -> None:
        self.ledger = ledger
        self._cancel = cancel
        self.sweep_s = sweep_s
        self._closing: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def open(self, params: Any, owner: str) -> Channel:
        if not isinstance(params, dict):
            raise InvalidParams("Invalid params: expected an object {deposit, tokenRate, model?, expiresIn?}")
        unknown = sorted(set(params) - {*_KNOWN, "tenant"})
        if unknown:
            raise InvalidParams(f"Invalid params: unknown field {unknown[0]!r}; known: {', '.join(_KNOWN)}",
                                param=unknown[0])  # fmt: skip
        deposit, rate = amount(params, "deposit"), amount(params, "tokenRate")
        model = params.get("model")
        if model is not None and (not isinstance(model, str) or not model):
            raise InvalidParams(f"Invalid params: model must be a model id, got {model!r}", param="model")
        expires_in = _expires_in(params)
        now = time.time()
        channel = Channel(
            id=new_id(), owner=owner, deposit=deposit, token_rate=rate, created_at=iso_at(now), model=model,
            expires_at=iso_at(now + expires_in) if expires_in is not None else None,
        )  # fmt: skip
        await self.ledger.open(channel)
        log.info("channel %s opened: deposit %d, rate %d per token", channel.id, deposit, rate)
        self._watch_expiry()
        return channel

    async def get(self, params: Any, owner: str | None) -> Channel:
        return await self._find(_channel_id(params), owner, "id")

    async def list(self, owner: str | None) -> builtins.list[Channel]:
        await self.sweep()
        return await self.ledger.list(owner=owner)

    async def _find(self, channel_id: str, owner: str | None, param: str) -> Channel:
        channel = await self.ledger.get(channel_id, owner=owner)
        if channel is None:
            raise ChannelNotFound(channel_id, param)
        if channel.state == ChannelState.OPEN and channel.expired(time.time()):
            await self._end(channel, ChannelState.EXPIRED)
        return channel

    async def close(self, params: Any, owner: str | None) -> Receipt:
        channel = await self._find(_channel_id(params), owner, "id")
        return await self._end(channel, ChannelState.CLOSED)

    async def _end(self, channel: Channel, state: ChannelState) -> Receipt:
        """Stop the channel's running tasks (canceled), then close it; once closed, its receipt."""
        async with self._locks.setdefault(channel.id, asyncio.Lock()):
            if channel.state == ChannelState.OPEN:
                self._closing.add(channel.id)  # no new task from here on
                for task_id in self.ledger.tasks_of(channel.id):
                    with contextlib.suppress(TaskNotCancelable, TaskNotFound):
                        await self._cancel(task_id)
                receipt = await self.ledger.close(channel.id, state, utc_now())
                self._closing.discard(channel.id)
                log.info("channel %s %s: charged %d of %d", channel.id, state.value, channel.charged, channel.deposit)
                return receipt
        return await self.ledger.receipt(channel.id)

    # ------------------------------------------------------------------ sends

    async def check(self, metadata: dict[str, Any], owner: str) -> Channel | None:
        """The open channel a send names (``metadata.channel``), before any work; None when it names none."""
        raw = metadata.get("channel")
        if raw is None:
            return None
        param = "metadata.channel"
        if not isinstance(raw, str) or not raw:
            raise InvalidParams(f"Invalid params: {param} must be a channel id, got {raw!r}", param=param)
        channel = await self._find(raw, owner, param)
        if channel.state != ChannelState.OPEN or channel.id in self._closing:
            state = channel.state.value if channel.state != ChannelState.OPEN else "closing"
            raise ChannelClosed(f"Invalid params: {param}: channel {raw} is {state} and pays for nothing more",
                                {"channelId": raw, "state": state}, param=param, cause="channel_closed")  # fmt: skip
        available = channel.deposit - channel.charged - channel.reserved
        if available < channel.token_rate:
            raise ChannelClosed(
                f"Invalid params: {param}: channel {raw} cannot pay for one token (balance {available}, "
                f"tokenRate {channel.token_rate}); open another",
                {"channelId": raw, "balance": str(available)}, param=param, cause="budget_exhausted",
            )  # fmt: skip
        extensions.used(EXTENSION_URI)  # the response says the request was billed, activated or not
        model = metadata.get("model")
        if channel.model is not None:
            if model is not None and model != channel.model:
                raise InvalidParams(f"Invalid params: metadata.model: channel {raw} pays for {channel.model} only",
                                    param="metadata.model")  # fmt: skip
            metadata["model"] = channel.model
        return channel

    async def bind(self, channel: Channel, task_id: str) -> None:
        await self.ledger.bind(channel.id, task_id)

    # ------------------------------------------------------------------ expiry

    def start(self) -> None:
        """Watch the expiry of the channels already open (after a restart): the sweep runs while any has one."""
        self._watch_expiry()

    def _watch_expiry(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            try:
                if not await self.sweep():
                    return  # nothing left to expire: the next open starts the sweep again
            except Exception:  # a failed sweep must not stop the next one
                log.exception("channel expiry sweep failed")

    async def sweep(self) -> int:
        """Close every open channel past its expiry (tasks first); the number of channels still to watch."""
        now, waiting = time.time(), 0
        for channel in await self.ledger.list():
            if channel.state != ChannelState.OPEN or channel.expires_at is None:
                continue
            if channel.expired(now):
                await self._end(channel, ChannelState.EXPIRED)
            else:
                waiting += 1
        return waiting

    def close_sweeper(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
