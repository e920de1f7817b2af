"""network.ensure / network.delete / floatingip.ensure against the simulator over HTTP."""

from __future__ import annotations

import uuid
import warnings
from typing import Any

import pytest
from handlerkit import CLOUD, call_count, inventory, leaks, named, run_until_done

from engine.messages.events import FloatingIpReady, NetworkReady
from engine.messages.tasks import DeleteNetwork, EnsureFloatingIp, EnsureNetwork
from handlers.base import Deps, TerminalError, TransientError, cluster_tag, owned_tags
from handlers.network import (
    HANDLERS,
    delete_network_sync,
    ensure_network_sync,
    handle_floatingip_ensure,
    handle_network_delete,
    handle_network_ensure,
)
from simulator.profile import ErrorFault, Faults, Profile, ProjectSpec, Quota
from simulator.testing import Sim

CID = "net1"
NAME = f"clusterbus-{CID}"


def ensure_task(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "cluster_id": CID,
        "cloud": CLOUD,
        "attempt": 0,
        "external_network": "public",
        "node_cidr": "10.6.0.0/24",
        "dns_nameservers": ["9.9.9.9"],
        "known": {},
    }
    # Exactly what the runner hands a handler: the task model dumped to JSON.
    return EnsureNetwork.model_validate({**task, **overrides}).model_dump(mode="json")


def delete_task(known: dict[str, Any] | None = None) -> dict[str, Any]:
    task = {"cluster_id": CID, "cloud": CLOUD, "known": known or {}}
    return DeleteNetwork.model_validate(task).model_dump(mode="json")


async def ensure(deps: Deps, **overrides: Any) -> dict[str, Any]:
    run = await run_until_done(handle_network_ensure, ensure_task(**overrides), deps)
    data = run.last("network.ready").data
    NetworkReady.model_validate(data)
    return data


def test_handlers_table() -> None:
    assert set(HANDLERS) == {"network.ensure", "network.delete", "floatingip.ensure"}


async def test_ensure_creates_network_subnet_router_interface(sim: Sim, deps: Deps) -> None:
    ready = await ensure(deps)

    assert set(ready) == {"cluster_id", "network_id", "subnet_id", "router_id"}
    [network] = named(sim, "networks", NAME)
    [subnet] = named(sim, "subnets", NAME)
    [router] = named(sim, "routers", NAME)
    assert (network["id"], subnet["id"], router["id"]) == (
        ready["network_id"],
        ready["subnet_id"],
        ready["router_id"],
    )
    for record in (network, subnet, router):
        assert set(owned_tags(CID)) <= set(record["tags"])
        assert record["description"] == f"Created by clusterbus for cluster {CID}"
    assert subnet["cidr"] == "10.6.0.0/24"
    assert subnet["dns_nameservers"] == ["9.9.9.9"]
    public = sim.connect(CLOUD).network.find_network("public")
    assert router["external_gateway_info"]["network_id"] == public.id
    interfaces = [
        p
        for p in inventory(sim, "ports")
        if p["device_id"] == router["id"] and p["device_owner"] == "network:router_interface"
    ]
    assert [ip["subnet_id"] for p in interfaces for ip in p["fixed_ips"]] == [subnet["id"]]


async def test_ensure_twice_creates_nothing_twice_and_is_cheap(sim: Sim, deps: Deps) -> None:
    first = await ensure(deps)
    again_by_name = await ensure(deps)
    before = call_count(sim)
    again_by_id = await ensure(deps, known={k: v for k, v in first.items() if k != "cluster_id"})
    calls = call_count(sim) - before

    assert first == again_by_name == again_by_id
    for kind in ("networks", "subnets", "routers"):
        assert len(named(sim, kind, NAME)) == 1, kind
    router_ports = [p for p in inventory(sim, "ports") if p["device_id"] == first["router_id"]]
    assert len([p for p in router_ports if p["device_owner"] == "network:router_interface"]) == 1
    # external list, GET network/subnet/router, list router ports
    assert calls <= 5


async def test_ensure_repairs_a_missing_interface(sim: Sim, deps: Deps) -> None:
    first = await ensure(deps)
    conn = sim.connect(CLOUD)
    conn.network.remove_interface_from_router(first["router_id"], subnet=first["subnet_id"])

    assert await ensure(deps) == first
    assert any(
        p["device_id"] == first["router_id"] and p["device_owner"] == "network:router_interface"
        for p in inventory(sim, "ports")
    )


