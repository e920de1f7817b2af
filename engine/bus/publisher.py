"""Confirmed, persistent, mandatory publishing on one robust channel."""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, DeliveryMode

from engine.bus.delivery import H_DELAY_MS, H_DELAY_TARGET, RawMessage
from engine.bus.errors import PublishNacked, Unroutable
from engine.bus.telemetry import publish_span
from engine.bus.topology import DelayTarget, Topology
from engine.messages.envelope import Envelope

log = logging.getLogger(__name__)

_MESSAGE_FIELDS = frozenset(
    {
        "headers", "content_type", "content_encoding", "delivery_mode", "priority",
        "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
        "user_id", "app_id",
    }
)  # fmt: skip
_RECONNECT_WAIT_S = 30.0
# Errors that mean "the channel went away"; a publish is retried once after it is restored.
_CHANNEL_GONE = (
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.ConnectionClosed,
    aiormq.exceptions.ChannelClosed,
    ConnectionError,
)


def build_message(body: bytes, properties: Mapping[str, Any]) -> aio_pika.Message:
    """An aio-pika message from stored properties; persistent unless they say otherwise."""
    unknown = properties.keys() - _MESSAGE_FIELDS
    if unknown:
        raise ValueError(f"unknown AMQP properties: {sorted(unknown)}")
    props = dict(properties)
    props.setdefault("delivery_mode", DeliveryMode.PERSISTENT)
    if isinstance(props.get("timestamp"), str):  # JSON-stored outbox rows keep ISO strings
        props["timestamp"] = datetime.fromisoformat(props["timestamp"])
    return aio_pika.Message(body, **props)


class Publisher:
    """Publishes on a confirm-mode channel opened with ``on_return_raises=True``."""

    def __init__(
        self, channel: AbstractChannel, topology: Topology, user_id: str | None = None
    ) -> None:
        self._channel = channel
        # The connection's user, stamped as AMQP user_id so consumers know who sent a
        # message (the broker checks it); see engine/authz.py.
        self._user_id = user_id
        self._topology = topology
        self._exchanges: dict[str, AbstractExchange] = {}
        n = topology.names
        # Nobody has to listen to notifications: publishing there is not mandatory.
        self._optional = frozenset({n.notifications})

    async def publish_message(
        self,
        exchange: str,
        routing_key: str,
        message: aio_pika.Message,
        *,
        mandatory: bool | None = None,
    ) -> None:
        """Publish and wait for the broker's confirm; retry once if the channel was lost."""
        if mandatory is None:
            mandatory = exchange not in self._optional
        if message.user_id is None:
            message.user_id = self._user_id
        with publish_span(exchange, routing_key, message):
            try:
                await self._publish_once(exchange, routing_key, message, mandatory)
            except _CHANNEL_GONE:
                log.warning("publish to %s interrupted, waiting for the channel", exchange)
                await self._wait_ready()
                await self._publish_once(exchange, routing_key, message, mandatory)

    async def _publish_once(
        self, exchange: str, routing_key: str, message: aio_pika.Message, mandatory: bool
    ) -> None:
        target = self._exchanges.get(exchange)
        if target is None:
            target = await self._channel.get_exchange(exchange, ensure=False)
            self._exchanges[exchange] = target
        try:
            await target.publish(message, routing_key, mandatory=mandatory)
        except aiormq.exceptions.PublishError as exc:
            raise Unroutable(exchange, routing_key) from exc
        except aiormq.exceptions.DeliveryError as exc:
            raise PublishNacked(
                f"broker refused {message.type} on {exchange}/{routing_key}"
            ) from exc

    async def _wait_ready(self) -> None:
        ready = getattr(self._channel, "ready", None)  # only robust channels recover
        if ready is None:
            raise aiormq.exceptions.ChannelInvalidStateError("channel closed")
        await asyncio.wait_for(ready(), _RECONNECT_WAIT_S)

    async def publish(
        self,
        envelope: Envelope,
        exchange: str,
        routing_key: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        props = envelope.amqp_properties()
        if headers:
            props["headers"] = {**props["headers"], **headers}
        message = build_message(envelope.body(), props)
        await self.publish_message(exchange, routing_key or envelope.type, message)

    async def publish_raw(
        self, exchange: str, routing_key: str, body: bytes, properties: Mapping[str, Any]
    ) -> None:
        await self.publish_message(exchange, routing_key, build_message(body, properties))

    async def publish_delayed(self, raw: RawMessage, target: DelayTarget, delay_ms: int) -> int:
        """Park ``raw`` in the delay level for ``delay_ms``; returns the level used."""
        level = delay_level(self._topology.delay_levels_ms, delay_ms)
        props = dict(raw.properties)
        props["headers"] = {
            **(props.get("headers") or {}),
            H_DELAY_TARGET: target,
            H_DELAY_MS: str(level),
        }
        message = build_message(raw.body, props)
        await self.publish_message(self._topology.names.delay, raw.routing_key, message)
        return level


def delay_level(levels: tuple[int, ...], delay_ms: int) -> int:
    """The smallest level >= delay_ms, or the largest level. ``levels`` is sorted."""
    i = bisect.bisect_left(levels, delay_ms)
    return levels[min(i, len(levels) - 1)]
