"""The catalog tables, parse/make, and the reasons given for invalid payloads."""

from __future__ import annotations

import re

import pytest
from messages_samples import CLUSTER, full_spec, samples
from pydantic import ValidationError

from engine.messages import (
    EXCHANGE_OF_KIND,
    KINDS,
    REGISTRY,
    CreateServer,
    DeleteNetwork,
    Envelope,
    InvalidPayload,
    NetworkReady,
    ServerFailed,
    UnknownMessageType,
    envelope_for,
    exchange_for,
    json_schemas,
    kind_of,
    make,
    model_for,
    parse,
    parse_as,
    routing_key_for,
    type_from_routing_key,
)

CATALOG_KINDS = {
    "cluster.create": "command",
    "cluster.delete": "command",
    "cluster.scale": "command",
    "cluster.retry": "command",
    "pki.ensure": "task",
    "network.ensure": "task",
    "security_groups.ensure": "task",
    "loadbalancer.ensure": "task",
    "server.create": "task",
    "server.poll": "task",
    "floatingip.ensure": "task",
    "member.ensure": "task",
    "member.poll": "task",
    "member.delete": "task",
    "server.delete": "task",
    "loadbalancer.delete": "task",
    "network.delete": "task",
    "security_groups.delete": "task",
    "network.ready": "event",
    "server.active": "event",
    "server.failed": "event",
    "member.online": "event",
    "task.failed": "event",
    "cluster.state_changed": "notification",
    "machine.state_changed": "notification",
}


def test_catalog_types_are_registered_with_their_kind() -> None:
    for type_, kind in CATALOG_KINDS.items():
        assert KINDS[type_] == kind
    assert set(KINDS) == set(REGISTRY)


def test_every_model_declares_its_routing_key_and_forbids_extras() -> None:
    for type_, model in REGISTRY.items():
        assert type_ == model.TYPE
        assert model.model_config.get("extra") == "forbid"
        assert model.model_config.get("frozen") is True


def test_samples_cover_the_registry() -> None:
    assert set(samples()) == set(REGISTRY)


@pytest.mark.parametrize("type_", sorted(REGISTRY))
def test_make_then_parse_round_trips(type_: str) -> None:
    payload = samples()[type_]
    envelope = make(payload, source="test", subject=CLUSTER, correlation_id="corr-1")
    assert envelope.type == type_
    assert envelope.correlationid == "corr-1"
    assert parse(envelope) == payload
    assert len(envelope.body()) < 4 * 1024  # "a few KiB" at most


def test_exchange_and_kind_lookups() -> None:
    assert exchange_for("cluster.create") == "clusterbus.commands"
    assert exchange_for("server.create") == "clusterbus.tasks"
    assert exchange_for("server.active", prefix="t-123") == "t-123.events"
    assert exchange_for("cluster.state_changed") == EXCHANGE_OF_KIND["notification"]
    assert kind_of("member.poll") == "task"
    with pytest.raises(UnknownMessageType, match=r"cluster\.explode"):
        model_for("cluster.explode")


def test_notifications_route_by_state_and_cluster() -> None:
    envelope = make(samples()["cluster.state_changed"], source="test")
    assert envelope.subject == CLUSTER
    assert routing_key_for(envelope) == "cluster.state_changed.ready.demo"
    assert type_from_routing_key("cluster.state_changed.ready.demo") == "cluster.state_changed"
    assert routing_key_for(make(samples()["server.poll"], source="t")) == "server.poll"
    with pytest.raises(UnknownMessageType):
        type_from_routing_key("nothing.here")


def test_make_needs_a_subject_for_commands() -> None:
    with pytest.raises(ValueError, match="subject"):
        make(samples()["cluster.delete"], source="test")


def test_invalid_payload_reason_names_the_field() -> None:
    spec = full_spec()
    spec["control_plane"]["replicas"] = 4
    envelope = envelope_for("cluster.create", CLUSTER, {"spec": spec}, source="cli")
    with pytest.raises(InvalidPayload) as caught:
        parse(envelope)
    assert caught.value.reason == "data.spec.control_plane.replicas: must be odd"