async def test_missing_external_network_is_terminal(deps: Deps) -> None:
    with pytest.raises(TerminalError, match="external network 'nowhere' not found"):
        await handle_network_ensure(ensure_task(external_network="nowhere"), deps)


async def test_internal_network_as_external_is_terminal(sim: Sim, deps: Deps) -> None:
    sim.connect(CLOUD).network.create_network(name="plain")
    with pytest.raises(TerminalError, match="'plain' is not an external network"):
        await handle_network_ensure(ensure_task(external_network="plain"), deps)


async def test_quota_is_terminal_with_neutrons_message(sim: Sim, deps: Deps) -> None:
    project = ProjectSpec(name="demo", user="demo", password="demo-password", quota=Quota(router=0))
    sim.put_profile(Profile(time_scale=0.01, seed=1, projects=[project]), reset=True)

    with pytest.raises(TerminalError, match=r"Quota exceeded for resources: \['router'\]"):
        await handle_network_ensure(ensure_task(), deps)


async def test_broken_cloud_is_transient_and_a_retry_finishes(sim: Sim, deps: Deps) -> None:
    fault = ErrorFault(match="network.routers.create", rate=1.0, kind="http_503")
    sim.put_profile(Profile(time_scale=0.01, seed=1, faults=Faults(errors=[fault])))
    with pytest.raises(TransientError):
        await handle_network_ensure(ensure_task(), deps)

    sim.put_profile(Profile(time_scale=0.01, seed=1))
    ready = await ensure(deps)  # the redelivered task adopts the network and subnet made before
    for kind in ("networks", "subnets", "routers"):
        assert len(named(sim, kind, NAME)) == 1, kind
    assert named(sim, "networks", NAME)[0]["id"] == ready["network_id"]


async def test_foreign_network_with_our_name_is_neither_adopted_nor_deleted(
    sim: Sim, deps: Deps
) -> None:
    foreign = sim.connect(CLOUD).network.create_network(name=NAME)
    ready = await ensure(deps, known={"network_id": foreign.id})
    assert ready["network_id"] != foreign.id

    await run_until_done(handle_network_delete, delete_task({"network_id": foreign.id}), deps)
    assert [n["id"] for n in named(sim, "networks", NAME)] == [foreign.id]
    assert leaks(sim, CID) == []


async def test_delete_cleans_dangling_ports_and_fips(sim: Sim, deps: Deps) -> None:
    ready = await ensure(deps)
    conn = sim.connect(CLOUD)
    # A port a crashed server.create left behind (untagged, CAPO #723), a tagged port, and a
    # bastion floating IP whose server.delete never ran.
    conn.network.create_port(network_id=ready["network_id"], name=f"{CID}-worker-0-0")
    port = conn.network.create_port(
        network_id=ready["network_id"], name="anything", tags=owned_tags(CID)
    )
    public = conn.network.find_network("public")
    conn.network.create_ip(floating_network_id=public.id, port_id=port.id, tags=owned_tags(CID))
    assert leaks(sim, CID)

    run = await run_until_done(handle_network_delete, delete_task(), deps)

    assert run.last("network.deleted").data == {"cluster_id": CID}
    assert leaks(sim, CID) == []
    assert [p for p in inventory(sim, "ports") if p["network_id"] == ready["network_id"]] == []
    # Running it again (e.g. a redelivered task) is fine.
    known = {k: v for k, v in ready.items() if k != "cluster_id"}
    await run_until_done(handle_network_delete, delete_task(known), deps)


async def test_network_in_use_is_transient_then_deleted(sim: Sim, deps: Deps) -> None:
    ready = await ensure(deps)
    conn = sim.connect(CLOUD)
    vip = conn.network.create_port(
        network_id=ready["network_id"], name="octavia-lb-x", device_owner="Octavia"
    )
    known = {k: v for k, v in ready.items() if k != "cluster_id"}

    with pytest.raises(TransientError, match="one or more ports still in use"):
        await handle_network_delete(delete_task(known), deps)
    assert named(sim, "networks", NAME), "a foreign port must keep the network"
    assert conn.network.get_port(vip.id).name == "octavia-lb-x"

    conn.network.delete_port(vip)
    await run_until_done(handle_network_delete, delete_task(known), deps)
    assert leaks(sim, CID) == []


