"""Pure parts of the CLI: the spec from flags, the OpenSSH config."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from engine.cli.cluster import _overrides, build_spec
from engine.cli.views import ssh_config
from statemachines.model import ClusterAggregate, MachineAggregate
from statemachines.states import ClusterState, MachineState, Role


def machine(mid: str, role: Role, address: str | None, fip: str | None = None) -> MachineAggregate:
    return MachineAggregate(
        id=mid, role=role, pool=None, index=0, state=MachineState.RUNNING,
        address=address, floating_ip=fip,
    )  # fmt: skip


def cluster(*machines: MachineAggregate) -> ClusterAggregate:
    return ClusterAggregate(
        id="demo", state=ClusterState.READY, spec={}, machines={m.id: m for m in machines}
    )


def test_ssh_config_jumps_through_the_bastion_floating_ip() -> None:
    agg = cluster(
        machine("demo-bastion", Role.BASTION, "10.6.0.5", fip="127.100.0.9"),
        machine("demo-control-plane-0", Role.CONTROL_PLANE, "10.6.0.7"),
        machine("demo-worker-0", Role.WORKER, None),  # no address yet: left out
    )
    assert ssh_config(agg) == (
        "Host demo-bastion\n  HostName 127.100.0.9\n  User ubuntu\n\n"
        "Host demo-control-plane-0\n  HostName 10.6.0.7\n  User ubuntu\n"
        "  ProxyJump demo-bastion\n"
    )


def test_ssh_config_needs_a_bastion_with_a_floating_ip() -> None:
    with pytest.raises(ValueError, match="no bastion"):
        ssh_config(cluster(machine("demo-control-plane-0", Role.CONTROL_PLANE, "10.6.0.7")))
    with pytest.raises(ValueError, match="no floating IP"):
        ssh_config(cluster(machine("demo-bastion", Role.BASTION, "10.6.0.5")))


def test_flags_build_the_spec_and_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: a\ncloud: file-cloud\ncontrol_plane: {replicas: 5, flavor: big}\n")
    spec = build_spec("b", path, _overrides(None, 3, 2, None, "img", no_bastion=True))
    assert spec.name == "b" and spec.cloud == "file-cloud"
    assert (spec.control_plane.replicas, spec.control_plane.flavor) == (3, "big")
    assert [(p.name, p.replicas, p.image) for p in spec.worker_pools] == [("worker", 2, "img")]
    assert spec.bastion.enabled is False


def test_default_cloud_comes_from_os_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_CLOUD", "mine")
    assert build_spec("c", None, {}).cloud == "mine"
    monkeypatch.delenv("OS_CLOUD")
    assert build_spec("c", None, {}).cloud == "clusterbus-sim"
    with pytest.raises(typer.Exit):
        build_spec(None, None, {})
