"""Nova flavors (seeded, read-only) and availability zones."""

from __future__ import annotations

from aiohttp import web

from simulator.core import ApiError, Cloud, Record
from simulator.http import cloud_of, json_response
from simulator.nova_common import at_least, bad_request, links

# name -> (id, vcpus, ram MiB, disk GB), like a devstack cloud's default flavors.
SEED_FLAVORS: dict[str, tuple[str, int, int, int]] = {
    "m1.tiny": ("1", 1, 512, 1),
    "m1.small": ("2", 1, 2048, 20),
    "m1.medium": ("3", 2, 4096, 40),
    "m1.large": ("4", 4, 8192, 80),
    "m1.xlarge": ("5", 8, 16384, 160),
}
AVAILABILITY_ZONE = "nova"
HOSTS = [f"sim-compute-{n}" for n in range(1, 9)]  # the simulated hypervisors


def seed(cloud: Cloud) -> None:
    for name, (flavor_id, vcpus, ram, disk) in SEED_FLAVORS.items():
        cloud.add(
            "flavors",
            {
                "id": flavor_id,
                "name": name,
                "vcpus": vcpus,
                "ram": ram,
                "disk": disk,
                "swap": 0,
                "OS-FLV-EXT-DATA:ephemeral": 0,
                "OS-FLV-DISABLED:disabled": False,
                "os-flavor-access:is_public": True,
                "rxtx_factor": 1.0,
                "description": None,
                "extra_specs": {},
            },
            None,
        )


def resolve(cloud: Cloud, ref: str) -> Record:
    """The flavor named by ``flavorRef`` (an id or a link ending in the id); 400 if unknown."""
    flavor_id = str(ref).rstrip("/").rsplit("/", 1)[-1]
    flavor = cloud.find("flavors", flavor_id)
    if flavor is None:
        raise bad_request(f"Flavor {ref} could not be found.")
    return flavor


def render(request: web.Request, flavor: Record, *, detail: bool = True) -> Record:
    """A flavor as the requested microversion shows it."""
    body: Record = {
        "id": flavor["id"],
        "name": flavor["name"],
        "links": links(request, "flavors", flavor["id"]),
    }
    if at_least(request, 55):
        body["description"] = flavor["description"]
    if not detail:
        return body
    body.update({k: v for k, v in flavor.items() if not k.startswith("_")})
    if not at_least(request, 75):
        body["swap"] = flavor["swap"] or ""  # before 2.75 Nova shows "no swap" as ""
    if not at_least(request, 61):
        body.pop("extra_specs")
    if not at_least(request, 55):
        body.pop("description")
    return body


def _matches(request: web.Request, flavor: Record) -> bool:
    try:
        min_ram = int(request.query.get("minRam", 0))
        min_disk = int(request.query.get("minDisk", 0))
    except ValueError as exc:
        raise bad_request(f"Invalid minRam/minDisk filter: {exc}") from exc
    return int(flavor["ram"]) >= min_ram and int(flavor["disk"]) >= min_disk


def _page(request: web.Request, flavors: list[Record]) -> list[Record]:
    marker = request.query.get("marker")
    if marker:
        ids = [f["id"] for f in flavors]
        if marker not in ids:
            raise bad_request(f"marker [{marker}] not found")
        flavors = flavors[ids.index(marker) + 1 :]
    limit = request.query.get("limit")
    return flavors[: int(limit)] if limit and limit.isdigit() else flavors


async def list_flavors(request: web.Request) -> web.Response:
    """GET /flavors and /flavors/detail."""
    detail = request.match_info.get("detail", "") == "/detail"
    flavors = sorted(cloud_of(request).list("flavors"), key=lambda f: (f["ram"], f["id"]))
    chosen = _page(request, [f for f in flavors if _matches(request, f)])
    return json_response({"flavors": [render(request, f, detail=detail) for f in chosen]})


async def show_flavor(request: web.Request) -> web.Response:
    flavor_id = request.match_info["flavor_id"]
    flavor = cloud_of(request).find("flavors", flavor_id)
    if flavor is None:
        raise ApiError(404, f"Flavor {flavor_id} could not be found.")
    return json_response({"flavor": render(request, flavor)})


async def flavor_extra_specs(request: web.Request) -> web.Response:
    flavor_id = request.match_info["flavor_id"]
    flavor = cloud_of(request).find("flavors", flavor_id)
    if flavor is None:
        raise ApiError(404, f"Flavor {flavor_id} could not be found.")
    return json_response({"extra_specs": dict(flavor["extra_specs"])})


async def list_availability_zones(request: web.Request) -> web.Response:
    zone: Record = {"zoneName": AVAILABILITY_ZONE, "zoneState": {"available": True}, "hosts": None}
    if request.match_info.get("detail") == "/detail":
        service = {"nova-compute": {"available": True, "active": True, "updated_at": None}}
        zone["hosts"] = {host: service for host in HOSTS}
    return json_response({"availabilityZoneInfo": [zone]})
