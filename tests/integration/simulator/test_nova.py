"""The simulated Nova through openstacksdk over HTTP: what the compute handlers rely on."""

from __future__ import annotations

import base64
import ipaddress
from typing import TYPE_CHECKING, Any

import pytest
import requests
from openstack import exceptions

from simulator.nova import server_for_address
from simulator.profile import Faults, Profile, ProjectSpec, Quota, ServerFault

if TYPE_CHECKING:  # only for annotations: tests/ is not a package on every sys.path
    from tests.integration.simulator.conftest import Sim

CIDR = "10.20.0.0/24"
USER_DATA = base64.b64encode(b"#cloud-config\nruncmd: [kubeadm init]\n").decode()


def _network(conn: Any, name: str = "cluster-a") -> Any:
    network = conn.network.create_network(name=name)
    conn.network.create_subnet(network_id=network.id, ip_version=4, cidr=CIDR, name=name)
    return network


def _image_id(conn: Any) -> str:
    return str(conn.image.find_image("ubuntu-22.04-kube-v1.30.2", ignore_missing=False).id)


def _boot(conn: Any, name: str, network: Any, **extra: Any) -> Any:
    return conn.compute.create_server(
        name=name, image_id=_image_id(conn), flavor_id="2", networks=[{"uuid": network.id}], **extra
    )


def _gone(conn: Any, server_id: str) -> bool:
    try:
        conn.compute.get_server(server_id)
    except exceptions.NotFoundException:
        return True
    return False


def _wait_active(conn: Any, server: Any) -> Any:
    return conn.compute.wait_for_server(server, status="ACTIVE", interval=0.05, wait=15)


def test_version_documents_and_microversions(sim: Sim) -> None:
    listed = requests.get(f"{sim.base_url}/compute", timeout=5).json()
    assert listed["versions"][0]["version"] == "2.79"
    version = requests.get(f"{sim.base_url}/compute/v2.1/", timeout=5).json()["version"]
    assert (version["min_version"], version["links"][0]["href"]) == (
        "2.1",
        f"{sim.base_url}/compute/v2.1/",
    )
    conn = sim.connect()
    latest = conn.compute.get("/flavors", microversion="latest")
    assert latest.headers["OpenStack-API-Version"] == "compute 2.79"
    too_new = conn.compute.get("/flavors", microversion="2.80")
    assert too_new.status_code == 406


def test_flavor_and_image_lookup(sim: Sim) -> None:
    conn = sim.connect()
    flavor = conn.compute.find_flavor("m1.medium", ignore_missing=False)
    assert (flavor.id, flavor.vcpus, flavor.ram, flavor.disk) == ("3", 2, 4096, 40)
    assert [f.name for f in conn.compute.flavors()] == [
        "m1.tiny",
        "m1.small",
        "m1.medium",
        "m1.large",
        "m1.xlarge",
    ]
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_flavor("m1.medium")  # Nova looks flavors up by id only
    assert conn.compute.find_flavor("m1.huge") is None
    network = _network(conn)
    with pytest.raises(exceptions.BadRequestException, match="Image nope could not be found"):
        conn.compute.create_server(
            name="x", image_id="nope", flavor_id="2", networks=[{"uuid": network.id}]
        )
    with pytest.raises(exceptions.BadRequestException, match="Flavor's disk is too small"):
        conn.compute.create_server(
            name="x", image_id=_image_id(conn), flavor_id="1", networks=[{"uuid": network.id}]
        )


def test_keypair_generate_import_delete(sim: Sim) -> None:
    conn = sim.connect()
    generated = conn.compute.create_keypair(name="gen")
    assert generated.private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    imported = conn.compute.create_keypair(name="imported", public_key=generated.public_key)
    assert imported.private_key is None
    assert conn.compute.get_keypair("imported").fingerprint == generated.fingerprint
    assert sorted(k.name for k in conn.compute.keypairs()) == ["gen", "imported"]
    with pytest.raises(exceptions.ConflictException):
        conn.compute.create_keypair(name="gen")
    with pytest.raises(exceptions.BadRequestException, match="Keypair data is invalid"):
        conn.compute.create_keypair(name="bad", public_key="ssh-rsa not-base64!")
    assert [k.name for k in sim.connect("alt").compute.keypairs()] == []  # keys are per user
    conn.compute.delete_keypair("gen", ignore_missing=False)
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_keypair("gen")