def test_reason_never_echoes_input_values() -> None:
    data = {
        "cluster_id": CLUSTER,
        "network_id": "n",
        "subnet_id": "s",
        "router_id": 7,
        "password": "s3cr3t-value",
    }
    with pytest.raises(InvalidPayload) as caught:
        parse(envelope_for("network.ready", CLUSTER, data, source="h"))
    assert "data.password: unknown field" in caught.value.reason
    assert "data.router_id: " in caught.value.reason
    assert "s3cr3t" not in caught.value.reason


def test_reason_is_capped_for_many_errors() -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse(envelope_for("server.create", CLUSTER, {"cluster_id": CLUSTER}, source="t"))
    assert caught.value.reason.endswith("more")
    assert caught.value.reason.count(": required") == 5


@pytest.mark.parametrize(
    ("type_", "data", "where"),
    [
        (
            "network.ready",
            {"cluster_id": "other", "network_id": "n", "subnet_id": "s", "router_id": "r"},
            "data.cluster_id",
        ),
        ("cluster.create", {"spec": {**full_spec(), "name": "other"}}, "data.spec.name"),
    ],
)
def test_payload_must_match_the_subject(type_: str, data: dict[str, object], where: str) -> None:
    with pytest.raises(InvalidPayload, match=re.escape(where)):
        parse(envelope_for(type_, CLUSTER, data, source="t"))


def test_parse_as_checks_the_expected_model() -> None:
    envelope = make(samples()["network.ready"], source="t")
    assert isinstance(parse_as(envelope, NetworkReady), NetworkReady)
    with pytest.raises(InvalidPayload, match=r"expected server\.create"):
        parse_as(envelope, CreateServer)


def test_long_cloud_errors_are_truncated_not_rejected() -> None:
    event = ServerFailed(cluster_id=CLUSTER, machine_id="demo-md-0-0", reason="x" * 5000)
    assert len(event.reason) == 1000
    assert event.reason.endswith("…")


def test_payloads_are_frozen() -> None:
    event = samples()["server.active"]
    with pytest.raises(ValidationError):
        event.server_id = "other"  # type: ignore[attr-defined]


def test_strict_numbers_and_flags() -> None:
    base = {"cluster_id": CLUSTER, "task_type": "x", "reason": "y"}
    with pytest.raises(InvalidPayload, match=r"data\.terminal"):
        parse(envelope_for("task.failed", CLUSTER, {**base, "terminal": "true"}, source="t"))
    poll = {"cluster_id": CLUSTER, "cloud": "c", "machine_id": "demo-x-0", "server_id": "s"}
    with pytest.raises(InvalidPayload, match=r"data\.attempt"):
        parse(envelope_for("server.poll", CLUSTER, {**poll, "attempt": "2"}, source="t"))


def test_scale_needs_a_change_and_an_odd_control_plane() -> None:
    with pytest.raises(InvalidPayload, match="nothing to scale"):
        parse(envelope_for("cluster.scale", CLUSTER, {}, source="t"))
    with pytest.raises(InvalidPayload, match=r"data\.control_plane_replicas: must be odd"):
        parse(envelope_for("cluster.scale", CLUSTER, {"control_plane_replicas": 2}, source="t"))


def test_json_schemas_cover_every_type() -> None:
    schemas = json_schemas()
    assert set(schemas) == set(REGISTRY)
    assert schemas["cluster.create"]["properties"]["spec"]["$ref"].endswith("ClusterSpec")


def test_envelope_caused_keeps_correlation() -> None:
    root = make(samples()["cluster.delete"], source="cli", subject=CLUSTER)
    follow = root.caused("network.delete", {"cluster_id": CLUSTER, "cloud": "c"}, source="e")
    assert isinstance(follow, Envelope)
    assert (follow.correlationid, follow.causationid) == (root.id, root.id)
    assert parse(follow) == DeleteNetwork(cluster_id=CLUSTER, cloud="c")
