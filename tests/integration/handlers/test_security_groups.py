"""security_groups.ensure / security_groups.delete against the simulator over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from handlerkit import CLOUD, call_count, inventory, leaks, named, run_until_done

from engine.messages.events import SecurityGroupsReady
from engine.messages.tasks import DeleteSecurityGroups, EnsureSecurityGroups
from handlers.base import Deps, TerminalError, TransientError, owned_tags
from handlers.security_groups import (
    HANDLERS,
    handle_security_groups_delete,
    handle_security_groups_ensure,
)
from simulator.profile import Profile, ProjectSpec, Quota
from simulator.testing import Sim

CID = "sg1"
NODE_CIDR = "10.6.0.0/24"
ANY = "0.0.0.0/0"
Row = tuple[str, str | None, int | None, int | None, str | None]  # direction, proto, ports, remote


def ensure_task(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "cluster_id": CID,
        "cloud": CLOUD,
        "attempt": 0,
        "node_cidr": NODE_CIDR,
        "bastion_enabled": True,
        "api_allowed_cidrs": [],
        "bastion_ssh_cidrs": [],
        "extra_rules": [],
        "api_extra_ports": [],
        "known": {},
    }
    # Exactly what the runner hands a handler: the task model dumped to JSON.
    return EnsureSecurityGroups.model_validate({**task, **overrides}).model_dump(mode="json")


def delete_task(known: dict[str, Any] | None = None) -> dict[str, Any]:
    task = {"cluster_id": CID, "cloud": CLOUD, "known": known or {}}
    return DeleteSecurityGroups.model_validate(task).model_dump(mode="json")


async def ensure(deps: Deps, **overrides: Any) -> dict[str, Any]:
    run = await run_until_done(handle_security_groups_ensure, ensure_task(**overrides), deps)
    data = run.last("security_groups.ready").data
    SecurityGroupsReady.model_validate(data)
    return data


def rules_by_role(sim: Sim) -> dict[str, set[Row]]:
    """Role -> IPv4 rules of our groups, remote groups shown by role ("@worker")."""
    groups = {g["id"]: g["name"].rsplit("-", 1)[-1] for g in inventory(sim, "security_groups")}
    found: dict[str, set[Row]] = {}
    for rule in inventory(sim, "security_group_rules"):
        role = groups[rule["security_group_id"]]
        if role == "default" or rule["ethertype"] != "IPv4":
            continue
        remote = rule["remote_ip_prefix"] or ANY
        if rule["remote_group_id"]:
            remote = "@" + groups[rule["remote_group_id"]]
        row = (rule["direction"], rule["protocol"], rule["port_range_min"],
               rule["port_range_max"], remote)  # fmt: skip
        found.setdefault(role, set()).add(row)
    return found


EGRESS: Row = ("egress", None, None, None, ANY)
NODE_PORTS = {
    ("ingress", proto, 30000, 32767, remote)
    for proto in ("tcp", "udp")
    for remote in (NODE_CIDR, "@controlplane", "@worker")
}
EXPECTED = {
    "controlplane": {
        EGRESS,
        ("ingress", "tcp", 6443, 6443, ANY),
        ("ingress", "tcp", 2379, 2380, "@controlplane"),
        ("ingress", "tcp", 10250, 10250, "@controlplane"),
        ("ingress", "tcp", 10250, 10250, "@worker"),
        ("ingress", "tcp", 22, 22, "@bastion"),
    },
    "worker": {
        EGRESS,
        ("ingress", "tcp", 10250, 10250, "@controlplane"),
        ("ingress", "tcp", 10250, 10250, "@worker"),
        *NODE_PORTS,
        ("ingress", "tcp", 22, 22, "@bastion"),
    },
    "bastion": {EGRESS, ("ingress", "tcp", 22, 22, ANY)},
}


def test_handlers_table() -> None:
    assert set(HANDLERS) == {"security_groups.ensure", "security_groups.delete"}


async def test_ensure_creates_exactly_the_design_rules(sim: Sim, deps: Deps) -> None:
    ready = await ensure(deps)

    ids = {role: ready[f"{role}_id"] for role in ("controlplane", "worker", "bastion")}
    for role, group_id in ids.items():
        [group] = named(sim, "security_groups", f"clusterbus-{CID}-{role}")
        assert group["id"] == group_id
        assert set(owned_tags(CID)) <= set(group["tags"])
    assert rules_by_role(sim) == EXPECTED


async def test_ensure_twice_creates_nothing_and_costs_one_call(sim: Sim, deps: Deps) -> None:
    first = await ensure(deps)
    rules = len(inventory(sim, "security_group_rules"))
    before = call_count(sim)
    known = {k: v for k, v in first.items() if k != "cluster_id"}

    assert await ensure(deps, known=known) == first
    assert call_count(sim) - before == 1
    assert len(inventory(sim, "security_group_rules")) == rules
    assert len(inventory(sim, "security_groups")) == 4  # ours + the project's default


async def test_rules_are_reconciled_as_a_set(sim: Sim, deps: Deps) -> None:
    ready = await ensure(deps)
    conn = sim.connect(CLOUD)
    conn.network.create_security_group_rule(
        security_group_id=ready["worker_id"], direction="ingress", protocol="tcp",
        port_range_min=8080, port_range_max=8080, remote_ip_prefix=ANY,
    )  # fmt: skip
    etcd = next(
        r
        for r in conn.network.security_group_rules(security_group_id=ready["controlplane_id"])
        if r.port_range_min == 2379
    )
    conn.network.delete_security_group_rule(etcd)

    assert await ensure(deps) == ready
    assert rules_by_role(sim) == EXPECTED


async def test_restricted_api_extra_ports_and_extra_rules(sim: Sim, deps: Deps) -> None:
    extra = [
        {"role": "all", "protocol": "tcp", "port_range_min": 179, "port_range_max": 179,
         "remote_group": "worker", "description": "BGP"},
        {"role": "worker", "protocol": "udp", "port_range_min": 4789, "port_range_max": 4789,
         "remote_ip_prefix": NODE_CIDR},
    ]  # fmt: skip
    await ensure(
        deps,
        bastion_enabled=False,
        api_allowed_cidrs=["192.0.2.0/24"],
        api_extra_ports=[8443],
        extra_rules=extra,
    )

    found = rules_by_role(sim)
    assert set(found) == {"controlplane", "worker"}
    assert found["controlplane"] == {
        EGRESS,
        ("ingress", "tcp", 6443, 6443, "192.0.2.0/24"),
        ("ingress", "tcp", 6443, 6443, NODE_CIDR),  # Octavia reaches members from the subnet
        ("ingress", "tcp", 8443, 8443, "192.0.2.0/24"),
        ("ingress", "tcp", 8443, 8443, NODE_CIDR),
        ("ingress", "tcp", 2379, 2380, "@controlplane"),
        ("ingress", "tcp", 10250, 10250, "@controlplane"),
        ("ingress", "tcp", 10250, 10250, "@worker"),
        ("ingress", "tcp", 179, 179, "@worker"),
    }
    assert found["worker"] == (EXPECTED["worker"] - {("ingress", "tcp", 22, 22, "@bastion")}) | {
        ("ingress", "tcp", 179, 179, "@worker"),
        ("ingress", "udp", 4789, 4789, NODE_CIDR),
    }


async def test_disabling_the_bastion_removes_its_group_and_ssh_rules(sim: Sim, deps: Deps) -> None:
    await ensure(deps)
    ready = await ensure(deps, bastion_enabled=False)

    assert ready["bastion_id"] is None
    assert named(sim, "security_groups", f"clusterbus-{CID}-bastion") == []
    assert rules_by_role(sim) == {
        role: {r for r in rules if r[4] != "@bastion"}
        for role, rules in EXPECTED.items()
        if role != "bastion"
    }


async def test_extra_rule_on_a_disabled_bastion_is_terminal(deps: Deps) -> None:
    rule = {"role": "worker", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
            "remote_group": "bastion"}  # fmt: skip
    with pytest.raises(TerminalError, match="disabled bastion group"):
        await handle_security_groups_ensure(
            ensure_task(bastion_enabled=False, extra_rules=[rule]), deps
        )


async def test_quota_is_terminal_with_neutrons_message(sim: Sim, deps: Deps) -> None:
    quota = Quota(security_group_rule=10)
    project = ProjectSpec(name="demo", user="demo", password="demo-password", quota=quota)
    sim.put_profile(Profile(time_scale=0.01, seed=1, projects=[project]), reset=True)

    with pytest.raises(
        TerminalError, match=r"Quota exceeded for resources: \['security_group_rule'\]"
    ):
        await handle_security_groups_ensure(ensure_task(), deps)


async def test_delete_removes_ours_only(sim: Sim, deps: Deps) -> None:
    conn = sim.connect(CLOUD)
    foreign = conn.network.create_security_group(name=f"clusterbus-{CID}-worker")
    ready = await ensure(deps)
    known = {k: v for k, v in ready.items() if k != "cluster_id"}

    run = await run_until_done(handle_security_groups_delete, delete_task(known), deps)
    await run_until_done(handle_security_groups_delete, delete_task(known), deps)  # redelivery

    assert run.last("security_groups.deleted").data == {"cluster_id": CID}
    assert leaks(sim, CID) == []
    assert [g["id"] for g in inventory(sim, "security_groups") if g["name"] != "default"] == [
        foreign.id
    ]


async def test_group_in_use_is_transient_then_deleted(sim: Sim, deps: Deps) -> None:
    ready = await ensure(deps)
    conn = sim.connect(CLOUD)
    network = conn.network.create_network(name="n")
    conn.network.create_subnet(network_id=network.id, cidr=NODE_CIDR, ip_version=4)
    port = conn.network.create_port(network_id=network.id, security_groups=[ready["worker_id"]])

    with pytest.raises(TransientError, match="in use"):
        await handle_security_groups_delete(delete_task(), deps)
    assert named(sim, "security_groups", f"clusterbus-{CID}-worker")

    conn.network.delete_port(port)
    await run_until_done(handle_security_groups_delete, delete_task(), deps)
    assert leaks(sim, CID) == []