def test_server_group_soft_anti_affinity_members(sim: Sim) -> None:
    conn = sim.connect()
    network = _network(conn)
    group = conn.compute.create_server_group(name="cp", policy="soft-anti-affinity")
    assert group.policy == "soft-anti-affinity"
    servers = [
        _boot(conn, f"cp-{n}", network, scheduler_hints={"group": group.id}) for n in range(3)
    ]
    assert sorted(conn.compute.get_server_group(group.id).member_ids) == sorted(
        s.id for s in servers
    )
    host_ids = {conn.compute.get_server(s.id).host_id for s in servers}
    assert len(host_ids) == 3  # spread over distinct hosts while hosts are free
    conn.compute.delete_server(servers[0])
    assert servers[0].id not in conn.compute.get_server_group(group.id).member_ids
    with pytest.raises(exceptions.NotFoundException, match="Instance group"):
        _boot(
            conn,
            "stray",
            network,
            scheduler_hints={"group": "3f1d6a64-1b47-4f5f-9d7e-0a1b2c3d4e5f"},
        )


def test_server_boots_with_ports_groups_user_data_tags_metadata(sim: Sim) -> None:
    conn = sim.connect()
    network = _network(conn)
    web = conn.network.create_security_group(name="web")
    conn.compute.create_keypair(name="ops")
    created = _boot(
        conn,
        "node-0",
        network,
        security_groups=[{"name": "web"}, {"name": "default"}],
        user_data=USER_DATA,
        tags=["clusterbus", "clusterbus-cluster=c1"],
        metadata={"role": "control-plane"},
        key_name="ops",
    )
    assert created.admin_password
    assert conn.compute.get_server(created.id).status == "BUILD"
    server = _wait_active(conn, created)
    (address,) = server.addresses["cluster-a"]
    assert ipaddress.ip_address(address["addr"]) in ipaddress.ip_network(CIDR)
    assert address["OS-EXT-IPS:type"] == "fixed"
    assert sorted(g["name"] for g in server.security_groups) == ["default", "web"]
    assert (server.tags, server.metadata, server.key_name) == (
        ["clusterbus", "clusterbus-cluster=c1"],
        {"role": "control-plane"},
        "ops",
    )
    assert (server.flavor.original_name, server.flavor.vcpus) == ("m1.small", 1)
    assert conn.compute.get_server(server.id).user_data is None  # admin-only attribute
    assert sim.connect("admin").compute.get_server(server.id).user_data == USER_DATA
    (port,) = conn.network.ports(device_id=server.id)
    assert port.device_owner == "compute:nova" and web.id in port.security_group_ids
    found = server_for_address(sim.cloud, address["addr"])
    assert found is not None and found["id"] == server.id
    public = conn.network.find_network("public", ignore_missing=False)
    router = conn.network.create_router(name="r", external_gateway_info={"network_id": public.id})
    conn.network.add_interface_to_router(router, subnet=port.fixed_ips[0]["subnet_id"])
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    floating = [
        a
        for a in conn.compute.get_server(server.id).addresses["cluster-a"]
        if a["OS-EXT-IPS:type"] == "floating"
    ]
    assert [a["addr"] for a in floating] == [fip.floating_ip_address]


def test_list_filters_paging_tags_and_metadata(sim: Sim) -> None:
    conn = sim.connect()
    network = _network(conn)
    for name in ("abc-1", "abc-2", "xyz"):
        _boot(conn, name, network, tags=["kube"] if name != "xyz" else [])
    assert sorted(s.name for s in conn.compute.servers(name="^abc-")) == ["abc-1", "abc-2"]
    assert sorted(s.name for s in conn.compute.servers(tags="kube")) == ["abc-1", "abc-2"]
    assert len(list(conn.compute.servers(limit=1))) == 3  # follows servers_links
    assert list(sim.connect("alt").compute.servers()) == []
    server = conn.compute.find_server("xyz", ignore_missing=False)
    server.add_tag(conn.compute, "late")
    assert conn.compute.get_server(server.id).tags == ["late"]
    conn.compute.set_server_metadata(server, owner="team-a")
    assert conn.compute.get_server_metadata(server).metadata == {"owner": "team-a"}
    renamed = conn.compute.update_server(server, name="xyz-renamed")
    assert renamed.name == "xyz-renamed"


