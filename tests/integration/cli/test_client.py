"""ClusterClient against a running engine without handlers (a fake handler answers by hand)."""

from __future__ import annotations

import asyncio

import pytest
from clihelpers import publish_event, wait_state

from engine.bus import Bus
from engine.client import ClusterClient, ClusterFailed
from engine.messages import ClusterSpec, NetworkFailed, WorkerPoolSpec
from support.processes import ClusterbusProcess

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(90)]


def spec(name: str) -> ClusterSpec:
    return ClusterSpec(
        name=name, cloud="clusterbus-sim", worker_pools=[WorkerPoolSpec(name="md", replicas=2)]
    )


async def test_create_get_list_and_watch(client: ClusterClient, engine: ClusterbusProcess) -> None:
    notes = await client.subscribe("alpha")  # bound when it returns
    correlation = await client.create_cluster(spec("alpha"))
    assert correlation
    await wait_state(client, "alpha", "provisioning_network")

    snap = await client.get("alpha")
    assert snap is not None
    assert snap["cluster_id"] == "alpha"
    assert "accepted" in snap["timings"]
    assert snap["conditions"]["NetworkReady"]["status"] != "True"
    assert [c["cluster_id"] for c in await client.list()] == ["alpha"]
    assert await client.get("nope") is None

    states = []
    while "provisioning_network" not in states:
        note = await notes.next(within=10)
        assert note["cluster_id"] == "alpha"
        states.append(note["to_state"])
    await notes.close()


async def test_wait_ready_raises_cluster_failed_with_the_reason(
    client: ClusterClient, bus: Bus, engine: ClusterbusProcess
) -> None:
    await client.create_cluster(spec("beta"))
    await wait_state(client, "beta", "provisioning_network")
    waiting = asyncio.create_task(client.wait_ready("beta", timeout=30))
    await publish_event(bus, NetworkFailed(cluster_id="beta", reason="quota exceeded: networks"))
    with pytest.raises(ClusterFailed) as failed:
        await waiting
    assert "quota exceeded" in failed.value.reason


async def test_wait_ready_times_out_while_nothing_answers(
    client: ClusterClient, engine: ClusterbusProcess
) -> None:
    await client.create_cluster(spec("gamma"))
    with pytest.raises(TimeoutError, match="gamma"):
        await client.wait_ready("gamma", timeout=1.5)
