"""Confirmed, persistent, mandatory publishing on one robust channel."""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiormq
from aio_pika.abc import AbstractChannel, DeliveryMode
from aio_pika.message import encode_expiration
from aiormq import spec

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


def build_properties(properties: Mapping[str, Any]) -> spec.Basic.Properties:
    """The AMQP basic properties of stored ``properties`` (aio-pika names); persistent unless
    they say otherwise.

    Built straight for the wire: an aio-pika Message per publish costs the engine more CPU than
    anything else it does per message except the AMQP framing itself.
    """
    unknown = properties.keys() - _MESSAGE_FIELDS
    if unknown:
        raise ValueError(f"unknown AMQP properties: {sorted(unknown)}")
    get = properties.get
    delivery_mode = get("delivery_mode")
    return spec.Basic.Properties(
        content_type=get("content_type"),
        content_encoding=get("content_encoding"),
        headers=dict(get("headers") or {}),
        delivery_mode=int(DeliveryMode.PERSISTENT if delivery_mode is None else delivery_mode),
        priority=get("priority"),
        correlation_id=get("correlation_id"),
        reply_to=get("reply_to"),
        expiration=encode_expiration(get("expiration")),
        message_id=get("message_id"),
        timestamp=_timestamp(get("timestamp")),
        message_type=get("type"),
        user_id=get("user_id"),
        app_id=get("app_id"),
    )


def _timestamp(value: datetime | int | float | str | None) -> datetime | None:
    """Outbox rows keep the timestamp as epoch seconds or ISO text (JSON-stored)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    return value


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
        n = topology.names
        # Nobody has to listen to notifications: publishing there is not mandatory.
        self._optional = frozenset({n.notifications})

    async def send(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        mandatory: bool | None = None,
    ) -> None:
        """Publish and wait for the broker's confirm; retry once if the channel was lost.

        ``mandatory`` defaults to true except on the notifications exchange.
        """
        if mandatory is None:
            mandatory = exchange not in self._optional
        if properties.user_id is None:
            properties.user_id = self._user_id
        with publish_span(exchange, routing_key, properties, len(body)):
            try:
                await self._send_once(exchange, routing_key, body, properties, mandatory)
            except _CHANNEL_GONE:
                log.warning("publish to %s interrupted, waiting for the channel", exchange)
                await self._wait_ready()
                await self._send_once(exchange, routing_key, body, properties, mandatory)

    async def _send_once(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        mandatory: bool,
    ) -> None:
        if self._channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError(f"{self._channel!r} closed")
        channel = await self._channel.get_underlay_channel()
        try:
            await channel.basic_publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=mandatory,
            )
        except aiormq.exceptions.PublishError as exc:
            raise Unroutable(exchange, routing_key) from exc
        except aiormq.exceptions.DeliveryError as exc:
            raise PublishNacked(
                f"broker refused {properties.message_type} on {exchange}/{routing_key}"
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
        await self.publish_raw(exchange, routing_key or envelope.type, envelope.body(), props)

    async def publish_raw(
        self, exchange: str, routing_key: str, body: bytes, properties: Mapping[str, Any]
    ) -> None:
        await self.send(exchange, routing_key, body, build_properties(properties))

    async def publish_delayed(self, raw: RawMessage, target: DelayTarget, delay_ms: int) -> int:
        """Park ``raw`` in the delay level for ``delay_ms``; returns the level used."""
        level = delay_level(self._topology.delay_levels_ms, delay_ms)
        props = dict(raw.properties)
        props["headers"] = {
            **(props.get("headers") or {}),
            H_DELAY_TARGET: target,
            H_DELAY_MS: str(level),
        }
        await self.publish_raw(self._topology.names.delay, raw.routing_key, raw.body, props)
        return level


def delay_level(levels: tuple[int, ...], delay_ms: int) -> int:
    """The smallest level >= delay_ms, or the largest level. ``levels`` is sorted."""
    i = bisect.bisect_left(levels, delay_ms)
    return levels[min(i, len(levels) - 1)]
