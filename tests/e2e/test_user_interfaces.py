"""Issue 5 end to end: the CLI as a user drives it, a pika producer, and the demo command.

Engine and handlers run as child processes against the simulator, as in test_e2e_lifecycle.py.
"""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import sys
from pathlib import Path
from typing import Any

import pika
import pytest
import yaml
from e2ekit import Deployment, fast_profile

from engine.messages.envelope import new_id
from engine.settings import Settings
from simulator.profile import Profile, ProjectSpec, Quota
from simulator.testing import Sim
from support.processes import settings_env

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(180)]


async def clusterbus(
    settings: Settings, tmp_path: Path, *args: str, within: float = 90.0
) -> tuple[int, str]:
    """``clusterbus ARGS`` as a child process; returns (exit code, stdout + stderr)."""
    env = settings_env(settings, COLUMNS="200", OS_CLIENT_CONFIG_FILE=str(tmp_path / "clouds.yaml"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), within)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_the_cli_drives_a_cluster_through_its_whole_life(
    sim: Sim, deployment: Deployment, settings: Settings, tmp_path: Path
) -> None:
    await deployment.start_and_wait()
    run = lambda *a: clusterbus(settings, tmp_path, *a)  # noqa: E731
    code, out = await run(
        "cluster", "create", "clie", "--os-cloud", "clusterbus-sim",
        "--control-plane", "1", "--workers", "1", "--wait", "--timeout", "90",
    )  # fmt: skip
    assert code == 0, out

    code, out = await run("cluster", "get", "clie", "-o", "json")
    assert code == 0, out
    snapshot = json.loads(out)
    assert snapshot["state"] == "ready"
    endpoint = snapshot["endpoint"]
    assert endpoint.startswith("https://127.100.") and endpoint.endswith(":6443")

    code, out = await run("cluster", "watch", "clie", "--timeout", "30")
    assert code == 0 and "ready" in out, out

    kubeconfig = tmp_path / "clie.kubeconfig"
    code, out = await run("cluster", "kubeconfig", "clie", "--output", str(kubeconfig))
    assert code == 0, out
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == endpoint

    code, out = await run("cluster", "ssh-config", "clie")
    assert code == 0 and "ProxyJump clie-bastion" in out, out

    code, out = await run("cluster", "scale", "clie", "--workers", "worker=2")
    assert code == 0, out
    await deployment.wait_state("clie", "scaling", within=30)
    await deployment.wait_state("clie", "ready", within=60)
    machines = await deployment.machines("clie")
    assert (
        sum(1 for role, state, _ in machines.values() if (role, state) == ("worker", "running"))
        == 2
    )

    code, out = await run("cluster", "delete", "clie", "--wait", "--timeout", "90")
    assert code == 0, out
    leaks = sim.inspect("leaks", tag="clusterbus-cluster=clie")
    assert leaks["count"] == 0, leaks["leaks"]


@pytest.fixture
def quota_sim(start_sim: Any) -> Sim:
    tight = Quota(instances=1)
    projects = [
        ProjectSpec(name="demo", user="demo", password="demo-password"),
        ProjectSpec(name="alt", user="alt", password="alt-password", quota=tight),
    ]
    profile: Profile = fast_profile(projects=projects)
    sim: Sim = start_sim(profile)
    return sim


async def test_create_wait_on_a_cluster_over_quota_exits_non_zero_with_novas_message(
    quota_sim: Sim, deployment: Deployment, settings: Settings, tmp_path: Path
) -> None:
    await deployment.start_and_wait()
    code, out = await clusterbus(
        settings, tmp_path,
        "cluster", "create", "over", "--os-cloud", "clusterbus-sim-alt",
        "--control-plane", "1", "--workers", "2", "--wait", "--timeout", "90",
    )  # fmt: skip
    assert code != 0, out
    assert "Quota exceeded for instances" in out


def _pika_create_and_follow(settings: Settings, name: str, deadline_s: float) -> list[str]:
    """A service that does not use our code: pika, plain JSON, the documented properties."""
    params = pika.URLParameters(settings.amqp_url.get_secret_value())
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        prefix = settings.topology_prefix
        channel.queue_bind(queue, f"{prefix}.notifications", f"cluster.state_changed.*.{name}")
        spec = {"name": name, "cloud": "clusterbus-sim", "control_plane": {"replicas": 1},
                "worker_pools": [], "bastion": {"enabled": False}}  # fmt: skip
        event_id = new_id()
        body = {
            "specversion": "1.0", "id": event_id, "source": "pika-service",
            "type": "cluster.create", "subject": name, "time": "2026-12-04T00:00:00Z",
            "datacontenttype": "application/json", "correlationid": event_id,
            "data": {"spec": spec},
        }  # fmt: skip
        channel.confirm_delivery()
        channel.basic_publish(
            f"{prefix}.commands",
            "cluster.create",
            json.dumps(body).encode(),
            pika.BasicProperties(
                content_type="application/cloudevents+json",
                message_id=event_id,
                correlation_id=event_id,
                type="cluster.create",
                user_id=params.credentials.username,
                delivery_mode=2,
                headers={"ce-subject": name},
            ),
            mandatory=True,
        )
        states: list[str] = []
        for _method, _props, payload in channel.consume(queue, inactivity_timeout=deadline_s):
            if payload is None:
                break
            states.append(json.loads(payload)["data"]["to_state"])
            if states[-1] in ("ready", "failed"):
                break
        return states
    finally:
        connection.close()


async def test_a_pika_service_creates_a_cluster_and_follows_it_to_ready(
    sim: Sim, deployment: Deployment, settings: Settings
) -> None:
    await deployment.start_and_wait()
    states = await asyncio.to_thread(_pika_create_and_follow, settings, "pikaland", 60.0)
    assert states and states[-1] == "ready", (states, deployment.logs(400))
    assert "provisioning_network" in states


async def test_the_demo_brings_two_clusters_to_ready_and_cleans_up(
    settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(settings, COLUMNS="160")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", "demo", "--time-scale", "0.02", "--workdir", str(tmp_path),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []

    async def until(marker: str) -> None:
        while proc.stdout is not None:
            line = (await proc.stdout.readline()).decode()
            if not line:
                code = await proc.wait()
                raise AssertionError(f"demo ended early ({code}):\n" + "".join(seen[-60:]))
            seen.append(line)
            if marker in line:
                return

    try:
        await asyncio.wait_for(until("Clusters are running"), 120)
        text = "".join(seen)
        assert text.count("API endpoint : https://127.100.") == 2, text
        assert (tmp_path / "demo-a.kubeconfig").exists()
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(until("servers left in the cloud: 0"), 120)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
