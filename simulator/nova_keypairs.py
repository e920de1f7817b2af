"""Nova os-keypairs: per-user SSH key pairs, imported or generated (private key returned once)."""

from __future__ import annotations

import base64
import hashlib
import re

from aiohttp import web
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from simulator.core import ApiError, Cloud, Record
from simulator.http import cloud_of, json_response, project_of, read_json
from simulator.nova_common import at_least, invalid_input, is_admin, now_iso

_NAME_RE = re.compile(r"^[a-zA-Z0-9 _-]{1,255}$")


def _user(request: web.Request) -> str:
    """The user whose keys are addressed: the caller, or ``?user_id=`` for an admin (2.10+)."""
    asked = request.query.get("user_id")
    if asked and is_admin(request) and at_least(request, 10):
        return asked
    return str(request["user_id"])


def find(cloud: Cloud, user_id: str, name: str) -> Record | None:
    """The key pair ``name`` of ``user_id``."""
    for record in cloud.list("keypairs"):
        if record["user_id"] == user_id and record["name"] == name:
            return record
    return None


def _get(request: web.Request, name: str) -> Record:
    record = find(cloud_of(request), _user(request), name)
    if record is None:
        raise ApiError(404, f"Keypair {name} not found for user {_user(request)}")
    return record


def fingerprint(public_key: str) -> str:
    """Nova's fingerprint: MD5 of the key blob, colon-separated hex; 400 if not an SSH key."""
    try:
        serialization.load_ssh_public_key(public_key.strip().encode())
        blob = base64.b64decode(public_key.split()[1], validate=True)
    except (ValueError, IndexError, UnsupportedAlgorithm) as exc:
        raise ApiError(400, "Keypair data is invalid: failed to generate fingerprint") from exc
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def generate() -> tuple[str, str]:
    """A new (public OpenSSH line, private OpenSSH PEM) pair."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return f"{public} Generated-by-Nova", private


def _render(request: web.Request, record: Record, *, full: bool) -> Record:
    body: Record = {k: record[k] for k in ("name", "public_key", "fingerprint")}
    if at_least(request, 2):
        body["type"] = record["type"]
    if full:
        body.update(
            {
                "user_id": record["user_id"],
                "id": record["_number"],
                "created_at": record["created_at"],
                "deleted": False,
                "deleted_at": None,
                "updated_at": None,
            }
        )
    return body


async def create_keypair(request: web.Request) -> web.Response:
    body = await read_json(request, wrapper="keypair")
    name = body.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise invalid_input("name", f"'{name}' does not match '{_NAME_RE.pattern}'")
    cloud = cloud_of(request)
    user_id = (
        str(body.get("user_id"))
        if body.get("user_id") and is_admin(request)
        else str(request["user_id"])
    )
    if find(cloud, user_id, name) is not None:
        raise ApiError(409, f"Key pair '{name}' already exists.")
    private_key = None
    public_key = body.get("public_key")
    if not public_key:
        public_key, private_key = generate()
    record = cloud.add(
        "keypairs",
        {
            "id": cloud.new_id(),
            "_number": cloud.serial(),
            "name": name,
            "public_key": str(public_key),
            "fingerprint": fingerprint(str(public_key)),
            "type": str(body.get("type", "ssh")),
            "user_id": user_id,
            "created_at": now_iso(),
        },
        project_of(request),
    )
    rendered = _render(request, record, full=False)
    rendered["user_id"] = user_id
    if private_key is not None:
        rendered["private_key"] = private_key  # returned once, never stored
    return json_response({"keypair": rendered}, status=201 if at_least(request, 2) else 200)


async def list_keypairs(request: web.Request) -> web.Response:
    user_id = _user(request)
    records = sorted(
        (r for r in cloud_of(request).list("keypairs") if r["user_id"] == user_id),
        key=lambda r: r["name"],
    )
    marker = request.query.get("marker")
    if marker and at_least(request, 35):
        records = [r for r in records if r["name"] > marker]
    limit = request.query.get("limit", "")
    if limit.isdigit() and at_least(request, 35):
        records = records[: int(limit)]
    return json_response(
        {"keypairs": [{"keypair": _render(request, r, full=False)} for r in records]}
    )


async def show_keypair(request: web.Request) -> web.Response:
    record = _get(request, request.match_info["name"])
    return json_response({"keypair": _render(request, record, full=True)})


async def delete_keypair(request: web.Request) -> web.Response:
    record = _get(request, request.match_info["name"])
    cloud_of(request).remove("keypairs", record["id"])
    return web.Response(status=204 if at_least(request, 2) else 202)