@pytest.mark.parametrize(
    "sim_profile",
    [
        Profile(
            time_scale=0.01,
            seed=7,
            projects=[
                ProjectSpec(
                    name="demo", user="demo", password="demo-password", quota=Quota(instances=2)
                )
            ],
        )
    ],
)
def test_quota_exceeded_is_forbidden_with_novas_message(sim: Sim) -> None:
    conn = sim.connect()
    network = _network(conn)
    _boot(conn, "q-1", network)
    _boot(conn, "q-2", network)
    with pytest.raises(exceptions.ForbiddenException) as raised:
        _boot(conn, "q-3", network)
    assert "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances." in str(
        raised.value
    )
    nova_ports = [p for p in conn.network.ports(network_id=network.id) if p.device_id]
    assert len(nova_ports) == 2  # the refused boot left no port behind


@pytest.mark.parametrize(
    "sim_profile",
    [
        Profile(
            time_scale=0.01,
            seed=7,
            faults=Faults(
                server_errors=[
                    ServerFault(name_regex="^doomed", message="No valid host was found. Boom.")
                ]
            ),
        )
    ],
)
def test_server_fault_ends_in_error_with_fault_message(sim: Sim) -> None:
    conn = sim.connect()
    network = _network(conn)
    doomed = _boot(conn, "doomed-1", network)
    fine = _boot(conn, "fine-1", network)
    conn.compute.wait_for_server(doomed, status="ERROR", failures=[], interval=0.05, wait=15)
    assert conn.compute.get_server(doomed.id).fault["message"] == "No valid host was found. Boom."
    assert _wait_active(conn, fine).fault is None


def test_delete_removes_server_and_its_ports(sim: Sim) -> None:
    conn = sim.connect()
    network = _network(conn)
    own_port = conn.network.create_port(network_id=network.id, name="pre-made")
    server = _wait_active(
        conn,
        conn.compute.create_server(
            name="gone",
            image_id=_image_id(conn),
            flavor_id="2",
            networks=[{"uuid": network.id}, {"port": own_port.id}],
        ),
    )
    nova_port = next(p for p in conn.network.ports(device_id=server.id) if p.id != own_port.id)
    assert conn.network.get_port(own_port.id).device_id == server.id
    conn.compute.delete_server(server)
    assert conn.compute.get_server(server.id).status == "DELETED"
    conn.compute.wait_for_delete(server, interval=0.05, wait=15)  # returns on DELETED already
    sim.wait_for(lambda: _gone(conn, server.id))
    with pytest.raises(exceptions.NotFoundException):
        conn.network.get_port(nova_port.id)
    assert conn.network.get_port(own_port.id).device_id == ""  # pre-existing port survives
    assert sim.cloud.calls["compute.servers.delete"] == 1


def test_microversion_2_1_views_and_auto_network(sim: Sim) -> None:
    conn = sim.connect()
    network = _network(conn)
    created = conn.compute.post(
        "/servers",
        microversion="2.1",
        json={"server": {"name": "old-client", "imageRef": _image_id(conn), "flavorRef": "2"}},
    )
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    shown = conn.compute.get(f"/servers/{server_id}", microversion="2.1").json()["server"]
    assert shown["flavor"]["id"] == "2" and "original_name" not in shown["flavor"]
    assert "tags" not in shown and "description" not in shown
    assert list(shown["addresses"]) == [network.name]  # networks omitted: "auto" before 2.37
    missing = conn.compute.post(
        "/servers",
        microversion="2.37",
        json={"server": {"name": "new-client", "imageRef": _image_id(conn), "flavorRef": "2"}},
    )
    assert missing.status_code == 400
    assert "'networks' is a required property" in missing.json()["badRequest"]["message"]


@pytest.mark.parametrize(
    "sim_profile",
    [
        Profile(
            time_scale=0.01,
            projects=[
                ProjectSpec(name="demo", user="demo", password="demo-password", quota=Quota(port=1))
            ],
        )
    ],
)
def test_port_quota_failure_rolls_the_boot_back(sim: Sim) -> None:
    conn = sim.connect()
    first, second = _network(conn, "a"), _network(conn, "b")
    with pytest.raises(exceptions.ForbiddenException, match="Maximum number of ports exceeded"):
        conn.compute.create_server(
            name="two-nics",
            image_id=_image_id(conn),
            flavor_id="2",
            networks=[{"uuid": first.id}, {"uuid": second.id}],
        )
    assert list(conn.compute.servers()) == []
    assert list(conn.network.ports(device_owner="compute:nova")) == []
