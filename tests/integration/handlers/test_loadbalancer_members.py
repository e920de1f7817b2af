"""member.ensure / member.poll / member.delete against the simulator over HTTP (time scale 0.01).

Default delays: lb_update 5 s (0.05 s wall), member_online 10 s, server_boot 30 s.
"""

from __future__ import annotations

from typing import Any

import pytest
from handlerkit import CLOUD, inventory, run_until_done
from lbkit import Net, boot_server, lb_task, make_network, member_task

from engine.messages.events import MemberAdded
from engine.messages.tasks import EnsureMember
from handlers.base import Deps, TerminalError, owned_tags
from handlers.loadbalancer import handle_loadbalancer_ensure
from handlers.loadbalancer_members import (
    handle_member_delete,
    handle_member_ensure,
    handle_member_poll,
    node_ready,
)
from simulator.testing import Sim

CID = "memb"


async def _endpoint(deps: Deps, extra_ports: list[int] | None = None) -> tuple[Net, dict[str, Any]]:
    net = await make_network(deps, CID)
    task = lb_task(CID, net, extra_ports=extra_ports or [])
    run = await run_until_done(handle_loadbalancer_ensure, task, deps)
    return net, run.last("loadbalancer.ready").data


def _members(sim: Sim, machine_id: str) -> list[dict[str, Any]]:
    return [m for m in inventory(sim, "members") if m["name"].endswith(f"-{machine_id}")]


async def test_member_added_once_per_pool_then_online(sim: Sim, deps: Deps) -> None:
    net, ready = await _endpoint(deps, extra_ports=[9345])
    _, address = boot_server(sim, net, f"{CID}-control-plane-0")
    task = member_task(CID, ready, f"{CID}-control-plane-0", address)

    run = await run_until_done(handle_member_ensure, task, deps)

    added = run.last("member.added").data
    members = {m["protocol_port"]: m for m in _members(sim, f"{CID}-control-plane-0")}
    assert sorted(members) == [6443, 9345]
    for port, member in members.items():
        assert member["name"] == f"clusterbus-{CID}-kubeapi-{port}-{CID}-control-plane-0"
        assert (member["address"], member["tags"]) == (address, owned_tags(CID))
    assert added == {"cluster_id": CID, "machine_id": f"{CID}-control-plane-0",
                     "member_id": members[6443]["id"]}  # fmt: skip
    assert run.rounds > 2  # one change per run, each waited out
    MemberAdded.model_validate(added)
    EnsureMember.model_validate(run.task)

    again = await run_until_done(handle_member_ensure, task, deps)
    assert again.rounds == 1 and again.last("member.added").data == added
    assert len(_members(sim, f"{CID}-control-plane-0")) == 2

    poll = {**task, "member_id": added["member_id"]}
    online = await run_until_done(handle_member_poll, poll, deps)
    assert [e.type for e in online.events] == ["member.online"]
    assert node_ready(sim.connect(CLOUD), poll) is True


async def test_changed_address_recreates_the_member(sim: Sim, deps: Deps) -> None:
    _, ready = await _endpoint(deps)
    machine = f"{CID}-control-plane-1"
    first = await run_until_done(
        handle_member_ensure, member_task(CID, ready, machine, "10.6.0.50"), deps
    )
    second = await run_until_done(
        handle_member_ensure, member_task(CID, ready, machine, "10.6.0.51"), deps
    )

    [member] = _members(sim, machine)
    assert member["address"] == "10.6.0.51"
    assert second.last("member.added").data["member_id"] == member["id"]
    assert member["id"] != first.last("member.added").data["member_id"]

    # No server answers at that address: the probe says "not yet", with backoff, no event.
    poll = {**member_task(CID, ready, machine, "10.6.0.51"), "member_id": member["id"]}
    reply = await handle_member_poll(poll, deps)
    assert reply.events == () and reply.retry_after_ms == 1000


async def test_member_delete_is_idempotent_and_finds_the_lb_by_name(sim: Sim, deps: Deps) -> None:
    _, ready = await _endpoint(deps, extra_ports=[9345])
    machine = f"{CID}-control-plane-2"
    task = member_task(CID, ready, machine, "10.6.0.60")
    await run_until_done(handle_member_ensure, task, deps)
    other = member_task(CID, ready, f"{CID}-control-plane-3", "10.6.0.61")
    await run_until_done(handle_member_ensure, other, deps)

    run = await run_until_done(handle_member_delete, task, deps)
    assert [e.type for e in run.events] == ["member.deleted"]
    assert _members(sim, machine) == []
    assert len(_members(sim, f"{CID}-control-plane-3")) == 2  # the other machine stays

    # Nothing recorded but the machine: found by the LB's name and the member names.
    bare = {"cluster_id": CID, "cloud": CLOUD, "machine_id": f"{CID}-control-plane-3"}
    run = await run_until_done(handle_member_delete, bare, deps)
    assert [e.type for e in run.events] == ["member.deleted"]
    assert inventory(sim, "members") == []
    again = await run_until_done(handle_member_delete, bare, deps)
    assert again.rounds == 1 and [e.type for e in again.events] == ["member.deleted"]


async def test_member_for_a_foreign_pool_is_terminal(sim: Sim, deps: Deps) -> None:
    _, ready = await _endpoint(deps)
    task = {**member_task(CID, ready, f"{CID}-control-plane-0", "10.6.0.70"), "pool_id": "nope"}
    with pytest.raises(TerminalError, match="pool nope is not on load balancer"):
        await handle_member_ensure(task, deps)
