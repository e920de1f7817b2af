"""Glance v2, read-only: version documents, image list (filters, paging) and show, seed images."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from simulator.core import ApiError, Cloud, Record, public
from simulator.http import cloud_of, json_response, project_of

_NAMESPACE = uuid.UUID("0b9f4c1e-7d3a-4f6b-8e2a-1c5d9e7f3a20")
CREATED = "2024-06-01T00:00:00Z"

# name -> (os_distro, os_version, kube version or "", size in bytes, tags)
SEED_IMAGES: dict[str, tuple[str, str, str, int, list[str]]] = {
    "ubuntu-22.04-kube-v1.30.2": (
        "ubuntu",
        "22.04",
        "v1.30.2",
        4_294_967_296,
        ["kubernetes", "capi", "kube-v1.30.2"],
    ),
    "ubuntu-24.04-kube-v1.31.0": (
        "ubuntu",
        "24.04",
        "v1.31.0",
        4_509_715_660,
        ["kubernetes", "capi", "kube-v1.31.0"],
    ),
    "cirros-0.6.2": ("cirros", "0.6.2", "", 21_430_272, ["test"]),
}
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000


def image_id(name: str) -> str:
    """Seed images get stable ids, so they survive resets and restarts."""
    return str(uuid.uuid5(_NAMESPACE, name))


def _image(name: str, distro: str, version: str, kube: str, size: int, tags: list[str]) -> Record:
    iid = image_id(name)
    record: Record = {
        "id": iid,
        "name": name,
        "status": "active",
        "visibility": "public",
        "protected": False,
        "os_hidden": False,
        "owner": None,
        "tags": list(tags),
        "container_format": "bare",
        "disk_format": "qcow2",
        "size": size,
        "virtual_size": size * 5,
        "min_disk": 0 if distro == "cirros" else 20,
        "min_ram": 0,
        "checksum": hashlib.md5(name.encode(), usedforsecurity=False).hexdigest(),
        "os_hash_algo": "sha512",
        "os_hash_value": hashlib.sha512(name.encode()).hexdigest(),
        "os_distro": distro,
        "os_version": version,
        "os_type": "linux",
        "hw_disk_bus": "scsi",
        "hw_scsi_model": "virtio-scsi",
        "created_at": CREATED,
        "updated_at": CREATED,
        "file": f"/v2/images/{iid}/file",
        "self": f"/v2/images/{iid}",
        "schema": "/v2/schemas/image",
    }
    if kube:
        record["kube_version"] = kube
    return record


def seed(cloud: Cloud) -> None:
    for name, (distro, version, kube, size, tags) in SEED_IMAGES.items():
        cloud.add("images", _image(name, distro, version, kube, size, tags), None)


def _visible(record: Record, project_id: str, admin: bool) -> bool:
    return (
        admin
        or record["visibility"] in ("public", "community", "shared")
        or (record.get("owner") == project_id)
    )


def _matches(record: Record, query: Any) -> bool:
    """Glance's list filters: name, status, visibility, os_distro and every ``tag`` given."""
    for field in ("name", "status", "visibility", "os_distro", "id"):
        if field in query and str(record.get(field)) != query[field]:
            return False
    return all(tag in record["tags"] for tag in query.getall("tag", []))


def _limit(query: Any) -> int:
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
    except ValueError as exc:
        raise ApiError(400, "limit param must be an integer") from exc
    if limit < 0:
        raise ApiError(400, "limit param must be positive")
    return min(limit, MAX_LIMIT)


async def versions(request: web.Request) -> web.Response:
    base = f"{request.url.origin()}/image"
    values = [
        {
            "id": v,
            "status": "CURRENT" if v == "v2.16" else "SUPPORTED",
            "links": [{"rel": "self", "href": f"{base}/v2/"}],
        }
        for v in ("v2.16", "v2.15", "v2.9", "v2.0")
    ]
    return json_response({"versions": values}, status=300)


async def list_images(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    project_id, admin = project_of(request), "admin" in request["roles"]
    query = request.query
    images = sorted(
        (
            r
            for r in cloud.table("images").values()
            if _visible(r, project_id, admin) and _matches(r, query)
        ),
        key=lambda r: (r["created_at"], r["id"]),
        reverse=True,
    )
    marker = query.get("marker")
    if marker:
        ids = [r["id"] for r in images]
        if marker not in ids:
            raise ApiError(400, f"marker {marker} could not be found.")
        images = images[ids.index(marker) + 1 :]
    limit = _limit(query)
    page = images[:limit]
    body: Record = {
        "images": [public(r) for r in page],
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    }
    if len(images) > limit and page:
        params = [(k, v) for k, v in query.items() if k != "marker"]
        body["next"] = "/v2/images?" + urlencode([*params, ("marker", page[-1]["id"])])
    return json_response(body)


async def show_image(request: web.Request) -> web.Response:
    cloud = cloud_of(request)
    image_id_ = request.match_info["image_id"]
    record = cloud.table("images").get(image_id_)
    if record is None or not _visible(record, project_of(request), "admin" in request["roles"]):
        raise ApiError(404, f"No image found with ID {image_id_}")
    return json_response(public(record))


def setup(app: web.Application, cloud: Cloud) -> None:
    seed(cloud)
    route = app.router.add_route
    route("GET", "/image{slash:/?}", versions, name="image.versions")
    route("GET", "/image/v2/images", list_images, name="image.images.list")
    route("GET", "/image/v2/images/{image_id}", show_image, name="image.images.show")
