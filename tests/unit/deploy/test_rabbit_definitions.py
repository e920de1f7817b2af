"""deploy/rabbitmq: definitions.json is current and matches the engine's topology table."""

from __future__ import annotations

import re
from typing import Any

from deploy_support import DEFINITIONS, DEPLOY, definitions, generator

from engine.bus.topology import PLUGIN_OF_TYPE, Names, Topology, build_topology
from engine.settings import QueueType, Settings

PREFIX = "clusterbus"


def reference_topology() -> Topology:
    return build_topology(Settings(topology_prefix=PREFIX, queue_type=QueueType.QUORUM, shards=4))


def test_file_is_not_stale() -> None:
    assert DEFINITIONS.read_text() == generator().render(), (
        "regenerate: python deploy/rabbitmq/gen_definitions.py"
    )


def test_exchanges_match_topology() -> None:
    found = {e["name"]: (e["type"], e["arguments"]) for e in definitions()["exchanges"]}
    expected = {e.name: (e.type, dict(e.arguments)) for e in reference_topology().exchanges}
    assert found == expected
    assert all(e["durable"] and e["vhost"] == "/clusterbus" for e in definitions()["exchanges"])


def test_queues_match_topology() -> None:
    found = {q["name"]: q["arguments"] for q in definitions()["queues"]}
    topology = reference_topology()
    assert found == {q.name: dict(q.arguments) for q in topology.queues}
    names = Names(PREFIX)
    for k in range(4):
        assert found[names.shard(k)]["x-single-active-consumer"] is True
    assert found[names.handler("compute")]["x-queue-type"] == "quorum"


def test_bindings_match_topology() -> None:
    def key(b: dict[str, Any]) -> tuple[object, ...]:
        args = sorted(b["arguments"].items())
        return (b["source"], b["destination"], b["destination_type"], b["routing_key"], args)

    found = sorted(key(b) for b in definitions()["bindings"])
    expected = sorted(
        (
            b.source,
            b.destination,
            "exchange" if b.to_exchange else "queue",
            b.routing_key,
            sorted(dict(b.arguments).items()),
        )
        for b in reference_topology().bindings
    )
    assert found == expected


def test_plugins_enable_every_exchange_type_we_use() -> None:
    text = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text()
    assert re.fullmatch(r"\[[a-z_,]+\]\.\s*", text), "Erlang list terminated by a dot"
    for exchange in definitions()["exchanges"]:
        plugin = PLUGIN_OF_TYPE.get(exchange["type"])
        if plugin is not None:
            assert plugin in text


def _perm(user: str, kind: str) -> re.Pattern[str]:
    row = next(p for p in definitions()["permissions"] if p["user"] == user)
    return re.compile(row[kind])


def test_roles_may_use_the_whole_topology() -> None:
    topology = reference_topology()
    names = [e.name for e in topology.exchanges] + [q.name for q in topology.queues]
    for user in ("engine", "handlers"):
        for kind in ("configure", "write", "read"):
            assert all(_perm(user, kind).search(n) for n in names), (user, kind)


def test_producer_only_sends_commands_and_reads_notifications() -> None:
    n = Names(PREFIX)
    write, read, configure = (_perm("producer", k) for k in ("write", "read", "configure"))
    assert write.search(n.commands)
    for forbidden in (n.tasks, n.events, n.engine, n.shard(0), n.delay):
        assert not write.search(forbidden), forbidden
        assert not configure.search(forbidden), forbidden
    assert read.search(n.notifications)
    assert not read.search(n.shard(0))
    assert configure.search("amq.gen-abc") and write.search("amq.gen-abc")


def test_every_user_has_permissions_on_the_vhost() -> None:
    defs = definitions()
    users = {u["name"] for u in defs["users"]}
    assert users == {"admin", "engine", "handlers", "producer"}
    assert {(p["user"], p["vhost"]) for p in defs["permissions"]} == {
        (u, "/clusterbus") for u in users
    }
    assert all(u["hashing_algorithm"] == "rabbit_password_hashing_sha256" for u in defs["users"])


def test_policy_targets_an_existing_queue() -> None:
    defs = definitions()
    queues = [q["name"] for q in defs["queues"]]
    for policy in defs["policies"]:
        assert [q for q in queues if re.search(policy["pattern"], q)], policy["name"]


def test_generator_follows_the_shard_count() -> None:
    defs = generator().definitions(shards=8, queue_type=QueueType.CLASSIC)
    shards = [q for q in defs["queues"] if ".engine.shard." in q["name"]]
    assert len(shards) == 8
    assert {q["arguments"]["x-queue-type"] for q in defs["queues"]} == {"classic"}
