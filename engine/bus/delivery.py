"""What a consumer handler receives, and the header names the bus writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from opentelemetry.context import Context

from engine.messages.envelope import Envelope

# Headers the bus writes on dead-lettered and retried copies.
H_REASON = "x-clusterbus-reason"
H_ERROR = "x-clusterbus-error"
H_ORIGINAL_EXCHANGE = "x-clusterbus-original-exchange"
H_ORIGINAL_ROUTING_KEY = "x-clusterbus-original-routing-key"
H_QUEUE = "x-clusterbus-queue"
H_ATTEMPT = "x-clusterbus-attempt"
H_DELAY_TARGET = "x-delay-target"
H_DELAY_MS = "x-delay-ms"
MAX_REASON = 500  # characters of a dead-letter reason kept in its header

Decoder = Callable[[bytes, dict[str, Any]], Envelope]
"""Turns a body and its AMQP properties into an Envelope, or raises (the message is poison)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One decoded message and where it came from."""

    envelope: Envelope
    message: AbstractIncomingMessage
    routing_key: str
    exchange: str
    redelivered: bool
    headers: Mapping[str, Any]
    # The context of this delivery's CONSUMER span: the parent of the work done on it (batch
    # handlers get several deliveries at once, so it cannot simply be the current context).
    trace_context: Context | None = None

    @property
    def attempt(self) -> int:
        """How many times a handler already failed on this message (0 on first delivery)."""
        value = self.headers.get(H_ATTEMPT, 0)
        return value if isinstance(value, int) else 0


Handler = Callable[[Delivery], Awaitable[None]]
BatchHandler = Callable[[list[Delivery]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message already encoded: what the outbox stores and the relay re-sends as is."""

    routing_key: str
    body: bytes
    properties: Mapping[str, Any]


def properties_of(message: AbstractIncomingMessage) -> dict[str, Any]:
    """The AMQP properties a decoder looks at, in the shape of Envelope.amqp_properties()."""
    return {
        "message_id": message.message_id,
        "type": message.type,
        "timestamp": message.timestamp,
        "correlation_id": message.correlation_id,
        "content_type": message.content_type,
        "app_id": message.app_id,
        "user_id": message.user_id,
        "headers": message.headers,
        "routing_key": message.routing_key,
    }


def copy_properties(message: AbstractIncomingMessage) -> dict[str, Any]:
    """Properties for re-publishing a copy of ``message`` (headers made encodable)."""
    return {
        "message_id": message.message_id,
        "type": message.type,
        "timestamp": message.timestamp,
        "correlation_id": message.correlation_id,
        "content_type": message.content_type,
        "content_encoding": message.content_encoding,
        "app_id": message.app_id,
        "headers": encodable(dict(message.headers)),
    }


def dead_letter_properties(
    message: AbstractIncomingMessage,
    reason: str,
    error: str,
    *,
    exchange: str,
    routing_key: str,
    queue: str,
) -> dict[str, Any]:
    """Properties of the copy of ``message`` sent to P.dlx: its own, plus why and whence."""
    props = copy_properties(message)
    props["headers"].update(
        dead_letter_headers(reason, error, exchange=exchange, routing_key=routing_key, queue=queue)
    )
    return props


def dead_letter_headers(
    reason: str, error: str, *, exchange: str, routing_key: str, queue: str
) -> dict[str, str]:
    """The headers that say why a message was dead-lettered and where it came from."""
    return {
        H_REASON: reason[:MAX_REASON],
        H_ERROR: error,
        H_ORIGINAL_EXCHANGE: exchange,
        H_ORIGINAL_ROUTING_KEY: routing_key,
        H_QUEUE: queue,
    }


def encodable(value: Any) -> Any:
    """Header values as pamqp can encode them again (it decodes invalid UTF-8 to bytes)."""
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, dict):
        return {k: encodable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encodable(v) for v in value]
    if isinstance(value, str | int | float | bool | datetime | bytearray) or value is None:
        return value
    return str(value)
