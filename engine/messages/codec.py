"""Bytes + AMQP properties <-> Envelope, accepting both CloudEvents AMQP modes on input.

- Structured mode: content_type ``application/cloudevents+json`` (or a JSON body with
  ``specversion``); the body is the whole event.
- Binary mode: ``ce-*`` headers carry the attributes, the body is ``data`` (a JSON object);
  missing attributes fall back to the AMQP properties (message_id, app_id, type or the routing
  key, correlation_id, timestamp).

``properties`` is a plain mapping of AMQP basic properties (aio-pika/pika names) plus
``headers``; the bus may add ``routing_key``. We always publish structured mode.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from engine.messages.common import Message
from engine.messages.envelope import CONTENT_TYPE_JSON, CONTENT_TYPE_STRUCTURED, Envelope
from engine.messages.errors import Malformed, TooLarge
from engine.messages.registry import format_errors, parse, type_from_routing_key

DEFAULT_MAX_BYTES = 64 * 1024  # = Settings.max_message_bytes default


def decode(
    body: bytes, properties: Mapping[str, Any], max_bytes: int = DEFAULT_MAX_BYTES
) -> Envelope:
    """The validated envelope of a delivery, or a MessageError saying why it is poison."""
    return decode_message(body, properties, max_bytes)[0]


def decode_message(
    body: bytes, properties: Mapping[str, Any], max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[Envelope, Message]:
    """``decode`` that also returns the parsed payload, so consumers validate only once."""
    if len(body) > max_bytes:
        raise TooLarge(f"message body is {len(body)} bytes, the limit is {max_bytes}")
    headers = _headers(properties)
    content_type = _media_type(properties.get("content_type"))
    if content_type == CONTENT_TYPE_STRUCTURED:
        envelope = _structured(body)
    elif "ce-specversion" in headers:
        envelope = _binary(body, properties, headers, content_type)
    else:
        envelope = _sniffed(body)
    return envelope, parse(envelope)


def encode(envelope: Envelope) -> tuple[bytes, dict[str, Any]]:
    """Structured-mode body and JSON-safe AMQP properties (timestamp in epoch seconds)."""
    properties = envelope.amqp_properties()
    properties["timestamp"] = int(envelope.time.timestamp())
    return envelope.body(), properties


def _structured(body: bytes) -> Envelope:
    try:
        return Envelope.model_validate_json(body)
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            raise Malformed("body is not valid JSON") from None
        raise Malformed(f"not a CloudEvents envelope: {format_errors(error, 'envelope')}") from None


def _sniffed(body: bytes) -> Envelope:
    """No content type and no ce-* headers: accept a JSON body that is a structured event."""
    document = _json(body)
    if not isinstance(document, dict) or "specversion" not in document:
        raise Malformed("not a CloudEvent: no specversion in the body and no ce-* headers")
    return _validated(document)


def _binary(
    body: bytes, properties: Mapping[str, Any], headers: Mapping[str, str], content_type: str | None
) -> Envelope:
    if content_type not in (None, CONTENT_TYPE_JSON):
        raise Malformed(f"binary-mode data must be {CONTENT_TYPE_JSON}, not {content_type[:64]}")
    data = _json(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise Malformed("binary-mode body must be a JSON object")
    message_id = headers.get("ce-id") or _text(properties.get("message_id"))
    if not message_id:
        raise Malformed("binary-mode message has neither ce-id nor message_id")
    attributes = {
        "specversion": headers.get("ce-specversion"),
        "id": message_id,
        "source": headers.get("ce-source") or _text(properties.get("app_id")),
        "type": headers.get("ce-type") or _text(properties.get("type")) or _routed_type(properties),
        "subject": headers.get("ce-subject"),
        "time": headers.get("ce-time") or _time(properties.get("timestamp")),
        "correlationid": headers.get("ce-correlationid")
        or _text(properties.get("correlation_id"))
        or message_id,
        "causationid": headers.get("ce-causationid"),
        "data": data,
    }
    return _validated({key: value for key, value in attributes.items() if value is not None})


def _validated(document: dict[str, Any]) -> Envelope:
    try:
        return Envelope.model_validate(document)
    except ValidationError as error:
        raise Malformed(f"not a CloudEvents envelope: {format_errors(error, 'envelope')}") from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Malformed("body is not valid JSON") from None


def _routed_type(properties: Mapping[str, Any]) -> str | None:
    routing_key = _text(properties.get("routing_key"))
    return type_from_routing_key(routing_key) if routing_key else None


def _headers(properties: Mapping[str, Any]) -> dict[str, str]:
    """The ce-* headers as text, lower-cased (AMQP clients may hand strings over as bytes)."""
    raw = properties.get("headers") or {}
    if not isinstance(raw, Mapping):
        raise Malformed("AMQP headers are not a table")
    return {
        str(key).lower(): text
        for key, value in raw.items()
        if str(key).lower().startswith("ce-") and (text := _text(value)) is not None
    }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError:
            raise Malformed("an AMQP property is not UTF-8 text") from None
    return value if isinstance(value, str) else str(value)


def _media_type(value: Any) -> str | None:
    text = _text(value)
    return text.split(";", 1)[0].strip().lower() or None if text else None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise Malformed("AMQP timestamp out of range") from None
    return None
