"""The store contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection

from engine.store import (
    ClusterRow,
    HistoryEntry,
    MachineRow,
    OutboxMessage,
    SecretBox,
    Step,
    Store,
    VersionConflict,
)
from engine.store.schema import metadata


def message(routing_key: str = "network.ensure") -> OutboxMessage:
    return OutboxMessage(
        message_id=uuid.uuid4().hex,
        exchange="clusterbus.tasks",
        routing_key=routing_key,
        body=b'{"x": 1}\x00\xff',
        properties={"headers": {"traceparent": "00-abc-def-01"}, "content_type": "a/b"},
    )


def step(
    msg_id: str,
    *clusters: ClusterRow,
    consumer: str = "engine-0",
    outbox: list[OutboxMessage] | None = None,
    history: list[HistoryEntry] | None = None,
    machines: list[MachineRow] | None = None,
) -> Step:
    return Step(
        consumer=consumer,
        message_id=msg_id,
        clusters=list(clusters),
        machines=machines or [],
        outbox=outbox or [],
        history=history or [],
    )


def cluster(version: int, state: str = "accepted", cid: str = "demo") -> ClusterRow:
    return ClusterRow(id=cid, state=state, version=version, doc={"spec": {"v": version}})


async def state_of(store: Store, cid: str = "demo") -> tuple[str, int]:
    loaded = await store.load(cid)
    assert loaded is not None
    return loaded[0].state, loaded[0].version


async def test_insert_then_update_bumps_version(store: Store) -> None:
    assert await store.apply([step("m1", cluster(0))]) == [True]
    assert await state_of(store) == ("accepted", 1)
    assert await store.apply([step("m2", cluster(1, "provisioning_network"))]) == [True]
    loaded = await store.load("demo")
    assert loaded is not None
    row, machines = loaded
    assert (row.state, row.version, row.doc, machines) == (
        "provisioning_network",
        2,
        {"spec": {"v": 1}},
        [],
    )
    assert row.created_at is not None and row.updated_at is not None
    assert row.updated_at >= row.created_at
    assert await store.load("absent") is None


async def test_stale_version_rolls_back_the_whole_batch(store: Store) -> None:
    await store.apply([step("m1", cluster(0))])
    good = step("m2", cluster(0, cid="other"), outbox=[message()])
    stale = step("m3", cluster(7, "ready"))
    with pytest.raises(VersionConflict):
        await store.apply([good, stale])
    assert await store.load("other") is None
    assert await store.unsent_outbox() == []
    # The inbox claims were rolled back too: the good step alone now applies.
    assert await store.apply([good]) == [True]
    assert await state_of(store, "other") == ("accepted", 1)


async def test_inserting_an_existing_id_conflicts(store: Store) -> None:
    await store.apply([step("m1", cluster(0))])
    with pytest.raises(VersionConflict):
        await store.apply([step("m2", cluster(0, "ready"))])
    assert await state_of(store) == ("accepted", 1)


async def test_steps_on_one_cluster_chain_versions_within_a_batch(store: Store) -> None:
    steps = [step(f"m{v}", cluster(v, f"s{v}")) for v in range(5)]
    assert await store.apply(steps) == [True] * 5
    assert await state_of(store) == ("s4", 5)


async def test_duplicate_message_is_skipped_and_writes_nothing(store: Store) -> None:
    await store.apply([step("m1", cluster(0), outbox=[message()])])
    again = step(
        "m1",
        cluster(1, "ready"),
        outbox=[message()],
        history=[HistoryEntry("demo", None, "accepted", "ready", "t", "m1")],
    )
    assert await store.apply([again, step("m2", cluster(1, "provisioning_network"))]) == [
        False,
        True,
    ]
    assert await state_of(store) == ("provisioning_network", 2)
    assert len(await store.unsent_outbox()) == 1
    assert await store.history("demo") == []
    assert again.outbox[0].seq is None


async def test_duplicate_within_a_batch_and_per_consumer(store: Store) -> None:
    first = step("m1", cluster(0))
    repeat = step("m1", cluster(1, "ready"))
    other_consumer = step("m1", cluster(1, "provisioning_network"), consumer="engine-1")
    assert await store.apply([first, repeat, other_consumer]) == [True, False, True]
    assert await state_of(store) == ("provisioning_network", 2)


async def test_machines_insert_update_delete_and_recreate(store: Store) -> None:
    def machine(mid: str, version: int, state: str) -> MachineRow:
        return MachineRow(mid, "demo", "worker", state, version, {"index": version})

    await store.apply([step("m1", cluster(0), machines=[machine("w-0", 0, "pending")])])
    await store.apply(
        [
            Step("e", "m2", machines=[machine("w-0", 1, "creating"), machine("w-1", 0, "pending")]),
            Step("e", "m3", deleted_machine_ids=["w-0"]),
            Step("e", "m4", machines=[machine("w-1", 1, "creating")]),
        ]
    )
    loaded = await store.load("demo")
    assert loaded is not None
    assert [(m.id, m.state, m.version) for m in loaded[1]] == [("w-1", "creating", 2)]
    # Deleted then created again in one batch: a fresh row at version 1.
    await store.apply(
        [
            Step("e", "m5", deleted_machine_ids=["w-1"]),
            Step("e", "m6", machines=[machine("w-1", 0, "pending")]),
        ]
    )
    loaded = await store.load("demo")
    assert loaded is not None
    assert [(m.id, m.state, m.version, m.doc) for m in loaded[1]] == [
        ("w-1", "pending", 1, {"index": 0})
    ]
    with pytest.raises(VersionConflict):
        await store.apply([Step("e", "m7", machines=[machine("w-1", 3, "running")])])


async def test_outbox_order_seqs_and_mark_sent(store: Store) -> None:
    steps = [
        step("m1", cluster(0), outbox=[message("a"), message("b")]),
        step("m2", outbox=[message("c")]),
    ]
    await store.apply(steps)
    seqs = [m.seq for s in steps for m in s.outbox if m.seq is not None]
    assert len(seqs) == 3 and seqs == sorted(seqs)
    unsent = await store.unsent_outbox()
    assert [m.routing_key for m in unsent] == ["a", "b", "c"]
    assert [m.seq for m in unsent] == seqs
    assert unsent[0].body == b'{"x": 1}\x00\xff'
    assert unsent[0].properties["headers"] == {"traceparent": "00-abc-def-01"}
    assert [m.routing_key for m in await store.unsent_outbox(limit=2)] == ["a", "b"]
    await store.mark_sent([seqs[0], seqs[2]])
    assert [m.routing_key for m in await store.unsent_outbox()] == ["b"]
    assert await store.purge_outbox(timedelta(hours=1)) == 0
    assert await store.purge_outbox(timedelta(0)) == 2
    assert [m.routing_key for m in await store.unsent_outbox()] == ["b"]


async def test_history_in_order(store: Store) -> None:
    entries = [
        HistoryEntry("demo", None, "none", "accepted", "cluster.create", "m1"),
        HistoryEntry("demo", "demo-bastion", "pending", "creating", "start", "m1", note="n"),
        HistoryEntry("demo", None, "accepted", "accepted", "server.active", "m2", ignored=True),
    ]
    await store.apply(
        [step("m1", cluster(0), history=entries[:2]), step("m2", history=entries[2:])]
    )
    recorded = await store.history("demo")
    assert [(h.machine_id, h.to_state, h.ignored, h.note) for h in recorded] == [
        (None, "accepted", False, ""),
        ("demo-bastion", "creating", False, "n"),
        (None, "accepted", True, ""),
    ]
    assert all(h.at is not None and h.at.tzinfo is not None for h in recorded)
    assert await store.history("other") == []


async def test_list_clusters(store: Store) -> None:
    await store.apply([step("m1", cluster(0, cid="b")), step("m2", cluster(0, cid="a"))])
    assert [c.id for c in await store.list_clusters()] == ["a", "b"]


async def test_secrets_round_trip_with_secret_box(store: Store) -> None:
    box = SecretBox.from_keys([bytes(range(32))])
    key_id, nonce, ct = box.seal(b"-----BEGIN PRIVATE KEY-----", b"demo/ca")
    assert await store.put_secret("demo", "ca", key_id, nonce, ct) is True
    assert await store.put_secret("demo", "ca", key_id, b"0" * 12, b"other") is False
    stored = await store.get_secret("demo", "ca")
    assert stored == (key_id, nonce, ct)
    assert box.open(*stored, b"demo/ca") == b"-----BEGIN PRIVATE KEY-----"
    with pytest.raises(InvalidTag):
        box.open(*stored, b"other/ca")
    assert await store.get_secret("demo", "missing") is None
    assert await store.delete_secrets("demo") == 1
    assert await store.get_secret("demo", "ca") is None


async def test_purge_inbox_forgets_old_message_ids(store: Store) -> None:
    await store.apply([step("m1", cluster(0))])
    assert await store.purge_inbox(timedelta(hours=1)) == 0
    assert await store.apply([step("m1")]) == [False]
    assert await store.purge_inbox(timedelta(0)) == 1
    assert await store.apply([step("m1")]) == [True]


async def test_migrations_are_idempotent_and_match_the_schema(store_url: str) -> None:
    first = await Store.open(store_url)
    await first.apply([step("m1", cluster(0))])
    await first.close()
    second = await Store.open(store_url)  # migrates again: must be a no-op, data intact
    try:
        assert await state_of(second) == ("accepted", 1)
        diffs = await second._backend.read(_schema_diffs)
        assert diffs == []
    finally:
        await second.close()


def _schema_diffs(conn: Connection) -> list[object]:
    """What alembic autogenerate would still change: must be nothing."""
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_empty_batch_is_a_no_op(store: Store) -> None:
    assert await store.apply([]) == []
    await store.mark_sent([])
    assert await store.list_clusters() == []


async def test_in_memory_sqlite_for_unit_tests() -> None:
    store = await Store.open("sqlite+aiosqlite://")
    try:
        assert await store.apply([step("m1", cluster(0), outbox=[message()])]) == [True]
        assert await state_of(store) == ("accepted", 1)
        assert len(await store.unsent_outbox()) == 1
    finally:
        await store.close()
