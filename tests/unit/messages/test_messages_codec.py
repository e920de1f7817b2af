"""decode/encode: both CloudEvents AMQP modes in, structured mode out, poison classified."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from messages_samples import CLUSTER, samples

from engine.messages import (
    CONTENT_TYPE_STRUCTURED,
    REGISTRY,
    InvalidPayload,
    Malformed,
    MessageError,
    ServerActive,
    TooLarge,
    UnknownMessageType,
    decode,
    decode_message,
    encode,
    make,
)

ACTIVE = {
    "cluster_id": CLUSTER,
    "machine_id": "demo-md-0-0",
    "server_id": "s-1",
    "address": "10.6.0.9",
}


@pytest.mark.parametrize("type_", sorted(REGISTRY))
def test_every_type_round_trips_through_encode_and_decode(type_: str) -> None:
    envelope = make(samples()[type_], source="test", subject=CLUSTER, causation_id="cause-1")
    body, properties = encode(envelope)
    json.dumps(properties)  # the outbox stores properties as JSON
    assert properties["content_type"] == CONTENT_TYPE_STRUCTURED
    assert properties["headers"]["ce-subject"] == CLUSTER
    decoded, payload = decode_message(body, properties)
    assert decoded == envelope
    assert payload == samples()[type_]


def test_encoded_properties_build_an_aio_pika_message() -> None:
    body, properties = encode(make(samples()["server.poll"], source="engine"))
    message = aio_pika.Message(body, **properties)
    assert message.message_id == properties["message_id"]
    assert message.timestamp is not None
    assert message.headers["ce-type"] == "server.poll"


def _binary_properties(**overrides: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "content_type": "application/json",
        "headers": {
            "ce-specversion": "1.0",
            "ce-id": "m-1",
            "ce-source": "handlers/compute",
            "ce-type": "server.active",
            "ce-subject": CLUSTER,
            "ce-time": "2025-01-02T03:04:05Z",
            "ce-correlationid": "corr-1",
            "ce-causationid": "cause-1",
        },
    }
    properties.update(overrides)
    return properties


def test_binary_mode_with_ce_headers() -> None:
    envelope, payload = decode_message(json.dumps(ACTIVE).encode(), _binary_properties())
    assert (envelope.id, envelope.source, envelope.type) == (
        "m-1",
        "handlers/compute",
        "server.active",
    )
    assert (envelope.correlationid, envelope.causationid) == ("corr-1", "cause-1")
    assert envelope.time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert payload == ServerActive(**ACTIVE)


def test_binary_mode_falls_back_to_amqp_properties() -> None:
    properties = {
        "headers": {"ce-specversion": b"1.0", "ce-subject": CLUSTER.encode()},
        "message_id": "m-2",
        "app_id": "other-service",
        "correlation_id": "corr-2",
        "timestamp": 1735787045,
        "routing_key": "server.active",
    }
    envelope = decode(json.dumps(ACTIVE).encode(), properties)
    assert (envelope.id, envelope.source, envelope.type) == (
        "m-2",
        "other-service",
        "server.active",
    )
    assert envelope.correlationid == "corr-2"
    assert envelope.time == datetime.fromtimestamp(1735787045, tz=UTC)


def test_binary_mode_correlation_defaults_to_id_and_empty_body_is_empty_data() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "m-3",
        "ce-source": "cli",
        "ce-type": "cluster.delete",
        "ce-subject": CLUSTER,
    }
    envelope = decode(b"", {"headers": headers})
    assert envelope.correlationid == "m-3"
    assert envelope.data == {}


def test_binary_notification_type_from_routing_key() -> None:
    envelope = make(samples()["cluster.state_changed"], source="engine")
    headers = {"ce-specversion": "1.0", "ce-subject": CLUSTER}
    properties = {
        "headers": headers,
        "message_id": "m-4",
        "app_id": "engine",
        "routing_key": "cluster.state_changed.ready.demo",
    }
    decoded = decode(json.dumps(envelope.data).encode(), properties)
    assert decoded.type == "cluster.state_changed"
    assert decoded.data == envelope.data


def test_structured_json_without_content_type_is_sniffed() -> None:
    envelope = make(samples()["pki.ready"], source="handlers/pki")
    assert decode(envelope.body(), {}) == envelope
    assert decode(envelope.body(), {"content_type": "application/json"}) == envelope


def _structured(type_: str = "server.active", data: Any = None, **extra: Any) -> bytes:
    document = {
        "specversion": "1.0",
        "id": "x",
        "source": "s",
        "type": type_,
        "subject": CLUSTER,
        "correlationid": "x",
        "data": ACTIVE if data is None else data,
        **extra,
    }
    return json.dumps(document).encode()


STRUCTURED = {"content_type": CONTENT_TYPE_STRUCTURED}
POISON = [
    pytest.param(b"\x00not json", STRUCTURED, Malformed, "not valid JSON", id="not-json"),
    pytest.param(b"{oops", {}, Malformed, "not valid JSON", id="not-json-sniffed"),
    pytest.param(b"\xff\xfe", {}, Malformed, "not valid JSON", id="not-utf8"),
    pytest.param(b"[1, 2]", {}, Malformed, "no specversion", id="json-list"),
    pytest.param(b'{"hello": "world"}', {}, Malformed, "no specversion", id="not-an-event"),
    pytest.param(
        b'{"hello": "world"}',
        STRUCTURED,
        Malformed,
        "envelope.source: required",
        id="structured-not-an-event",
    ),
    pytest.param(
        _structured(subject=None), STRUCTURED, Malformed, "envelope.subject", id="null-subject"
    ),
    pytest.param(
        _structured("Server Active"), STRUCTURED, Malformed, "envelope.type", id="bad-type-syntax"
    ),
    pytest.param(
        _structured(specversion="0.3"),
        STRUCTURED,
        Malformed,
        "envelope.specversion",
        id="old-specversion",
    ),
    pytest.param(
        _structured(data_base64="AAAA"),
        STRUCTURED,
        Malformed,
        "envelope.data_base64: unknown field",
        id="data-base64",
    ),
    pytest.param(
        _structured("server.exploded"),
        STRUCTURED,
        UnknownMessageType,
        "server.exploded",
        id="unknown-type",
    ),
    pytest.param(
        _structured(data={**ACTIVE, "address": None}),
        STRUCTURED,
        InvalidPayload,
        "data.address",
        id="invalid-payload",
    ),
    pytest.param(
        _structured(data={**ACTIVE, "cluster_id": "x"}),
        STRUCTURED,
        InvalidPayload,
        "subject",
        id="wrong-cluster",
    ),
    pytest.param(
        b"{" + b" " * 70_000 + b"}", STRUCTURED, TooLarge, "limit is 65536", id="too-large"
    ),
    pytest.param(b"[1]", _binary_properties(), Malformed, "JSON object", id="binary-list"),
    pytest.param(
        b"{}",
        _binary_properties(content_type="text/plain"),
        Malformed,
        "application/json",
        id="binary-text",
    ),
    pytest.param(
        json.dumps(ACTIVE).encode(),
        {"headers": {"ce-specversion": "1.0"}},
        Malformed,
        "neither ce-id nor message_id",
        id="binary-no-id",
    ),
    pytest.param(
        json.dumps(ACTIVE).encode(),
        {"headers": {"ce-specversion": "1.0", "ce-id": "1", "ce-type": "server.active"}},
        Malformed,
        "envelope.source: required",
        id="binary-no-source",
    ),
    pytest.param(
        json.dumps(ACTIVE).encode(),
        _binary_properties(headers="nope"),
        Malformed,
        "not a table",
        id="headers-not-a-table",
    ),
    pytest.param(
        b"{}",
        {
            "headers": {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "s",
                "ce-subject": CLUSTER,
            },
            "routing_key": "no.such.thing",
        },
        UnknownMessageType,
        "no.such.thing",
        id="binary-unknown-routing-key",
    ),
]


@pytest.mark.parametrize(("body", "properties", "error", "reason"), POISON)
def test_poison_raises_the_right_error_with_a_reason(
    body: bytes, properties: dict[str, Any], error: type[MessageError], reason: str
) -> None:
    with pytest.raises(error) as caught:
        decode(body, properties)
    assert type(caught.value) is error
    assert reason in caught.value.reason


def test_size_limit_is_a_parameter() -> None:
    body, properties = encode(make(samples()["pki.ready"], source="t"))
    with pytest.raises(TooLarge):
        decode(body, properties, max_bytes=len(body) - 1)
    assert decode(body, properties, max_bytes=len(body)).type == "pki.ready"
