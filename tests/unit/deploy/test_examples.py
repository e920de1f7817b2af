"""deploy/examples and deploy/systemd: specs validate, clouds match, units are well formed."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from deploy_support import DEPLOY, SETTING_ENV, load_yaml

from engine.messages.spec import ClusterSpec

EXAMPLES = DEPLOY / "examples"
SYSTEMD = DEPLOY / "systemd"


@pytest.mark.parametrize("name", ["cluster-small.yaml", "cluster-ha.yaml"])
def test_example_specs_validate(name: str) -> None:
    spec = ClusterSpec.model_validate(load_yaml(EXAMPLES / name))
    clouds = load_yaml(EXAMPLES / "clouds.yaml")["clouds"]
    assert spec.cloud in clouds


def test_ha_example_is_highly_available() -> None:
    spec = ClusterSpec.model_validate(load_yaml(EXAMPLES / "cluster-ha.yaml"))
    assert spec.control_plane.replicas >= 3
    assert len(spec.worker_pools) >= 2


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("role", ["engine", "handlers"])
def test_role_units(role: str) -> None:
    service = unit(SYSTEMD / f"clusterbus-{role}.service")["Service"]
    assert service["EnvironmentFile"] == "/etc/clusterbus/env"
    assert service["ExecStart"].endswith(f"clusterbus run --role {role}")
    assert service["User"] == "clusterbus"
    assert unit(SYSTEMD / f"clusterbus-{role}.service")["Install"]["WantedBy"]


def test_simulator_unit_stays_on_loopback() -> None:
    service = unit(SYSTEMD / "clusterbus-simulator.service")["Service"]
    assert service["EnvironmentFile"] == "/etc/clusterbus/env"
    exec_start = service["ExecStart"].replace("\\\n", " ").split()
    assert exec_start[1:3] == ["sim", "serve"]
    assert exec_start[exec_start.index("--host") + 1] == "127.0.0.1"


def test_env_example_names_real_settings() -> None:
    lines = (SYSTEMD / "env.example").read_text().splitlines()
    names = [ln.split("=", 1)[0] for ln in lines if ln and not ln.startswith("#")]
    assert "CLUSTERBUS_AMQP_URL" in names
    for name in names:
        if name.startswith("CLUSTERBUS_"):
            assert name in SETTING_ENV, name
