"""``python -m simulator``: clouds.yaml merging, loopback only, and ``--state`` across restarts."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openstack.config
import openstack.connection
import pytest
import requests
import yaml

from simulator.profile import Delays, Profile
from simulator.serve import BackgroundSimulator, check_loopback


@contextmanager
def running(tmp_path: Path, *extra: str) -> Iterator[str]:
    """``python -m simulator`` on a free port; yields its base URL, stops it with SIGTERM."""
    command = [sys.executable, "-m", "simulator", "--port", "0", *extra]
    command += ["--clouds-yaml", str(tmp_path / "clouds.yaml")]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # blocks until the server printed its address
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
        assert match, f"unexpected output {first!r}; stderr: {process.stderr}"
        assert "clouds.yaml" in process.stdout.readline()
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


def connection(clouds_yaml: Path, name: str = "clusterbus-sim") -> openstack.connection.Connection:
    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)], load_envvars=False)
    return openstack.connection.Connection(config=config.get_one(name))


def test_clouds_yaml_is_merged_and_usable(tmp_path: Path) -> None:
    clouds_yaml = tmp_path / "clouds.yaml"
    other = {"auth": {"auth_url": "http://127.0.0.1:1/identity"}, "region_name": "Elsewhere"}
    clouds_yaml.write_text(yaml.safe_dump({"clouds": {"other": other}}))
    with running(tmp_path) as base_url:
        clouds = yaml.safe_load(clouds_yaml.read_text())["clouds"]
        assert clouds["other"] == other
        assert set(clouds) >= {
            "clusterbus-sim",
            "clusterbus-sim-demo",
            "clusterbus-sim-alt",
            "clusterbus-sim-admin",
        }
        entry = clouds["clusterbus-sim"]
        assert entry["auth"]["auth_url"] == f"{base_url}/identity"
        assert entry["identity_api_version"] == 3
        alt = connection(clouds_yaml, "clusterbus-sim-alt")
        assert alt.image.find_image("cirros-0.6.2", ignore_missing=False).status == "active"


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with running(tmp_path, "--state", str(state)):
        conn = connection(tmp_path / "clouds.yaml")
        network_id = conn.network.create_network(name="kept").id
    assert state.exists()
    with running(tmp_path, "--state", str(state)) as base_url:
        kept = requests.get(f"{base_url}/_sim/resources/networks/{network_id}", timeout=10)
        assert kept.status_code == 200
        assert kept.json()["name"] == "kept"
        conn = connection(tmp_path / "clouds.yaml")  # project ids are stable across restarts
        assert conn.network.get_network(network_id).name == "kept"


def test_pending_state_changes_are_saved_as_time_left(tmp_path: Path) -> None:
    profile = Profile(time_scale=1.0, delays=Delays(server_boot=3600))
    state = tmp_path / "state.json"
    server = BackgroundSimulator(profile=profile, state_path=state).start()
    try:
        cloud = server.cloud
        record = cloud.add("keypairs", {"id": "k1", "name": "k1", "status": "BUILD"}, None)
        cloud.schedule(record, 3600, {"status": "ACTIVE"})
    finally:
        server.stop()
    again = BackgroundSimulator(profile=profile, state_path=state).start()
    try:
        restored = again.cloud.table("keypairs")["k1"]
        (due, changes) = restored["_pending"][0]
        assert changes == {"status": "ACTIVE"}
        assert 3500 < due - again.cloud.clock.now() <= 3600
    finally:
        again.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.1", "example.com", "::1"])
def test_only_loopback_hosts_are_accepted(host: str) -> None:
    with pytest.raises(ValueError, match=r"loopback|127\.0\.0\.0/8"):
        check_loopback(host)
    check_loopback("127.0.0.2")  # all of 127.0.0.0/8 is fine


def test_command_line_refuses_a_public_host(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert done.returncode == 2
    assert "127.0.0.0/8" in done.stderr
    assert not (tmp_path / "clouds.yaml").exists()
