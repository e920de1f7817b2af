"""Issue 4 end to end: engine + handlers as child processes, real RabbitMQ, the simulator over HTTP.

Clusters: 3 control-plane nodes, 2 workers (pool ``md``), a bastion. The simulator runs at
time_scale 0.01, so a cluster is ready in a few seconds.
"""

from __future__ import annotations

import pytest
from e2ekit import Deployment
from topology import assert_kubeconfig, assert_topology

from engine.secrets import StoreSecrets
from simulator.testing import Sim
from support.waiting import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(150)]

CLUSTERS = {"alpha": ("demo", "clusterbus-sim"), "beta": ("alt", "clusterbus-sim-alt")}


async def create_both(deployment: Deployment) -> None:
    await deployment.start_and_wait()
    for name, (_, cloud) in CLUSTERS.items():
        await deployment.create(name, cloud)
    for name in CLUSTERS:
        await deployment.wait_state(name, "ready", within=60)


async def test_two_clusters_side_by_side_reach_ready_with_the_designed_topology(
    sim: Sim, deployment: Deployment
) -> None:
    await create_both(deployment)
    secrets = StoreSecrets.from_settings(deployment.store, deployment.settings)
    api_ips = set()
    for name, (project, _) in CLUSTERS.items():
        api_ip = assert_topology(sim, project, name)
        await assert_kubeconfig(secrets, name, api_ip)
        api_ips.add(api_ip)
        machines = await deployment.machines(name)
        assert {state for _, state, _ in machines.values()} == {"running"}
        assert len(machines) == 6
    assert len(api_ips) == 2


async def running_workers(deployment: Deployment, cluster: str) -> list[str]:
    machines = await deployment.machines(cluster)
    return sorted(
        m for m, (role, state, _) in machines.items() if role == "worker" and state == "running"
    )


def worker_servers(sim: Sim, cluster: str) -> list[str]:
    servers = sim.inspect("inventory", project="demo")["servers"]
    return sorted(s["name"] for s in servers if s["name"].startswith(f"{cluster}-md-"))


async def test_scaling_workers_up_and_down_converges(sim: Sim, deployment: Deployment) -> None:
    await deployment.start_and_wait()
    await deployment.create("gamma", "clusterbus-sim")
    await deployment.wait_state("gamma", "ready")
    for replicas in (5, 1):
        wanted = [f"gamma-md-{i}" for i in range(replicas)]
        await deployment.command("cluster.scale", "gamma", {"workers": {"md": replicas}})

        async def converged(wanted: list[str] = wanted) -> bool:
            # "scaling" may be too brief to observe: wait for its result instead.
            state = await deployment.state("gamma")
            return state == "ready" and await running_workers(deployment, "gamma") == wanted

        await eventually(converged, within=60, what=f"{replicas} running workers")

        def servers_match(wanted: list[str] = wanted) -> bool:
            return worker_servers(sim, "gamma") == wanted

        assert sim.wait_for(servers_match, timeout=10) is True
    assert_topology(sim, "demo", "gamma", workers=1)


async def test_deleting_both_clusters_leaves_nothing_behind(
    sim: Sim, deployment: Deployment
) -> None:
    await create_both(deployment)
    for name in CLUSTERS:
        await deployment.command("cluster.delete", name, {})
    for name in CLUSTERS:
        await deployment.wait_state(name, "deleted", within=60)
    leaks = sim.inspect("leaks")
    assert leaks["count"] == 0, leaks["leaks"]
    secrets = StoreSecrets.from_settings(deployment.store, deployment.settings)

    async def secrets_gone() -> bool:
        return all([await secrets.get(n, "ca") is None for n in CLUSTERS])

    await eventually(secrets_gone, what="pki.delete to drop the secrets")
