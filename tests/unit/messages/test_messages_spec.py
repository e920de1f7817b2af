"""ClusterSpec: what a user may send, and clear errors for what they may not."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from messages_samples import full_spec
from pydantic import ValidationError

from engine.messages import ClusterSpec, format_errors
from engine.messages.spec import DEFAULT_IMAGE, SUPPORTED_MINORS


def test_full_spec_is_accepted_and_round_trips() -> None:
    spec = ClusterSpec.model_validate(full_spec())
    assert spec.control_plane.replicas == 3
    assert [pool.name for pool in spec.worker_pools] == ["md-0", "gpu"]
    assert spec.machine_count() == 3 + 2 + 0 + 1
    assert ClusterSpec.model_validate_json(spec.model_dump_json()) == spec
    assert ClusterSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_minimal_spec_gets_documented_defaults() -> None:
    spec = ClusterSpec.model_validate({"name": "demo", "cloud": "demo"})
    dumped = spec.model_dump(mode="json")
    assert dumped["node_cidr"] == "10.6.0.0/24"
    assert dumped["external_cidr"] == "127.100.0.0/16"
    assert dumped["external_network"] == "public"
    assert dumped["control_plane"] == {"replicas": 3, "flavor": "m1.medium", "image": DEFAULT_IMAGE}
    assert dumped["bastion"]["allowed_ssh_cidrs"] == ["0.0.0.0/0"]
    assert dumped["bastion"]["flavor"] == "m1.small"
    assert dumped["worker_pools"] == []


def test_spec_is_frozen() -> None:
    spec = ClusterSpec.model_validate(full_spec())
    with pytest.raises(ValidationError):
        spec.name = "other"  # type: ignore[misc]


def _with(path: str, value: Any) -> dict[str, Any]:
    """full_spec() with one field (dotted path, list indexes as numbers) replaced."""
    spec = copy.deepcopy(full_spec())
    *parents, leaf = path.split(".")
    node: Any = spec
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(leaf) if leaf.isdigit() else leaf] = value
    return spec


RULE0 = "extra_security_group_rules.0"
BAD = [
    pytest.param(_with("name", "Demo"), "name", "pattern", id="uppercase-name"),
    pytest.param(_with("name", "-demo"), "name", "pattern", id="leading-dash"),
    pytest.param(_with("name", "a" * 41), "name", "at most 40", id="long-name"),
    pytest.param(_with("name", ""), "name", "at least 1", id="empty-name"),
    pytest.param(_with("cloud", ""), "cloud", "at least 1", id="empty-cloud"),
    pytest.param(
        _with("kubernetes_version", "1.30.2"), "kubernetes_version", "v1.MINOR", id="no-v"
    ),
    pytest.param(
        _with("kubernetes_version", "v1.27.0"), "kubernetes_version", "unsupported", id="old-minor"
    ),
    pytest.param(
        _with("kubernetes_version", "v1.34.0"), "kubernetes_version", "unsupported", id="new-minor"
    ),
    pytest.param(
        _with("control_plane.replicas", 4), "control_plane.replicas", "must be odd", id="even-cp"
    ),
    pytest.param(
        _with("control_plane.replicas", 9),
        "control_plane.replicas",
        "less than or equal",
        id="cp-9",
    ),
    pytest.param(
        _with("control_plane.replicas", 0), "control_plane.replicas", "greater than", id="cp-0"
    ),
    pytest.param(
        _with("control_plane.replicas", "3"), "control_plane.replicas", "integer", id="cp-string"
    ),
    pytest.param(
        _with("node_cidr", "127.100.8.0/24"), "node_cidr", "overlaps external_cidr", id="overlap"
    ),
    pytest.param(_with("node_cidr", "10.6.0.1/24"), "node_cidr", "host bits", id="host-bits"),
    pytest.param(_with("node_cidr", "10.6.0.0/30"), "node_cidr", "/28", id="tiny-cidr"),
    pytest.param(_with("node_cidr", "169.254.0.0/24"), "node_cidr", "169.254", id="link-local"),
    pytest.param(
        {**_with("node_cidr", "10.6.0.0/28"), "worker_pools": [{"name": "a", "replicas": 7}]},
        "spec",
        "usable addresses",
        id="too-many",
    ),
    pytest.param(
        _with("dns_nameservers", ["1.1.1.1"] * 2), "dns_nameservers", "duplicate", id="dup-dns"
    ),
    pytest.param(
        _with("dns_nameservers", ["8.8.8.8", "x"]), "dns_nameservers[1]", "IP", id="bad-dns"
    ),
    pytest.param(
        _with("worker_pools.1.name", "md-0"), "worker_pools", "duplicate pool name", id="dup-pool"
    ),
    pytest.param(
        _with("worker_pools.0.name", "a" * 21), "worker_pools[0].name", "at most 20", id="long-pool"
    ),
    pytest.param(
        _with("worker_pools.0.name", "control-plane"),
        "worker_pools[0].name",
        "reserved",
        id="reserved-pool",
    ),
    pytest.param(
        _with("worker_pools.0.replicas", 501),
        "worker_pools[0].replicas",
        "less than or equal",
        id="huge-pool",
    ),
    pytest.param(
        _with("worker_pools.0.replicas", -1),
        "worker_pools[0].replicas",
        "greater than",
        id="negative-pool",
    ),
    pytest.param(
        _with("worker_pools", [{"name": f"p{i}"} for i in range(11)]),
        "worker_pools",
        "at most 10",
        id="eleven-pools",
    ),
    pytest.param(
        {**_with("name", "c" * 40), "worker_pools": [{"name": "p" * 20}]},
        "worker_pools",
        "exceed 63",
        id="hostname-too-long",
    ),
    pytest.param(_with("bastion.enabled", "yes"), "bastion.enabled", "boolean", id="bad-bool"),
    pytest.param(
        _with("bastion.allowed_ssh_cidrs", ["10.0.0.0/33"]),
        "bastion.allowed_ssh_cidrs[0]",
        "IPv4",
        id="bad-ssh-cidr",
    ),
    pytest.param(
        _with("api_load_balancer.extra_ports", [6443]),
        "api_load_balancer.extra_ports",
        "API port",
        id="api-port",
    ),
    pytest.param(
        _with("api_load_balancer.extra_ports", [0]),
        "api_load_balancer.extra_ports[0]",
        "greater than",
        id="port-0",
    ),
    pytest.param(
        _with("api_load_balancer.extra_ports", [70000]),
        "api_load_balancer.extra_ports[0]",
        "less than",
        id="port-70000",
    ),
    pytest.param(
        _with("api_load_balancer.extra_ports", [80, 80]),
        "api_load_balancer.extra_ports",
        "duplicate port",
        id="dup-port",
    ),
    pytest.param(
        _with("api_load_balancer.extra_ports", list(range(1, 12))),
        "api_load_balancer.extra_ports",
        "at most 10",
        id="many-ports",
    ),
    pytest.param(
        _with(f"{RULE0}.role", "bastion"),
        "extra_security_group_rules[0].role",
        "'controlplane', 'worker' or 'all'",
        id="rule-role",
    ),
    pytest.param(
        _with(f"{RULE0}.protocol", "sctp"),
        "extra_security_group_rules[0].protocol",
        "pattern",
        id="rule-protocol",
    ),
    pytest.param(
        _with(f"{RULE0}.protocol", "256"),
        "extra_security_group_rules[0].protocol",
        "0-255",
        id="rule-protocol-number",
    ),
    pytest.param(
        _with(f"{RULE0}.port_range_min", 200),
        "extra_security_group_rules[0]",
        "port_range_min must be <= port_range_max",
        id="rule-min-max",
    ),
    pytest.param(
        _with(f"{RULE0}.port_range_max", None),
        "extra_security_group_rules[0]",
        "required for tcp",
        id="rule-no-ports",
    ),
    pytest.param(
        _with(f"{RULE0}.protocol", "icmp"),
        "extra_security_group_rules[0]",
        "only allowed for tcp and udp",
        id="rule-icmp-ports",
    ),
    pytest.param(
        _with(f"{RULE0}.remote_ip_prefix", "10.0.0.0/8"),
        "extra_security_group_rules[0]",
        "exactly one",
        id="rule-two-remotes",
    ),
    pytest.param(
        _with(f"{RULE0}.remote_group", None),
        "extra_security_group_rules[0]",
        "exactly one",
        id="rule-no-remote",
    ),
    pytest.param(
        _with("extra_security_group_rules", [full_spec()["extra_security_group_rules"][0]] * 51),
        "extra_security_group_rules",
        "at most 50",
        id="many-rules",
    ),
    pytest.param(
        {**full_spec(), "pod_cidr": "10.0.0.0/8"}, "pod_cidr", "unknown field", id="unknown-field"
    ),
    pytest.param(
        _with("control_plane", {"replicas": 3, "size": 1}),
        "control_plane.size",
        "unknown field",
        id="unknown-nested",
    ),
    pytest.param({"cloud": "demo"}, "name", "required", id="missing-name"),
]


@pytest.mark.parametrize(("document", "where", "what"), BAD)
def test_bad_spec_is_rejected_with_a_clear_reason(
    document: dict[str, Any], where: str, what: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ClusterSpec.model_validate(document)
    reason = format_errors(caught.value, "spec")
    expected = "spec" if where == "spec" else f"spec.{where}"
    assert f"{expected}: " in reason
    assert what in reason


def test_largest_spec_fits_in_a_few_kib() -> None:
    spec = _with("worker_pools", [{"name": f"pool-{i}", "replicas": 10} for i in range(10)])
    spec["extra_security_group_rules"] = spec["extra_security_group_rules"][:1] * 50
    assert len(ClusterSpec.model_validate(spec).model_dump_json()) < 16 * 1024


LABEL = st.from_regex(r"\A[a-z]([-a-z0-9]{0,8}[a-z0-9])?\Z")
POOL = st.builds(
    lambda name, replicas: {"name": name, "replicas": replicas},
    LABEL.filter(lambda name: name not in ("bastion",)),
    st.integers(0, 20),
)
RULE = st.builds(
    lambda role, protocol, low, span, group: {
        "role": role,
        "protocol": protocol,
        **(
            {"port_range_min": low, "port_range_max": low + span}
            if protocol in ("tcp", "udp")
            else {}
        ),
        "remote_group": group,
    },
    st.sampled_from(["controlplane", "worker", "all"]),
    st.sampled_from(["tcp", "udp", "icmp", "4"]),
    st.integers(1, 60000),
    st.integers(0, 5000),
    st.sampled_from(["controlplane", "worker", "bastion"]),
)
SPEC = st.builds(
    lambda name, minor, replicas, pools, ports, rules, bastion, cidr: {
        "name": name,
        "cloud": "demo",
        "kubernetes_version": f"v1.{minor}.3",
        "node_cidr": cidr,
        "control_plane": {"replicas": replicas},
        "worker_pools": pools,
        "api_load_balancer": {"extra_ports": ports},
        "extra_security_group_rules": rules,
        "bastion": {"enabled": bastion},
    },
    LABEL,
    st.sampled_from(list(SUPPORTED_MINORS)),
    st.sampled_from([1, 3, 5, 7]),
    st.lists(POOL, max_size=10, unique_by=lambda pool: pool["name"]),
    st.lists(st.integers(1, 65535).filter(lambda port: port != 6443), max_size=10, unique=True),
    st.lists(RULE, max_size=5),
    st.booleans(),
    st.sampled_from(["10.6.0.0/22", "192.168.0.0/16", "172.16.8.0/24"]),
)


@settings(max_examples=60, deadline=None)
@given(SPEC)
def test_valid_specs_round_trip_through_json(document: dict[str, Any]) -> None:
    spec = ClusterSpec.model_validate(document)
    assert ClusterSpec.model_validate_json(spec.model_dump_json()) == spec
    assert spec.machine_count() <= spec.node_cidr.num_addresses
