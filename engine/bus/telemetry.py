"""Tracing middleware of the bus: PRODUCER spans on publish, CONSUMER spans on receipt.

The W3C trace context travels in the AMQP headers (``traceparent``/``tracestate``), injected by
hand: the aio-pika instrumentation does not follow the current messaging conventions (see
measured-facts.md). Span names and attributes follow the OpenTelemetry messaging conventions
for RabbitMQ: ``{operation} {exchange}:{routing key}``.

Which parent a publish gets: the current span if there is one (a handler publishing its events,
a consumer re-publishing a retry); otherwise the context stored in the message's own headers (the
outbox relay re-sending a committed row, possibly after a crash, under its original transition).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from aiormq import spec
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.environment_variables import OTEL_PYTHON_TRACER_PROVIDER
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, Span, SpanKind, StatusCode

tracer = trace.get_tracer("clusterbus.bus")

SYSTEM = "rabbitmq"
TRACE_HEADERS = ("traceparent", "tracestate")


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads AMQP header values, which may arrive as bytes."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode(errors="replace")
        return [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier.keys())


_getter = _HeaderGetter()
_NO_OP_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
# The API loads a provider named by this variable on first use (we configure ours in code).
_PROVIDER_FROM_ENVIRONMENT = OTEL_PYTHON_TRACER_PROVIDER in os.environ


def extract(headers: Mapping[str, Any] | None) -> Context:
    """The trace context carried in AMQP headers (empty if none)."""
    return propagate.extract(headers or {}, getter=_getter)


def inject(headers: MutableMapping[str, Any], context: Context | None = None) -> None:
    """Write the current (or given) trace context into ``headers``."""
    propagate.inject(headers, context=context)


def current_headers(context: Context | None = None) -> dict[str, str]:
    """The trace context (default: the current one) as headers, for outbox rows."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def tracing_enabled() -> bool:
    """Whether a real tracer provider is installed (one cheap check; the no-op API is not)."""
    # get_tracer_provider() looks OTEL_PYTHON_TRACER_PROVIDER up in os.environ on every call
    # while none is set (a few % of the engine's CPU per message); the global it fills is read
    # first. The provider can be set once only, so a real one found here stays.
    provider = getattr(trace, "_TRACER_PROVIDER", None)
    if provider is None:
        if not _PROVIDER_FROM_ENVIRONMENT:
            return False
        provider = trace.get_tracer_provider()
    return not isinstance(provider, _NO_OP_PROVIDERS)


def _attributes(
    operation: str, exchange: str, routing_key: str, message_id: str | None, conv: str | None
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": operation,
        "messaging.destination.name": f"{exchange}:{routing_key}",
        "messaging.rabbitmq.destination.routing_key": routing_key,
    }
    if message_id:
        attributes["messaging.message.id"] = message_id
    if conv:
        attributes["messaging.message.conversation_id"] = conv
    return attributes


@contextmanager
def publish_span(
    exchange: str, routing_key: str, properties: spec.Basic.Properties, body_size: int
) -> Iterator[Span]:
    """A PRODUCER span around one publish; its context is injected into ``properties.headers``."""
    if not tracing_enabled():
        # Tracing off: the API's span would not record and the headers would stay as they are
        # (a traceparent already in them travels on), so skip building attributes and contexts.
        yield trace.INVALID_SPAN
        return
    headers = dict(properties.headers or {})
    current = trace.get_current_span().get_span_context()
    parent = None if current.is_valid else extract(headers)
    attributes = _attributes(
        "send", exchange, routing_key, properties.message_id, properties.correlation_id
    )
    attributes["messaging.message.body.size"] = body_size
    with tracer.start_as_current_span(
        f"publish {exchange}:{routing_key}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        record_exception=False,
    ) as span:
        if span.is_recording():
            for key in TRACE_HEADERS:
                headers.pop(key, None)
            inject(headers)
            properties.headers = headers
        try:
            yield span
        except Exception as exc:
            mark_error(span, type(exc).__name__)
            raise


def start_consume(queue: str, message: AbstractIncomingMessage) -> Span:
    """A CONSUMER span for one delivery: child of the producer's context, and linked to it."""
    parent = extract(message.headers)
    if not tracing_enabled():
        # What the no-op tracer would return: the producer's context as a non-recording span,
        # so the trace context still travels on to the outbox rows built under it.
        return trace.get_current_span(parent)
    producer = trace.get_current_span(parent).get_span_context()
    exchange, routing_key = message.exchange or "", message.routing_key or ""
    attributes = _attributes(
        "process", exchange, routing_key, message.message_id, message.correlation_id
    )
    attributes["messaging.consumer.group.name"] = queue
    attributes["messaging.message.body.size"] = len(message.body)
    return tracer.start_span(
        f"process {exchange}:{routing_key}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=[Link(producer)] if producer.is_valid else None,
        record_exception=False,
    )


def context_of(span: Span) -> Context:
    """A context whose current span is ``span`` (the parent for work on that delivery)."""
    return trace.set_span_in_context(span)


def mark_error(span: Span, error_type: str) -> None:
    """``error.type`` and an error status; never the message text (it may quote a secret)."""
    if span.is_recording():
        span.set_attribute("error.type", error_type)
        span.set_status(StatusCode.ERROR, error_type)
