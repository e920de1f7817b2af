"""Helpers for the load balancer handler tests: a cluster network, tasks, a retrying runner."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from handlerkit import CLOUD, TIME_SCALE, Run, run_until_done

from handlers.base import Deps, Handler, Reply, TransientError, backoff_ms
from handlers.network import handle_network_ensure
from simulator.testing import Sim


@dataclass(frozen=True)
class Net:
    network_id: str
    subnet_id: str
    router_id: str


async def make_network(
    deps: Deps, cluster_id: str, cidr: str = "10.6.0.0/24", cloud: str = CLOUD
) -> Net:
    """The cluster's network, subnet and router (the VIP floating IP needs the router)."""
    task = {"cluster_id": cluster_id, "cloud": cloud, "external_network": "public",
            "node_cidr": cidr, "dns_nameservers": [], "known": {}}  # fmt: skip
    run = await run_until_done(handle_network_ensure, task, deps)
    data = run.last("network.ready").data
    return Net(data["network_id"], data["subnet_id"], data["router_id"])


def lb_task(cluster_id: str, net: Net, **fields: Any) -> dict[str, Any]:
    """A loadbalancer.ensure / loadbalancer.delete task."""
    return {
        "cluster_id": cluster_id, "cloud": CLOUD, "attempt": 0, "subnet_id": net.subnet_id,
        "network_id": net.network_id, "external_network": "public", "api_port": 6443,
        "extra_ports": [], "allowed_cidrs": [], "known": {}, **fields,
    }  # fmt: skip


def member_task(
    cluster_id: str, ready: dict[str, Any], machine_id: str, address: str
) -> dict[str, Any]:
    """A member.ensure / member.delete task for the load balancer of ``ready``."""
    return {
        "cluster_id": cluster_id, "cloud": CLOUD, "attempt": 0, "machine_id": machine_id,
        "loadbalancer_id": ready["loadbalancer_id"], "pool_id": ready["pool_ids"][6443],
        "address": address, "port": 6443,
    }  # fmt: skip


async def run_retrying(
    handler: Handler, task: dict[str, Any], deps: Deps, deadline: float = 15.0
) -> tuple[Run, int]:
    """Like ``run_until_done``, but a TransientError re-runs the task after a (scaled) backoff,
    as the runner does. Returns the run and how many transient errors it absorbed."""
    give_up = time.monotonic() + deadline
    run, current, errors = Run(reply=Reply()), dict(task), 0
    while True:
        run.task = current
        try:
            reply = await handler(current, deps)
        except TransientError:
            errors += 1
            if time.monotonic() > give_up:
                raise
            await asyncio.sleep(backoff_ms(errors - 1, cap_ms=4000) / 1000 * TIME_SCALE)
            continue
        run.rounds += 1
        run.reply = reply
        run.events.extend(reply.events)
        if reply.retry_after_ms is None:
            return run, errors
        assert reply.retry_data is not None
        if time.monotonic() > give_up:
            raise AssertionError(f"not done within {deadline} s after {run.rounds} rounds")
        current = {**reply.retry_data, "attempt": int(reply.retry_data.get("attempt", 0)) + 1}
        await asyncio.sleep(reply.retry_after_ms / 1000 * TIME_SCALE)


def boot_server(sim: Sim, net: Net, name: str) -> tuple[str, str]:
    """(server id, fixed IP) of a new server on the cluster network (health checks need one)."""
    conn = sim.connect(CLOUD)
    flavor = conn.compute.find_flavor("m1.small", ignore_missing=False)
    image = conn.image.find_image("cirros-0.6.2", ignore_missing=False)
    server = conn.compute.create_server(
        name=name, flavor_id=flavor.id, image_id=image.id, networks=[{"uuid": net.network_id}]
    )
    port = next(iter(conn.network.ports(device_id=server.id)))
    return server.id, str(port.fixed_ips[0]["ip_address"])
