"""Keystone's identities: the seeded projects, users and application credentials.

Ids are derived from names (uuid5), so they stay the same across a ``/_sim/reset`` and a restart
with ``--state``.
"""

from __future__ import annotations

import uuid

from simulator.core import Cloud, Record

DOMAIN = {"id": "default", "name": "Default"}
REGION = "RegionOne"
ADMIN = "admin"
ADMIN_PASSWORD = "admin-password"
_NAMESPACE = uuid.UUID("6a1c3f0e-8a52-4d0a-9a55-0c1b2d3e4f50")


def stable_id(kind: str, name: str) -> str:
    """Keystone-style 32-hex id that depends only on ``kind`` and ``name``."""
    return uuid.uuid5(_NAMESPACE, f"{kind}:{name}").hex


def seed(cloud: Cloud) -> None:
    """Create the admin project/user and one project, user and app credential per profile entry."""
    specs = [(ADMIN, ADMIN, ADMIN_PASSWORD, [ADMIN, "member", "reader"])]
    specs += [(p.name, p.user, p.password, ["member", "reader"]) for p in cloud.profile.projects]
    for project_name, user_name, password, roles in specs:
        project_id = stable_id("project", project_name)
        cloud.add("projects", _project(project_id, project_name), None)
        user_id = stable_id("user", user_name)
        user = cloud.table("users").get(user_id)
        if user is None:
            user = cloud.add("users", _user(user_id, user_name, password, project_id), None)
        user["_roles"][project_id] = roles
        cred_id = f"{project_name}-appcred"
        cloud.add(
            "application_credentials",
            {
                "id": cred_id,
                "name": cred_id,
                "user_id": user_id,
                "project_id": project_id,
                "roles": [{"name": r} for r in roles],
                "_secret": f"{cred_id}-secret",
            },
            None,
        )


def _project(project_id: str, name: str) -> Record:
    return {
        "id": project_id,
        "name": name,
        "domain_id": "default",
        "enabled": True,
        "description": f"{name} project",
        "is_domain": False,
        "parent_id": "default",
        "tags": [],
    }


def _user(user_id: str, name: str, password: str, project_id: str) -> Record:
    return {
        "id": user_id,
        "name": name,
        "domain_id": "default",
        "enabled": True,
        "default_project_id": project_id,
        "password_expires_at": None,
        "_password": password,
        "_roles": {},
    }


def project_name(cloud: Cloud, project_id: str | None) -> str | None:
    record = cloud.table("projects").get(project_id or "")
    return None if record is None else str(record["name"])


def project_id_by_name(cloud: Cloud, name: str) -> str | None:
    for record in cloud.table("projects").values():
        if record["name"] == name or record["id"] == name:
            return str(record["id"])
    return None
