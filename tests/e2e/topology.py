"""Assertions on what a ready cluster looks like in the simulator and in the secret store.

Import as ``from topology import ...`` (pytest puts this directory on sys.path).
"""

from __future__ import annotations

import base64
import ipaddress
import json
from collections import Counter
from typing import Any

import yaml
from cryptography import x509
from e2ekit import user_data

from engine.secrets import StoreSecrets
from simulator.testing import Sim

Record = dict[str, Any]
EXTERNAL_CIDR = ipaddress.ip_network("127.100.0.0/16")


def owned(records: list[Record], cluster: str) -> list[Record]:
    """Records carrying the cluster's ownership tag."""
    return [r for r in records if f"clusterbus-cluster={cluster}" in (r.get("tags") or [])]


def one(records: list[Record], name: str) -> Record:
    found = [r for r in records if r.get("name") == name]
    assert len(found) == 1, f"expected one {name!r}, found {len(found)}"
    return found[0]


def addresses_of(inv: dict[str, list[Record]], server_id: str) -> set[str]:
    """Fixed IPs of the server's ports."""
    return {
        ip["ip_address"]
        for port in inv["ports"]
        if port.get("device_id") == server_id
        for ip in port["fixed_ips"]
    }


def assert_network(inv: dict[str, list[Record]], cluster: str) -> Record:
    name = f"clusterbus-{cluster}"
    network = one(inv["networks"], name)
    subnet = one(inv["subnets"], name)
    router = one(inv["routers"], name)
    assert subnet["network_id"] == network["id"]
    gateway = router.get("external_gateway_info") or {}
    assert gateway.get("network_id"), "router without an external gateway"
    interfaces = [
        p
        for p in inv["ports"]
        if p["device_id"] == router["id"] and p["device_owner"] == "network:router_interface"
    ]
    assert [p["network_id"] for p in interfaces] == [network["id"]]
    return subnet


def _ingress(inv: dict[str, list[Record]], group_id: str) -> list[tuple[Any, ...]]:
    names = {g["id"]: g["name"] for g in inv["security_groups"]}
    return [
        (
            r["protocol"],
            r["port_range_min"],
            r["port_range_max"],
            r["remote_ip_prefix"],
            names.get(r["remote_group_id"]),
        )
        for r in inv["security_group_rules"]
        if r["security_group_id"] == group_id and r["direction"] == "ingress"
    ]


def assert_security_groups(inv: dict[str, list[Record]], cluster: str) -> dict[str, Record]:
    prefix = f"clusterbus-{cluster}"
    groups = {
        role: one(inv["security_groups"], f"{prefix}-{role}")
        for role in ("controlplane", "worker", "bastion")
    }
    bastion = f"{prefix}-bastion"
    for role in ("controlplane", "worker"):
        ssh = [r for r in _ingress(inv, groups[role]["id"]) if r[1] == 22]
        # SSH to the nodes only from the bastion group, never from a CIDR.
        assert ssh == [("tcp", 22, 22, None, bastion)], f"{role} SSH rules: {ssh}"
    cp = set(_ingress(inv, groups["controlplane"]["id"]))
    assert ("tcp", 6443, 6443, None, None) in cp or ("tcp", 6443, 6443, "0.0.0.0/0", None) in cp
    assert ("tcp", 2379, 2380, None, f"{prefix}-controlplane") in cp
    assert ("tcp", 10250, 10250, None, f"{prefix}-worker") in cp
    worker = set(_ingress(inv, groups["worker"]["id"]))
    assert ("tcp", 10250, 10250, None, f"{prefix}-controlplane") in worker
    assert ("udp", 30000, 32767, None, f"{prefix}-worker") in worker
    bastion_rules = _ingress(inv, groups["bastion"]["id"])
    assert [r[:3] for r in bastion_rules] == [("tcp", 22, 22)]
    assert bastion_rules[0][3] in (None, "0.0.0.0/0")
    return groups


def assert_endpoint(inv: dict[str, list[Record]], cluster: str, cp_addresses: set[str]) -> str:
    """The LB, its 6443 listener, CP members, VIP floating IP; returns the floating IP."""
    lb = one(inv["loadbalancers"], f"clusterbus-{cluster}-kubeapi")
    listener = one(inv["listeners"], f"clusterbus-{cluster}-kubeapi-6443")
    assert listener["protocol_port"] == 6443
    pool = next(p for p in inv["pools"] if p["id"] == listener["default_pool_id"])
    members = [m for m in owned(inv["members"], cluster)]
    assert {m["address"] for m in members} == cp_addresses
    assert len(members) == len(cp_addresses)
    assert pool["id"]
    vip_fips = [f for f in inv["floatingips"] if f.get("port_id") == lb["vip_port_id"]]
    assert len(vip_fips) == 1, f"VIP floating IPs: {vip_fips}"
    address = str(vip_fips[0]["floating_ip_address"])
    assert ipaddress.ip_address(address) in EXTERNAL_CIDR
    return address


