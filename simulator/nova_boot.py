"""Validation of a server create request, with Nova's error statuses and messages."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulator import neutron
from simulator.core import ApiError, Cloud, Record
from simulator.http import cloud_of, project_of, read_json
from simulator.nova_common import at_least, bad_request, invalid_input, is_admin
from simulator.nova_flavors import AVAILABILITY_ZONE
from simulator.nova_flavors import resolve as resolve_flavor
from simulator.nova_keypairs import find as find_keypair
from simulator.nova_server_groups import resolve as resolve_group

MAX_USER_DATA = 65535
MAX_METADATA_ITEMS = 128
MAX_TAGS = 50
GIB = 1024**3


@dataclass
class BootRequest:
    """A validated ``POST /servers`` body, with every reference resolved to its record."""

    name: str
    image: Record
    flavor: Record
    networks: list[tuple[str, list[Record] | None]] = field(default_factory=list)
    port_ids: list[str] = field(default_factory=list)
    security_group_ids: list[str] | None = None  # None: Neutron's default group
    security_group_names: list[str] = field(default_factory=lambda: ["default"])
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    key_name: str | None = None
    group: Record | None = None
    disk_config: str = "MANUAL"
    config_drive: bool = False
    description: str | None = None

    @property
    def group_id(self) -> str | None:
        return None if self.group is None else str(self.group["id"])

    @property
    def hostname(self) -> str:
        """Nova's hostname from the display name: lowercase, [a-z0-9-], at most 63 chars."""
        return re.sub(r"[^a-z0-9-]+", "-", self.name.lower()).strip("-")[:63] or "server"


def _image(cloud: Cloud, request: web.Request, ref: Any) -> Record:
    image_id = str(ref or "").rstrip("/").rsplit("/", 1)[-1]
    image = cloud.table("images").get(image_id)
    visible = image is not None and (
        is_admin(request)
        or image.get("visibility") in ("public", "community", "shared")
        or image.get("owner") == project_of(request)
        or image.get("_project_id") in (None, project_of(request))
    )
    if image is None or not visible:
        raise bad_request(f"Image {image_id} could not be found.")
    if image.get("status", "active") != "active":
        raise bad_request(f"Image {image_id} is not active.")
    return image


def _check_fit(image: Record, flavor: Record) -> None:
    if int(image.get("min_disk") or 0) > int(flavor["disk"]):
        raise bad_request(
            "Flavor's disk is too small for requested image. Flavor disk is "
            f"{int(flavor['disk']) * GIB} bytes, minimum size is "
            f"{int(image['min_disk']) * GIB} bytes."
        )
    if int(image.get("min_ram") or 0) > int(flavor["ram"]):
        raise bad_request("Flavor's memory is too small for requested image.")


def _user_data(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_input("user_data", f"{value!r} is not of type 'string', 'null'")
    if len(value) > MAX_USER_DATA:
        raise invalid_input("user_data", f"Value is longer than {MAX_USER_DATA} characters.")
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid_input("user_data", "Value is not valid base64.") from exc
    return value


def check_metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and 0 < len(k) <= 255 and isinstance(v, str) and len(v) <= 255
        for k, v in value.items()
    ):
        raise invalid_input("metadata", f"{value!r} is not a map of strings")
    if len(value) > MAX_METADATA_ITEMS:
        raise ApiError(403, f"Maximum number of metadata items exceeds {MAX_METADATA_ITEMS}")
    return dict(value)


def check_tags(tags: Any) -> list[str]:
    """A valid tag list: at most 50 strings of 1-60 characters without '/' or ','."""
    if not isinstance(tags, list) or not all(
        isinstance(t, str) and 0 < len(t) <= 60 and "/" not in t and "," not in t for t in tags
    ):
        raise invalid_input("tags", f"{tags!r} is not a valid list of tags")
    if len(tags) > MAX_TAGS:
        raise invalid_input("tags", f"{tags!r} has more than {MAX_TAGS} items")
    return list(dict.fromkeys(tags))


def _auto_network(cloud: Cloud, project_id: str) -> list[tuple[str, list[Record] | None]]:
    """``networks: auto``: the project's only tenant network."""
    owned = cloud.list(
        "networks",
        project_id,
        lambda n: not n.get("router:external") and n.get("_project_id") is not None,
    )
    if len(owned) > 1:
        raise ApiError(
            409, "Multiple possible networks found, use a Network ID to be more specific."
        )
    if not owned:
        raise bad_request(f"Unable to automatically allocate a network for project {project_id}")
    return [(str(owned[0]["id"]), None)]


def _network(cloud: Cloud, request: web.Request, network_id: str) -> None:
    network = cloud.table("networks").get(network_id)
    project_id = project_of(request)
    if network is None or not (
        is_admin(request)
        or network.get("shared")
        or network.get("_project_id") in (None, project_id)
    ):
        raise bad_request(f"Network {network_id} could not be found.")
    if network.get("router:external") and not is_admin(request) and not network.get("shared"):
        raise ApiError(
            403, f"It is not allowed to create an interface on external network {network_id}"
        )
    if not network.get("subnets"):
        raise bad_request(f"Network {network_id} requires a subnet in order to boot instances on.")


