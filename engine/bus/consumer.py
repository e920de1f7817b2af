"""The ack policy, in one place.

For every delivery on a queue:

- decoding fails (not JSON, not an envelope, unknown type, invalid payload, over
  ``max_message_bytes``): a copy goes to P.dlx with the reason headers, confirmed, then the
  original is acked. Poison never loops and never blocks the messages behind it.
- a shard queue receives a message without the ``ce-subject`` header (it landed on the
  consistent-hash exchange's "no value" shard): it is re-published to P.engine with the header
  taken from the envelope, so it reaches its cluster's shard, then acked.
- the handler returns: ack (a batch: one ``multiple`` ack up to its last message).
- the handler raises ``MessageError``: dead-letter with its reason, ack.
- the handler raises anything else: the copy goes back through the delay queue with
  ``x-clusterbus-attempt`` + 1 (the delay grows with the attempt), ack; once the attempts
  reach ``Settings.delivery_limit`` it is dead-lettered with "handler error: <Name>: <msg>".
- in consume_batches a handler error applies to every message of the batch.
- if the dead-letter copy cannot be published while the channel is up (unroutable, nacked),
  the original is rejected without requeue so the queue's own x-dead-letter-exchange keeps it.
- if the channel is gone, nothing is acked: the broker redelivers after the reconnect.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span

from engine.bus import telemetry
from engine.bus.delivery import (
    H_ATTEMPT,
    BatchHandler,
    Decoder,
    Delivery,
    RawMessage,
    copy_properties,
    dead_letter_properties,
    properties_of,
)
from engine.bus.errors import BusError
from engine.bus.publisher import Publisher
from engine.bus.topology import HASH_HEADER, DelayTarget, Topology
from engine.messages.errors import MessageError, TooLarge
from engine.metrics import DEAD_LETTERED, RETRIES

log = logging.getLogger(__name__)

Outcome = Literal["ack", "settled"]  # settled: already rejected, must not be acked again


class AckPolicy:
    """Decodes, runs a handler and settles the deliveries of one queue."""

    def __init__(
        self,
        *,
        queue: str,
        publisher: Publisher,
        topology: Topology,
        decoder: Decoder,
        max_bytes: int,
        delivery_limit: int,
    ) -> None:
        self._queue = queue
        self._publisher = publisher
        self._names = topology.names
        self._levels = topology.delay_levels_ms
        self._decoder = decoder
        self._max_bytes = max_bytes
        self._limit = delivery_limit
        self._reroute = queue in topology.shard_queues
        n = topology.names
        self._targets: dict[str, DelayTarget] = {
            n.tasks: "tasks",
            n.events: "events",
            n.commands: "events",  # the engine takes commands and events from the same shards
            n.engine: "events",  # a copy re-routed to its shard (see _reroute_to_shard)
        }

    async def handle_batch(
        self, messages: list[AbstractIncomingMessage], handler: BatchHandler
    ) -> None:
        """Run ``handler`` on the decodable messages of ``messages`` and settle all of them."""
        # Messages buffered before a reconnect belong to a dead channel: the broker redelivers them.
        live = [m for m in messages if not m.channel.is_closed]
        if not live:
            return
        try:
            outcomes = await self._process(live, handler)
            await _settle(live, outcomes)
        except Exception:
            log.exception("queue %s: batch of %d left unacked", self._queue, len(live))

    async def _process(
        self, messages: list[AbstractIncomingMessage], handler: BatchHandler
    ) -> list[Outcome]:
        spans = [telemetry.start_consume(self._queue, m) for m in messages]
        try:
            return await self._traced_process(messages, spans, handler)
        finally:
            for span in spans:
                span.end()

    async def _traced_process(
        self, messages: list[AbstractIncomingMessage], spans: list[Span], handler: BatchHandler
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        deliveries: list[Delivery] = []
        slots: list[int] = []
        traced = telemetry.tracing_enabled()
        for m, span in zip(messages, spans, strict=True):
            # Traced, a poison message's dead-letter publish is a child of this span.
            scope: AbstractContextManager[Any] = (
                trace.use_span(span, end_on_exit=False) if traced else nullcontext()
            )
            with scope:
                prepared = await self._prepare(m, telemetry.context_of(span))
            if isinstance(prepared, Delivery):
                slots.append(len(outcomes))
                deliveries.append(prepared)
                outcomes.append("ack")
            else:
                outcomes.append(prepared)
        if not deliveries:
            return outcomes
        # One delivery (consume()): its span is the current one while the handler runs. A batch
        # handler finds each delivery's context in Delivery.trace_context instead.
        current = spans[slots[0]] if len(deliveries) == 1 else trace.INVALID_SPAN
        try:
            with trace.use_span(current, end_on_exit=False):
                await handler(deliveries)
        except MessageError as exc:
            for i, d in zip(slots, deliveries, strict=True):
                with trace.use_span(spans[i], end_on_exit=False):
                    outcomes[i] = await self.dead_letter(d.message, exc.reason, type(exc).__name__)
        except Exception as exc:
            for i, d in zip(slots, deliveries, strict=True):
                with trace.use_span(spans[i], end_on_exit=False):
                    telemetry.mark_error(spans[i], type(exc).__name__)
                    outcomes[i] = await self._retry(d, exc)
        return outcomes

    async def _prepare(
        self, message: AbstractIncomingMessage, context: Context
    ) -> Delivery | Outcome:
        """The decoded delivery, or the outcome of dealing with it here (poison, re-route)."""
        body = message.body
        if len(body) > self._max_bytes:
            reason = f"body of {len(body)} bytes exceeds max_message_bytes={self._max_bytes}"
            return await self.dead_letter(message, reason, TooLarge.__name__)
        try:
            envelope = self._decoder(body, properties_of(message))
        except MessageError as exc:
            return await self.dead_letter(message, exc.reason, type(exc).__name__)
        except Exception as exc:  # a decoder bug must not turn one message into a crash loop
            return await self.dead_letter(message, "undecodable message", type(exc).__name__)
        headers = message.headers
        if self._reroute and not headers.get(HASH_HEADER):
            return await self._reroute_to_shard(message, envelope.subject)
        return Delivery(
            envelope=envelope,
            message=message,
            routing_key=message.routing_key or "",
            exchange=message.exchange or "",
            redelivered=bool(message.redelivered),
            headers=headers,
            trace_context=context,
        )

    async def _reroute_to_shard(self, message: AbstractIncomingMessage, subject: str) -> Outcome:
        props = copy_properties(message)
        props["headers"][HASH_HEADER] = subject
        rk = message.routing_key or ""
        await self._publisher.publish_raw(self._names.engine, rk, message.body, props)
        log.info(
            "queue %s: re-routed %s without %s header", self._queue, message.message_id, HASH_HEADER
        )
        return "ack"

    async def dead_letter(
        self, message: AbstractIncomingMessage, reason: str, error: str
    ) -> Outcome:
        """Publish a copy to P.dlx with why, confirmed; the caller then acks the original."""
        rk = message.routing_key or ""
        props = dead_letter_properties(
            message,
            reason,
            error,
            exchange=message.exchange or "",
            routing_key=rk,
            queue=self._queue,
        )
        log.warning(
            "queue %s: dead-lettering %s (%s): %s", self._queue, message.message_id, error, reason
        )
        telemetry.mark_error(trace.get_current_span(), error)
        DEAD_LETTERED.labels(reason=error).inc()
        try:
            await self._publisher.publish_raw(self._names.dlx, rk, message.body, props)
        except BusError:
            log.exception("queue %s: dead-letter copy refused, rejecting the original", self._queue)
            await message.nack(requeue=False)
            return "settled"
        return "ack"

    async def _retry(self, delivery: Delivery, exc: Exception) -> Outcome:
        """Send the message round the delay queue again, or dead-letter it after the limit."""
        attempt = delivery.attempt + 1
        reason = f"handler error: {type(exc).__name__}: {exc}"
        target = self._targets.get(delivery.exchange)
        message = delivery.message
        if attempt >= self._limit or target is None:
            return await self.dead_letter(message, reason, type(exc).__name__)
        log.warning(
            "queue %s: %s attempt %d failed: %s", self._queue, message.message_id, attempt, reason
        )
        props = copy_properties(message)
        props["headers"][H_ATTEMPT] = attempt
        raw = RawMessage(delivery.routing_key, message.body, props)
        RETRIES.labels(reason="handler_error", type=message.type or "").inc()
        delay = self._levels[min(attempt, len(self._levels)) - 1]
        try:
            await self._publisher.publish_delayed(raw, target, delay)
        except BusError:
            return await self.dead_letter(message, reason, type(exc).__name__)
        return "ack"


async def _settle(messages: list[AbstractIncomingMessage], outcomes: list[Outcome]) -> None:
    """One multiple ack when every message is to be acked, else one ack per message."""
    if all(o == "ack" for o in outcomes):
        await messages[-1].ack(multiple=len(messages) > 1)
        return
    for message, outcome in zip(messages, outcomes, strict=True):
        if outcome == "ack":
            await message.ack()