def assert_servers(sim: Sim, inv: dict[str, list[Record]], cluster: str, workers: int) -> set[str]:
    """Names, flavors, images, server groups, kubeadm user-data; returns the CP addresses."""
    servers = {s["name"]: s for s in owned(inv["servers"], cluster)}
    cps = [f"{cluster}-control-plane-{i}" for i in range(3)]
    mds = [f"{cluster}-md-{i}" for i in range(workers)]
    assert sorted(servers) == sorted([*cps, *mds, f"{cluster}-bastion"])
    images = {i["id"]: i["name"] for i in sim.cloud.table("images").values()}
    groups = {g["name"]: set(g["members"]) for g in inv["server_groups"]}
    flavors = {"control-plane": "m1.medium", "md": "m1.large"}
    for name, server in servers.items():
        raw = sim.cloud.table("servers")[server["id"]]
        assert images[raw["_image_id"]] == "ubuntu-22.04-kube-v1.30.2"
        assert server["status"] == "ACTIVE"
        if name.endswith("bastion"):
            assert server["flavor"]["original_name"] == "m1.small"
            continue
        pool = "control-plane" if name in cps else "md"
        assert server["flavor"]["original_name"] == flavors[pool]
        assert server["id"] in groups[f"{cluster}-{pool}"]
    inits = [n for n in servers if "kubeadm init" in user_data(sim, servers[n]["id"])]
    joins = [n for n in servers if "kubeadm join" in user_data(sim, servers[n]["id"])]
    assert inits == [cps[0]]
    assert sorted(joins) == sorted([*cps[1:], *mds])
    bastion = servers[f"{cluster}-bastion"]
    bastion_ips = addresses_of(inv, bastion["id"])
    bastion_fips = [f for f in inv["floatingips"] if f.get("fixed_ip_address") in bastion_ips]
    assert len(bastion_fips) == 1
    return {a for n in cps for a in addresses_of(inv, servers[n]["id"])}


def assert_topology(sim: Sim, project: str, cluster: str, *, workers: int = 2) -> str:
    """Everything DESIGN.md promises for a ready cluster; returns the API floating IP."""
    inv = sim.inspect("inventory", project=project)
    assert_network(inv, cluster)
    assert_security_groups(inv, cluster)
    cp_addresses = assert_servers(sim, inv, cluster, workers)
    return assert_endpoint(inv, cluster, cp_addresses)


async def assert_kubeconfig(secrets: StoreSecrets, cluster: str, api_ip: str) -> None:
    """The stored admin kubeconfig targets the VIP floating IP; its client cert is CA-signed."""
    raw = await secrets.get(cluster, "kubeconfig")
    assert raw is not None
    config = yaml.safe_load(raw)
    assert config["clusters"][0]["cluster"]["server"] == f"https://{api_ip}:6443"
    ca_pem = await secrets.get(cluster, "ca")
    assert ca_pem is not None
    ca = x509.load_pem_x509_certificate(json.loads(ca_pem)["tls.crt"].encode())
    client = x509.load_pem_x509_certificate(
        base64.b64decode(config["users"][0]["user"]["client-certificate-data"])
    )
    client.verify_directly_issued_by(ca)  # raises if not signed by the stored CA
    embedded = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    assert x509.load_pem_x509_certificate(embedded) == ca


def duplicates(sim: Sim) -> dict[str, list[str]]:
    """Names that occur more than once per kind and project (a crashed retry that leaked)."""
    inv = sim.inspect("inventory")
    found: dict[str, list[str]] = {}
    for kind in (
        "servers",
        "networks",
        "subnets",
        "routers",
        "security_groups",
        "loadbalancers",
        "listeners",
        "pools",
        "healthmonitors",
        "members",
        "server_groups",
    ):
        names = Counter((r.get("project"), r.get("name")) for r in inv[kind] if r.get("name"))
        dup = [f"{p}/{n}" for (p, n), c in names.items() if c > 1 and n != "default"]
        if dup:
            found[kind] = dup
    fips = Counter(str(f.get("port_id")) for f in inv["floatingips"])
    dup_fips = [p for p, c in fips.items() if c > 1 or p == "None"]
    if dup_fips:
        found["floatingips"] = dup_fips
    return found