def _port(cloud: Cloud, request: web.Request, port_id: str) -> None:
    port = cloud.table("ports").get(port_id)
    if port is None or not (is_admin(request) or port.get("_project_id") == project_of(request)):
        raise bad_request(f"Port id {port_id} could not be found.")
    if port.get("device_id"):
        raise ApiError(409, f"Port {port_id} is still in use.")


def _networks(cloud: Cloud, request: web.Request, body: Record, boot: BootRequest) -> None:
    value = body.get("networks")
    if value is None and at_least(request, 37):
        raise invalid_input("server", "'networks' is a required property")
    if value in (None, "auto"):
        boot.networks = _auto_network(cloud, project_of(request))
        return
    if value == "none":
        return
    if not isinstance(value, list) or not all(isinstance(n, dict) for n in value):
        raise invalid_input("networks", f"{value!r} is not valid under any of the given schemas")
    for entry in value:
        if entry.get("port"):
            _port(cloud, request, str(entry["port"]))
            boot.port_ids.append(str(entry["port"]))
        elif entry.get("uuid"):
            _network(cloud, request, str(entry["uuid"]))
            fixed = [{"ip_address": entry["fixed_ip"]}] if entry.get("fixed_ip") else None
            boot.networks.append((str(entry["uuid"]), fixed))
        else:
            raise bad_request("Bad networks format: network uuid is not in proper format")


def _security_groups(cloud: Cloud, project_id: str, value: Any, boot: BootRequest) -> None:
    if not value:
        return
    if not isinstance(value, list) or not all(isinstance(g, dict) and g.get("name") for g in value):
        raise invalid_input("security_groups", f"{value!r} is not a list of {{name}} objects")
    groups: list[Record] = []
    for item in value:
        try:
            groups.append(neutron.resolve_security_group(cloud, project_id, str(item["name"])))
        except ApiError as exc:
            if exc.status != 404:
                raise ApiError(400, exc.message) from exc
            raise bad_request(
                f"Security group {item['name']} not found for project {project_id}."
            ) from exc
    boot.security_group_ids = list(dict.fromkeys(str(g["id"]) for g in groups))
    boot.security_group_names = list(dict.fromkeys(str(item["name"]) for item in value))


def _scheduler_group(cloud: Cloud, request: web.Request, payload: Record) -> Record | None:
    hints = payload.get("OS-SCH-HNT:scheduler_hints") or payload.get("os:scheduler_hints") or {}
    if not isinstance(hints, dict) or not hints.get("group"):
        return None
    group_id = hints["group"][0] if isinstance(hints["group"], list) else hints["group"]
    return resolve_group(cloud, None if is_admin(request) else project_of(request), group_id)


def _simple_fields(request: web.Request, body: Record, boot: BootRequest) -> None:
    if body.get("availability_zone") not in (None, "", AVAILABILITY_ZONE):
        raise bad_request("The requested availability zone is not available")
    if int(body.get("max_count") or 1) > 1 or int(body.get("min_count") or 1) > 1:
        raise bad_request("The simulator creates one server per request (min/max_count 1).")
    if "tags" in body and not at_least(request, 52):
        raise bad_request("Additional properties are not allowed ('tags' was unexpected)")
    if "description" in body and not at_least(request, 19):
        raise bad_request("Additional properties are not allowed ('description' was unexpected)")
    boot.tags = check_tags(body.get("tags", []))
    boot.metadata = check_metadata(body.get("metadata"))
    boot.user_data = _user_data(body.get("user_data"))
    boot.disk_config = str(body.get("OS-DCF:diskConfig") or "MANUAL")
    boot.config_drive = bool(body.get("config_drive"))
    boot.description = body.get("description")


async def parse_boot(request: web.Request) -> BootRequest:
    """The request's server, validated in Nova's order; every reference must exist."""
    payload = await read_json(request)
    body = payload.get("server")
    if not isinstance(body, dict):
        raise invalid_input("server", "'server' is a required property")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise invalid_input("name", f"{name!r} is not a valid server name")
    if not body.get("flavorRef"):
        raise invalid_input("server", "'flavorRef' is a required property")
    cloud = cloud_of(request)
    flavor = resolve_flavor(cloud, str(body["flavorRef"]))
    image = _image(cloud, request, body.get("imageRef"))
    _check_fit(image, flavor)
    boot = BootRequest(name=name, image=image, flavor=flavor)
    _simple_fields(request, body, boot)
    key_name = body.get("key_name")
    if key_name:
        if find_keypair(cloud, str(request["user_id"]), str(key_name)) is None:
            raise bad_request("Invalid key_name provided.")
        boot.key_name = str(key_name)
    _security_groups(cloud, project_of(request), body.get("security_groups"), boot)
    _networks(cloud, request, body, boot)
    boot.group = _scheduler_group(cloud, request, payload)
    return boot
