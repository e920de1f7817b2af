"""The unchanged ``openstack`` CLI (openstackclient + octaviaclient) against the simulator."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulator.testing import Sim

OPENSTACK = Path(sys.executable).with_name("openstack")
pytestmark = pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient missing")


def cli(sim: Sim, *args: str, json_output: bool = True) -> Any:
    """Run ``openstack --os-cloud clusterbus-sim ARGS`` with only the test's clouds.yaml."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(sim.clouds_yaml)
    command = [str(OPENSTACK), "--os-cloud", "clusterbus-sim", *args]
    if json_output:
        command += ["-f", "json"]
    done = subprocess.run(
        command, env=env, cwd=sim.clouds_yaml.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stderr}"
    return json.loads(done.stdout) if json_output else done.stdout


def test_openstack_cli_compute_network_and_load_balancer(sim: Sim) -> None:
    assert "public" in {n["Name"] for n in cli(sim, "network", "list")}

    network = cli(sim, "network", "create", "cli-net")
    subnet = cli(
        sim, "subnet", "create", "--network", "cli-net", "--subnet-range", "10.20.0.0/24", "cli-sub"
    )
    assert subnet["network_id"] == network["id"]
    assert subnet["cidr"] == "10.20.0.0/24"

    created = cli(
        sim,
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "cirros-0.6.2",
        "--network",
        "cli-net",
        "cli-vm",
    )
    assert created["name"] == "cli-vm"
    sim.wait_status("servers", created["id"], "ACTIVE")
    shown = cli(sim, "server", "show", "cli-vm")
    assert shown["status"] == "ACTIVE"
    (address,) = shown["addresses"]["cli-net"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network("10.20.0.0/24")
    assert [s["Name"] for s in cli(sim, "server", "list")] == ["cli-vm"]

    rules = cli(sim, "security", "group", "rule", "list")
    assert rules, "the project's default security group has rules"
    assert {r["Direction"] for r in rules} >= {"ingress", "egress"}

    fip = cli(sim, "floating", "ip", "create", "public")
    assert ipaddress.ip_address(fip["floating_ip_address"]).is_loopback

    lb = cli(sim, "loadbalancer", "create", "--name", "cli-lb", "--vip-subnet-id", "cli-sub")
    assert lb["provisioning_status"] == "PENDING_CREATE"
    assert ipaddress.ip_address(lb["vip_address"]) in ipaddress.ip_network("10.20.0.0/24")
    sim.wait_status("loadbalancers", lb["id"], "ACTIVE")
    assert cli(sim, "loadbalancer", "show", "cli-lb")["provisioning_status"] == "ACTIVE"
    assert [row["name"] for row in cli(sim, "loadbalancer", "list")] == ["cli-lb"]

    cli(sim, "server", "delete", "cli-vm", json_output=False)
    sim.wait_status("servers", created["id"], None)
    assert cli(sim, "server", "list") == []
