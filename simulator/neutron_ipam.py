"""IP address management for the simulated Neutron: subnet validation and allocation.

Used addresses are derived from the store each time (ports' fixed IPs, the gateway, floating
IPs) rather than kept in a separate table, so a saved state file can never disagree with itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from simulator.core import Cloud, Record
from simulator.neutron_base import neutron_error

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def bad_request(message: str) -> Exception:
    return neutron_error(400, "HTTPBadRequest", message)


def parse_cidr(cidr: Any, ip_version: int) -> IpNetwork:
    """The subnet's network; 400 like Neutron for a malformed or host-bits CIDR."""
    try:
        network = ipaddress.ip_network(str(cidr), strict=True)
    except ValueError as exc:
        raise bad_request(
            f"Invalid input for cidr. Reason: '{cidr}' is not a valid IP subnet."
        ) from exc
    if network.version != ip_version:
        raise bad_request(
            f"Invalid input for operation: Cidr {cidr} does not match ip_version {ip_version}."
        )
    if network.num_addresses < 4 and network.version == 4:
        raise bad_request(f"Invalid input for cidr. Reason: '{cidr}' is too small a subnet.")
    return network


def default_gateway(network: IpNetwork) -> str:
    return str(network.network_address + 1)


def default_pools(network: IpNetwork, gateway_ip: str | None) -> list[Record]:
    """Every host address except the network, broadcast and gateway addresses."""
    first = network.network_address + 1
    last = network.broadcast_address - 1 if network.version == 4 else network.broadcast_address
    if gateway_ip and ipaddress.ip_address(gateway_ip) == first:
        first += 1
    return [{"start": str(first), "end": str(last)}]


def check_in_subnet(network: IpNetwork, address: Any, what: str) -> str:
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError as exc:
        raise bad_request(
            f"Invalid input for {what}. Reason: '{address}' is not a valid IP address."
        ) from exc
    if ip not in network:
        raise bad_request(f"{what} {address} is not in subnet {network}.")
    return str(ip)


def check_pools(network: IpNetwork, pools: Any, gateway_ip: str | None) -> list[Record]:
    if not isinstance(pools, list) or not all(isinstance(p, dict) for p in pools):
        raise bad_request("Invalid input for allocation_pools.")
    checked = []
    for pool in pools:
        start = check_in_subnet(network, pool.get("start"), "allocation_pools start")
        end = check_in_subnet(network, pool.get("end"), "allocation_pools end")
        if int(ipaddress.ip_address(start)) > int(ipaddress.ip_address(end)):
            raise bad_request(f"Invalid allocation pool {start}-{end}.")
        if gateway_ip and _in_pool(gateway_ip, {"start": start, "end": end}):
            raise bad_request(
                f"Gateway ip {gateway_ip} conflicts with allocation pool {start}-{end}"
            )
        checked.append({"start": start, "end": end})
    return checked


def overlaps(cloud: Cloud, network_id: str, network: IpNetwork) -> Record | None:
    """A subnet of the same network whose CIDR overlaps ``network`` (Neutron refuses those)."""
    for subnet in cloud.list("subnets", None, lambda s: s["network_id"] == network_id):
        other = ipaddress.ip_network(subnet["cidr"])
        if other.version == network.version and other.overlaps(network):
            return subnet
    return None


def _in_pool(address: str, pool: Record) -> bool:
    ip = int(ipaddress.ip_address(address))
    return int(ipaddress.ip_address(pool["start"])) <= ip <= int(ipaddress.ip_address(pool["end"]))


def used_addresses(cloud: Cloud, subnet: Record, *, with_gateway: bool = True) -> set[str]:
    """Addresses of the subnet that are taken: ports' fixed IPs, gateway and floating IPs."""
    used = {
        ip["ip_address"]
        for port in cloud.list("ports", None, lambda p: p["network_id"] == subnet["network_id"])
        for ip in port.get("fixed_ips", [])
        if ip.get("subnet_id") == subnet["id"]
    }
    if with_gateway and subnet.get("gateway_ip"):
        used.add(subnet["gateway_ip"])
    network = ipaddress.ip_network(subnet["cidr"])
    for fip in cloud.list(
        "floatingips", None, lambda f: f["floating_network_id"] == subnet["network_id"]
    ):
        if ipaddress.ip_address(fip["floating_ip_address"]) in network:
            used.add(fip["floating_ip_address"])
    return used


def _pool_addresses(pool: Record) -> Iterator[str]:
    start = ipaddress.ip_address(pool["start"])
    for offset in range(int(ipaddress.ip_address(pool["end"])) - int(start) + 1):
        yield str(start + offset)


def allocate(cloud: Cloud, subnet: Record) -> str:
    """The first free address of the subnet's pools; 409 IpAddressGenerationFailure if none."""
    used = used_addresses(cloud, subnet)
    for pool in subnet.get("allocation_pools", []):
        for address in _pool_addresses(pool):
            if address not in used:
                return address
    raise neutron_error(
        409,
        "IpAddressGenerationFailure",
        f"No more IP addresses available on network {subnet['network_id']}.",
    )


def claim(cloud: Cloud, subnet: Record, address: Any, *, gateway_ok: bool = False) -> str:
    """Reserve a requested address: 400 outside the subnet, 409 IpAddressAlreadyAllocated if taken.

    ``gateway_ok`` lets a router interface take the subnet's gateway address.
    """
    network = ipaddress.ip_network(subnet["cidr"])
    checked = check_in_subnet(network, address, "ip_address")
    if checked in used_addresses(cloud, subnet, with_gateway=not gateway_ok):
        raise neutron_error(
            409,
            "IpAddressAlreadyAllocated",
            f"IP address {checked} already allocated in subnet {subnet['id']}",
        )
    return checked
