"""``python -m engine cluster ...`` as a subprocess against an engine without handlers."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
import yaml
from clihelpers import cli, publish_event, wait_state

from engine.bus import Bus
from engine.client import ClusterClient
from engine.messages import (
    ClusterSpec,
    LoadBalancerDeleted,
    NetworkDeleted,
    NetworkFailed,
    SecurityGroupsDeleted,
)
from engine.secrets import StoreSecrets
from engine.settings import Settings
from engine.store import Store
from support.processes import ClusterbusProcess

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(120)]


async def test_create_get_list_through_the_cli(
    settings: Settings, client: ClusterClient, engine: ClusterbusProcess
) -> None:
    created = await cli(settings, "cluster", "create", "cli-demo", "--workers", "2", "--no-bastion")
    assert created.code == 0, created.err
    assert "accepted" in created.out
    await wait_state(client, "cli-demo", "provisioning_network")

    got = await cli(settings, "cluster", "get", "cli-demo", "-o", "json")
    assert got.code == 0, got.err
    assert json.loads(got.out)["state"] == "provisioning_network"
    as_yaml = await cli(settings, "cluster", "get", "cli-demo", "-o", "yaml")
    assert yaml.safe_load(as_yaml.out)["cluster_id"] == "cli-demo"
    table = await cli(settings, "cluster", "get", "cli-demo")
    assert "NetworkReady" in table.out and "provisioning_network" in table.out
    listed = await cli(settings, "cluster", "list")
    assert "cli-demo" in listed.out
    missing = await cli(settings, "cluster", "get", "nope")
    assert missing.code == 1 and "no cluster named nope" in missing.err


async def test_create_from_a_spec_file_and_invalid_specs(
    settings: Settings, client: ClusterClient, engine: ClusterbusProcess, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: from-file\ncloud: other\ncontrol_plane: {replicas: 1}\n")
    created = await cli(settings, "cluster", "create", "-f", str(spec))
    assert created.code == 0, created.err
    await wait_state(client, "from-file", "provisioning_network")
    agg = await client.aggregate("from-file")
    assert agg is not None and agg.spec["cloud"] == "other"
    assert agg.spec["control_plane"]["replicas"] == 1

    even = await cli(settings, "cluster", "create", "bad", "--control-plane", "2")
    assert even.code == 2 and "must be odd" in even.err


async def test_create_wait_exits_non_zero_with_the_reason_on_failed(
    settings: Settings, client: ClusterClient, bus: Bus, engine: ClusterbusProcess
) -> None:
    waiting = asyncio.create_task(
        cli(settings, "cluster", "create", "doomed", "--wait", "--timeout", "30")
    )
    await wait_state(client, "doomed", "provisioning_network")
    await publish_event(bus, NetworkFailed(cluster_id="doomed", reason="no external network"))
    result = await waiting
    assert result.code == 1
    assert "no external network" in result.err


async def test_delete_wait_follows_the_deletion_to_the_end(
    settings: Settings, client: ClusterClient, bus: Bus, engine: ClusterbusProcess
) -> None:
    await client.create_cluster(_spec("gone"))
    await wait_state(client, "gone", "provisioning_network")
    deleting = asyncio.create_task(cli(settings, "cluster", "delete", "gone", "--wait"))
    # Nothing was created, so the fake handler simply confirms each delete task in turn.
    await wait_state(client, "gone", "deleting_loadbalancer")
    await publish_event(bus, LoadBalancerDeleted(cluster_id="gone"))
    await wait_state(client, "gone", "deleting_network")
    await publish_event(bus, NetworkDeleted(cluster_id="gone"))
    await wait_state(client, "gone", "deleting_security_groups")
    await publish_event(bus, SecurityGroupsDeleted(cluster_id="gone"))
    result = await deleting
    assert result.code == 0, result.err
    assert "gone deleted" in result.out


async def test_kubeconfig_is_decrypted_into_a_0600_file(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    secrets = StoreSecrets.from_settings(store, settings)
    config = b"apiVersion: v1\nkind: Config\nusers: [{name: admin}]\n"
    await secrets.put_if_absent("kc", "kubeconfig", config)
    target = tmp_path / "kc.yaml"
    target.write_text("old")
    target.chmod(0o644)  # an existing, too open file must be tightened
    result = await cli(settings, "cluster", "kubeconfig", "kc", "--output", str(target))
    assert result.code == 0, result.err
    assert target.read_bytes() == config
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    printed = await cli(settings, "cluster", "kubeconfig", "kc")
    assert printed.out.encode() == config
    absent = await cli(settings, "cluster", "kubeconfig", "other")
    assert absent.code == 1 and "no kubeconfig" in absent.err


async def test_a_clear_error_when_rabbitmq_is_down(settings: Settings) -> None:
    down = {"CLUSTERBUS_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"}
    result = await cli(settings, "cluster", "create", "x", env=down)
    assert result.code == 1
    assert "rabbitmq-server -detached" in result.err


def _spec(name: str) -> ClusterSpec:
    return ClusterSpec(name=name, cloud="clusterbus-sim")


async def test_watch_follows_until_failed(
    settings: Settings, client: ClusterClient, bus: Bus, engine: ClusterbusProcess
) -> None:
    await client.create_cluster(_spec("watched"))
    await wait_state(client, "watched", "provisioning_network")
    watching = asyncio.create_task(cli(settings, "cluster", "watch", "watched", "--timeout", "30"))
    await publish_event(bus, NetworkFailed(cluster_id="watched", reason="router quota"))
    result = await watching
    assert result.code == 1, result.err
    assert "watched failed" in result.out and "router quota" in result.out
    absent = await cli(settings, "cluster", "watch", "nobody")
    assert absent.code == 1 and "no cluster named nobody" in absent.err
    retried = await cli(settings, "cluster", "retry", "watched")
    assert retried.code == 0, retried.err
    await wait_state(client, "watched", "provisioning_network")  # resumed where it failed
