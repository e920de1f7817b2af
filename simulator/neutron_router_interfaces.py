"""Router interfaces: a router port on a subnet (its gateway IP) or on a port we are given."""

from __future__ import annotations

from simulator.core import Cloud, Record
from simulator.neutron_base import (
    ROUTER_INTERFACE_OWNER,
    find_visible,
    neutron_error,
    not_found,
)
from simulator.neutron_ipam import bad_request
from simulator.neutron_ports import create_port, delete_port, update_port


def interfaces(cloud: Cloud, router_id: str) -> list[Record]:
    return cloud.list(
        "ports",
        None,
        lambda p: p["device_id"] == router_id and p["device_owner"] == ROUTER_INTERFACE_OWNER,
    )


def interface_body(router: Record, port: Record) -> Record:
    subnet_ids = [ip["subnet_id"] for ip in port["fixed_ips"]]
    return {
        "id": router["id"],
        "tenant_id": router["tenant_id"],
        "project_id": router["project_id"],
        "port_id": port["id"],
        "network_id": port["network_id"],
        "subnet_id": subnet_ids[0] if subnet_ids else None,
        "subnet_ids": subnet_ids,
        "tags": [],
    }


def add_interface(cloud: Cloud, router: Record, body: Record, project_id: str | None) -> Record:
    if bool(body.get("subnet_id")) == bool(body.get("port_id")):
        raise bad_request("Bad router request: Either subnet_id or port_id must be specified.")
    if body.get("port_id"):
        port = cloud.find("ports", str(body["port_id"]), project_id)
        if port is None:
            raise not_found("Port", str(body["port_id"]))
        if port["device_id"]:
            raise neutron_error(
                409,
                "PortInUse",
                f"Unable to complete operation on port {port['id']} for network "
                f"{port['network_id']}. Port already has an attached device {port['device_id']}.",
            )
        return update_port(
            cloud, port["id"], {"device_id": router["id"], "device_owner": ROUTER_INTERFACE_OWNER}
        )
    subnet = find_visible(cloud, "subnets", str(body["subnet_id"]), project_id)
    if subnet is None:
        raise not_found("Subnet", str(body["subnet_id"]))
    if not subnet.get("gateway_ip"):
        raise bad_request("Bad router request: Subnet for router interface must have a gateway IP.")
    for port in interfaces(cloud, router["id"]):
        if any(ip["subnet_id"] == subnet["id"] for ip in port["fixed_ips"]):
            raise bad_request(
                f"Bad router request: Router already has a port on subnet {subnet['id']}."
            )
    return create_port(
        cloud,
        router["_project_id"],
        network_id=subnet["network_id"],
        device_id=router["id"],
        device_owner=ROUTER_INTERFACE_OWNER,
        fixed_ips=[{"subnet_id": subnet["id"], "ip_address": subnet["gateway_ip"]}],
    )


def remove_interface(cloud: Cloud, router: Record, body: Record) -> Record:
    ports = interfaces(cloud, router["id"])
    if body.get("port_id"):
        found = [p for p in ports if p["id"] == body["port_id"]]
        if not found:
            raise neutron_error(
                404,
                "RouterInterfaceNotFound",
                f"Router {router['id']} does not have an interface with id {body['port_id']}",
            )
    else:
        found = [
            p
            for p in ports
            if any(ip["subnet_id"] == body.get("subnet_id") for ip in p["fixed_ips"])
        ]
        if not found:
            raise neutron_error(
                404,
                "RouterInterfaceNotFoundForSubnet",
                f"Router {router['id']} has no interface on subnet {body.get('subnet_id')}",
            )
    port = found[0]
    subnet_ids = {ip["subnet_id"] for ip in port["fixed_ips"]}
    for fip in cloud.list("floatingips", None, lambda f: f.get("router_id") == router["id"]):
        bound = cloud.table("ports").get(fip["port_id"] or "")
        if bound is not None and subnet_ids & {ip["subnet_id"] for ip in bound["fixed_ips"]}:
            raise neutron_error(
                409,
                "RouterInterfaceInUseByFloatingIP",
                f"Router interface for subnet {sorted(subnet_ids)[0]} on router {router['id']} "
                "cannot be deleted, as it is required by one or more floating IPs.",
            )
    delete_port(cloud, port["id"])
    return port
