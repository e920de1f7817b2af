"""The Bus: one robust connection, a confirm-mode publisher channel, one channel per consumer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)

from engine.authz import amqp_user
from engine.bus import topology as topo
from engine.bus.batching import run_batches
from engine.bus.consumer import AckPolicy
from engine.bus.delivery import (
    BatchHandler,
    Decoder,
    Delivery,
    Handler,
    RawMessage,
    dead_letter_properties,
)
from engine.bus.errors import BusError
from engine.bus.publisher import Publisher
from engine.bus.topology import DelayTarget, Names, Topology
from engine.messages import codec, registry
from engine.messages.envelope import Envelope
from engine.metrics import DEAD_LETTERED
from engine.settings import Settings

log = logging.getLogger(__name__)


class Subscription:
    """A running consumer; ``cancel()`` stops it and closes its channel."""

    def __init__(self, channel: AbstractChannel, worker: asyncio.Task[None] | None) -> None:
        self.channel = channel
        self._worker = worker

    async def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if not self.channel.is_closed:
            await self.channel.close()


class Bus:
    """Publish and consume clusterbus messages on RabbitMQ."""

    def __init__(
        self,
        settings: Settings,
        *,
        decoder: Decoder | None = None,
        name: str = "clusterbus",
        reconnect_interval_s: float = 2.0,
    ) -> None:
        self.settings = settings
        self.name = name  # shown as connection_name in rabbitmqctl and the management UI
        self._reconnect_interval_s = reconnect_interval_s
        self.topology: Topology = topo.build_topology(settings)
        self._exchange_names = frozenset(spec.name for spec in self.topology.exchanges)
        self._decoder = decoder
        self._connection: AbstractRobustConnection | None = None
        self._publisher: Publisher | None = None
        self._subscriptions: list[Subscription] = []
        self.stale_shards: list[str] = []

    @property
    def names(self) -> Names:
        return self.topology.names

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise BusError("Bus.connect() has not been called")
        return self._connection

    @property
    def publisher(self) -> Publisher:
        if self._publisher is None:
            raise BusError("Bus.connect() has not been called")
        return self._publisher

    async def connect(self) -> None:
        url = self.settings.amqp_url.get_secret_value()
        self._connection = await aio_pika.connect_robust(
            url,
            client_properties={"connection_name": self.name},
            reconnect_interval=self._reconnect_interval_s,
        )
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._publisher = Publisher(channel, self.topology, user_id=amqp_user(url))

    async def close(self) -> None:
        for sub in self._subscriptions:
            await sub.cancel()
        self._subscriptions.clear()
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._publisher = None

    async def declare(self) -> None:
        """Declare the whole topology (idempotent); raises PluginMissing with the fix."""
        # A short-lived plain connection: an unknown exchange type closes the connection
        # (503), which must not disturb the robust one. Everything declared is durable.
        async with await aio_pika.connect(self.settings.amqp_url.get_secret_value()) as conn:
            await topo.declare(await conn.channel(), self.topology)
            stale = await _stale_shards(conn, self.names, self.settings.shards)
        if stale:
            # Still bound to the hash exchange: they take their share of the clusters, and
            # nobody consumes them. See docs/operations.md, "Changing the number of shards".
            log.error(
                "shard queues beyond CLUSTERBUS_SHARDS=%d exist and still receive messages: %s",
                self.settings.shards,
                ", ".join(stale),
            )
        self.stale_shards = stale

    async def delete_topology(self) -> None:
        """Delete every exchange and queue of this prefix (tests, uninstall)."""
        async with await aio_pika.connect(self.settings.amqp_url.get_secret_value()) as conn:
            await topo.delete(await conn.channel(), self.topology)

    # -- publishing ---------------------------------------------------------------------

    async def publish(
        self,
        envelope: Envelope,
        *,
        exchange: str | None,
        routing_key: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Confirmed, persistent; mandatory except on notifications. Raises Unroutable.

        ``exchange``: a full name, a kind ("tasks"), or None for the catalog's exchange of the
        type; ``routing_key`` defaults to the catalog's (the type; notifications add state and
        cluster).
        """
        if exchange is None:
            full = registry.exchange_for(envelope.type, self.names.prefix)
        else:
            full = self.names.exchange(exchange)
        key = routing_key or registry.routing_key_for(envelope)
        await self.publisher.publish(envelope, full, key, headers)

    def knows_exchange(self, exchange: str) -> bool:
        """Whether ``exchange`` (a kind or a full name) is one this topology declares."""
        return self.names.exchange(exchange) in self._exchange_names

    async def publish_raw(
        self, exchange: str, routing_key: str, body: bytes, properties: Mapping[str, Any]
    ) -> None:
        """Re-send stored bytes and AMQP properties (headers included) as they are."""
        await self.publisher.publish_raw(
            self.names.exchange(exchange), routing_key, body, properties
        )

    async def publish_delayed(
        self, message: Envelope | RawMessage, *, target: DelayTarget, delay_ms: int
    ) -> int:
        """Deliver ``message`` to P.<target> after about ``delay_ms``; returns the level used."""
        if isinstance(message, Envelope):
            message = RawMessage(message.type, message.body(), message.amqp_properties())
        return await self.publisher.publish_delayed(message, target, delay_ms)

    async def dead_letter(
        self, delivery: Delivery, reason: str, *, error: str = "Rejected"
    ) -> None:
        """Copy one delivery to P.dlx with why (the caller's handler then returns: it is acked)."""
        message = delivery.message
        props = dead_letter_properties(
            message,
            reason,
            error,
            exchange=delivery.exchange,
            routing_key=delivery.routing_key,
            queue="",
        )
        log.warning("dead-lettering %s (%s): %s", message.message_id, error, reason)
        DEAD_LETTERED.labels(reason=error).inc()
        await self.publisher.publish_raw(self.names.dlx, delivery.routing_key, message.body, props)

    # -- consuming ----------------------------------------------------------------------

    async def consume(
        self,
        queue: str,
        handler: Handler,
        *,
        prefetch: int | None = None,
        decoder: Decoder | None = None,
    ) -> Subscription:
        """Run ``handler`` per delivery, up to ``prefetch`` at once (no order between them)."""

        async def one(deliveries: list[Delivery]) -> None:
            await handler(deliveries[0])

        channel, policy, q = await self._open(queue, prefetch, decoder)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await policy.handle_batch([message], one)

        await q.consume(on_message)
        return self._track(Subscription(channel, None))

    async def consume_batches(
        self,
        queue: str,
        handler: BatchHandler,
        *,
        max_batch: int,
        max_wait_ms: int,
        prefetch: int | None = None,
        decoder: Decoder | None = None,
    ) -> Subscription:
        """Run ``handler`` on batches, one batch at a time, in delivery order."""
        window = max(prefetch or self.settings.prefetch, max_batch)
        channel, policy, q = await self._open(queue, window, decoder)
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        worker = asyncio.create_task(
            run_batches(
                inbox, partial(policy.handle_batch, handler=handler), max_batch, max_wait_ms / 1000
            ),
            name=f"bus-batches-{queue}",
        )

        async def on_message(message: AbstractIncomingMessage) -> None:
            inbox.put_nowait(message)

        await q.consume(on_message)
        return self._track(Subscription(channel, worker))

    async def _open(
        self, queue: str, prefetch: int | None, decoder: Decoder | None
    ) -> tuple[AbstractRobustChannel, AckPolicy, aio_pika.abc.AbstractQueue]:
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=prefetch or self.settings.prefetch)
        q = await channel.get_queue(queue, ensure=True)
        policy = AckPolicy(
            queue=queue,
            publisher=self.publisher,
            topology=self.topology,
            decoder=decoder or self._decoder or default_decoder(self.settings),
            max_bytes=self.settings.max_message_bytes,
            delivery_limit=self.settings.delivery_limit,
        )
        return channel, policy, q

    def _track(self, sub: Subscription) -> Subscription:
        self._subscriptions.append(sub)
        return sub


async def _stale_shards(
    conn: aio_pika.abc.AbstractConnection, names: Names, shards: int, look_ahead: int = 16
) -> list[str]:
    """Shard queues numbered ``shards`` and above that exist (left by a larger shard count)."""
    found = []
    for k in range(shards, shards + look_ahead):
        channel = await conn.channel()
        try:
            await channel.declare_queue(names.shard(k), passive=True)
        except aio_pika.exceptions.ChannelClosed:
            continue  # 404: the normal case
        found.append(names.shard(k))
        await channel.close()
    return found


def default_decoder(settings: Settings) -> Decoder:
    """engine.messages.codec.decode bound to the size limit."""
    return partial(codec.decode, max_bytes=settings.max_message_bytes)