def test_router_interface_calls_use_the_sdks_current_parameter_names(sim: Sim) -> None:
    """openstacksdk 4.22 renamed subnet_id/port_id (RemovedInSDK50Warning): 5.0 drops them."""
    conn = sim.connect(CLOUD)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ensure_network_sync(conn, ensure_task())
        delete_network_sync(conn, delete_task())
    renamed = [str(w.message) for w in caught if "has been renamed" in str(w.message)]
    assert renamed == []
    assert leaks(sim, CID) == []


# ---- floatingip.ensure ----------------------------------------------------------------------
MACHINE = f"{CID}-bastion"


def bastion_port(sim: Sim, network_id: str) -> tuple[str, str]:
    """(server_id, port_id): a port bound to a (pretend) bastion server, like Nova leaves it."""
    server_id = str(uuid.uuid4())
    port = sim.connect(CLOUD).network.create_port(
        network_id=network_id,
        name=f"{MACHINE}-0",
        device_id=server_id,
        device_owner="compute:nova",
        tags=owned_tags(CID),
    )
    return server_id, port.id


def fip_task(server_id: str, **overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "cluster_id": CID,
        "cloud": CLOUD,
        "attempt": 0,
        "machine_id": MACHINE,
        "server_id": server_id,
        "external_network": "public",
        "known_floating_ip_id": None,
    }
    return EnsureFloatingIp.model_validate({**task, **overrides}).model_dump(mode="json")


def our_fips(sim: Sim) -> list[dict[str, Any]]:
    return [f for f in inventory(sim, "floatingips") if cluster_tag(CID) in f["tags"]]


async def test_floating_ip_allocated_once_and_bound(sim: Sim, deps: Deps) -> None:
    ready = await ensure(deps)
    server_id, port_id = bastion_port(sim, ready["network_id"])

    first = (await run_until_done(handle_floatingip_ensure, fip_task(server_id), deps)).last(
        "floatingip.ready"
    )
    again = await run_until_done(handle_floatingip_ensure, fip_task(server_id), deps)
    before = call_count(sim)
    known = fip_task(server_id, known_floating_ip_id=first.data["floating_ip_id"])
    by_id = await run_until_done(handle_floatingip_ensure, known, deps)

    assert call_count(sim) - before == 1  # GET the recorded floating IP, nothing else
    FloatingIpReady.model_validate(first.data)
    assert again.last("floatingip.ready") == by_id.last("floatingip.ready") == first
    [fip] = our_fips(sim)
    assert fip["id"] == first.data["floating_ip_id"]
    assert fip["floating_ip_address"] == first.data["address"]
    assert fip["port_id"] == port_id
    assert MACHINE in fip["description"]


async def test_floating_ip_left_by_a_crash_is_reused(sim: Sim, deps: Deps) -> None:
    ready = await ensure(deps)
    server_id, port_id = bastion_port(sim, ready["network_id"])
    public = sim.connect(CLOUD).network.find_network("public")
    orphan = sim.connect(CLOUD).network.create_ip(
        floating_network_id=public.id,
        description=f"Created by clusterbus for cluster {CID} machine {MACHINE}",
        tags=owned_tags(CID),
    )

    run = await run_until_done(handle_floatingip_ensure, fip_task(server_id), deps)

    assert run.last("floatingip.ready").data["floating_ip_id"] == orphan.id
    assert [(f["id"], f["port_id"]) for f in our_fips(sim)] == [(orphan.id, port_id)]


async def test_unreachable_external_network_leaks_no_floating_ip(sim: Sim, deps: Deps) -> None:
    ready = await ensure(deps)
    server_id, _ = bastion_port(sim, ready["network_id"])
    sim.connect(CLOUD).network.remove_interface_from_router(
        ready["router_id"], subnet=ready["subnet_id"]
    )

    with pytest.raises(TerminalError, match="is not reachable from subnet"):
        await handle_floatingip_ensure(fip_task(server_id), deps)
    assert our_fips(sim) == []


async def test_network_delete_releases_the_bastion_fip_and_port(sim: Sim, deps: Deps) -> None:
    ready = await ensure(deps)
    server_id, _ = bastion_port(sim, ready["network_id"])
    await run_until_done(handle_floatingip_ensure, fip_task(server_id), deps)

    await run_until_done(handle_network_delete, delete_task(), deps)

    assert leaks(sim, CID) == []
    assert inventory(sim, "floatingips") == []
