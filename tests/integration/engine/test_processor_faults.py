"""A decider that raises on one message must not take the rest of its batch down (real SQLite)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.processor import Processor
from engine.store import Store
from statemachines import ClusterAggregate, Outcome, handle
from support.engine import applied_triggers, create_command


def broken_on_pki_ready(
    aggregate: ClusterAggregate | None, message_type: str, data: Any, *, now: datetime
) -> tuple[ClusterAggregate | None, Outcome]:
    """The real machines, with a bug that fires on one message type after mutating."""
    result = handle(aggregate, message_type, data, now=now)
    if message_type == "pki.ready":
        raise RuntimeError("a bug in the state machine")
    return result


async def test_a_decider_bug_rejects_only_its_message(store: Store) -> None:
    processor = Processor(store, broken_on_pki_ready)
    create_a, create_b = create_command("bug-a"), create_command("bug-b")
    poison = create_a.caused("pki.ready", {"cluster_id": "bug-a"}, source="tests")
    network = create_a.caused(
        "network.ready",
        {"cluster_id": "bug-a", "network_id": "n", "subnet_id": "s", "router_id": "r"},
        source="tests",
    )
    result = await processor.process([create_a, poison, network, create_b])
    assert [(r.envelope.id, r.reason) for r in result.rejected] == [
        (poison.id, "decider error: RuntimeError")
    ]
    assert result.applied == 3
    assert await applied_triggers(store, "bug-a") == ["cluster.create", "network.ready"]
    assert await applied_triggers(store, "bug-b") == ["cluster.create"]
    cluster, _ = await store.load("bug-a") or (None, None)
    assert cluster is not None and cluster.version == 2  # the poison's mutation was not kept


async def test_tasks_and_notifications_go_to_their_exchanges_with_catalog_keys(
    store: Store,
) -> None:
    processor = Processor(store, handle, source="tests/engine", exchange_prefix="px")
    create = create_command("rows")
    result = await processor.process([create])
    assert [(m.exchange, m.routing_key) for m in result.outbox] == [
        ("px.tasks", "pki.ensure"),
        ("px.tasks", "network.ensure"),
        ("px.notifications", "cluster.state_changed.provisioning_network.rows"),
    ]
    assert all(m.seq is not None for m in result.outbox)
    headers = [m.properties["headers"] for m in result.outbox]
    assert {h["ce-causationid"] for h in headers} == {create.id}
    assert {h["ce-source"] for h in headers} == {"tests/engine"}


def mutates_then_refuses_pki_ready(
    aggregate: ClusterAggregate | None, message_type: str, data: Any, *, now: datetime
) -> tuple[ClusterAggregate | None, Outcome]:
    """Refuses pki.ready as not applicable, after scribbling on the aggregate."""
    if message_type == "pki.ready" and aggregate is not None:
        aggregate.failure_reason = "scribbled by a refused message"
        raise ValueError("not now")
    return handle(aggregate, message_type, data, now=now)


async def test_a_refused_message_leaves_no_trace_in_the_cached_aggregate(store: Store) -> None:
    """The engine caches aggregates between batches: a refusal must not leave its changes
    there for the next message to build on (here, in the same batch and in the next one)."""
    processor = Processor(store, mutates_then_refuses_pki_ready)
    create = create_command("refused")
    refused = create.caused("pki.ready", {"cluster_id": "refused"}, source="tests")
    network = create.caused(
        "network.ready",
        {"cluster_id": "refused", "network_id": "n", "subnet_id": "s", "router_id": "r"},
        source="tests",
    )
    first = await processor.process([create, refused])
    assert [r.envelope.id for r in first.rejected] == [refused.id]
    second = await processor.process([network])
    assert second.applied == 1
    cluster, _ = await store.load("refused") or (None, None)
    assert cluster is not None and cluster.doc["failure_reason"] is None
    assert await applied_triggers(store, "refused") == ["cluster.create", "network.ready"]
