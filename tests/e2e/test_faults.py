"""Issue 4 end to end under faults: a flaky cloud, a quota, and SIGKILLed processes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest
from e2ekit import Deployment, fast_profile
from topology import assert_topology, duplicates

from simulator.profile import ErrorFault, Faults, Profile, ProjectSpec, Quota, StuckLoadBalancer
from simulator.testing import Sim

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(150)]


async def delete_and_expect_no_leaks(deployment: Deployment, sim: Sim, cluster: str) -> None:
    await deployment.command("cluster.delete", cluster, {})
    # The cluster may be failed when the delete is sent: no fail-fast on "failed" here.
    await deployment.wait_state(cluster, "deleted", within=60, fail_fast=False)
    leaks = sim.inspect("leaks")
    assert leaks["count"] == 0, leaks["leaks"]


async def test_a_flaky_cloud_and_a_stuck_load_balancer_still_give_a_ready_cluster(
    start_sim: Callable[[Profile], Sim], deployment: Deployment
) -> None:
    faults = Faults(
        errors=[
            ErrorFault(match=f"{service}.*", rate=0.2)
            for service in ("compute", "network", "load-balancer")
        ],
        # 150 cloud seconds = 1.5 s of PENDING_UPDATE after every change to the API LB.
        stuck_load_balancers=[StuckLoadBalancer(name_regex=r".*-kubeapi$", seconds=150)],
    )
    sim = start_sim(fast_profile(faults=faults))
    await deployment.start_and_wait()
    await deployment.create("flaky", "clusterbus-sim")
    await deployment.wait_state("flaky", "ready", within=90)
    errors = sim.inspect("calls")["errors"]
    assert sum(errors.values()) > 0, "the profile injected no error"  # the test tested something
    assert_topology(sim, "demo", "flaky")
    await delete_and_expect_no_leaks(deployment, sim, "flaky")


async def test_a_quota_exceeded_server_fails_the_cluster_with_novas_message(
    start_sim: Callable[[Profile], Sim], deployment: Deployment
) -> None:
    # bastion + 3 control-plane nodes fit; the workers (created alongside CP 1) do not.
    projects = [
        ProjectSpec(name="demo", user="demo", password="demo-password", quota=Quota(instances=4))
    ]
    sim = start_sim(fast_profile(projects=projects))
    await deployment.start_and_wait()
    await deployment.create("tight", "clusterbus-sim")
    await deployment.wait_state("tight", "failed", within=60)
    loaded = await deployment.store.load("tight")
    assert loaded is not None
    reason = loaded[0].doc["failure_reason"]
    assert "Quota exceeded for instances" in reason, reason
    failed = [m for m in loaded[1] if m.state == "failed"]
    assert failed, "no machine failed"
    assert "Quota exceeded for instances" in (failed[0].doc.get("failure_reason") or "")
    await delete_and_expect_no_leaks(deployment, sim, "tight")


async def test_random_sigkills_during_a_create_still_converge_without_duplicates(
    start_sim: Callable[[Profile], Sim], deployment: Deployment
) -> None:
    # Slower cloud (a create takes ~10 s undisturbed) so that the kills land mid-way.
    sim = start_sim(fast_profile(time_scale=0.03))
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    await deployment.start_and_wait()
    await deployment.create("crashy", "clusterbus-sim")
    kills = 0
    while kills < 10 or await deployment.state("crashy") != "ready":
        await asyncio.sleep(rng.uniform(0.2, 1.2))  # a random moment, not a wait
        roles = rng.choice([("engine",), ("handlers",), ("engine", "handlers")])
        for role in roles:
            deployment.kill(role)
            kills += 1
        deployment.start(*roles)
        if kills >= 16:
            break
    await deployment.wait_state("crashy", "ready", within=90)
    assert kills >= 10, f"seed {seed}"
    assert duplicates(sim) == {}, f"seed {seed}"
    assert_topology(sim, "demo", "crashy")
