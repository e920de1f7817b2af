"""Keystone tokens and catalog, Glance images: over HTTP and through unchanged openstacksdk."""

from __future__ import annotations

from typing import Any

import keystoneauth1.exceptions
import openstack.connection
import openstack.exceptions
import pytest
import requests

from simulator.glance import image_id
from simulator.keystone import stable_id
from simulator.testing import Sim


def password_auth(user: str, password: str, project: str) -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"name": "Default"}, "password": password}
                },
            },
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
        }
    }


def issue(sim: Sim, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{sim.base_url}/identity/v3/auth/tokens", json=body, timeout=10)


def test_identity_version_documents_need_no_token(sim: Sim) -> None:
    versions = requests.get(f"{sim.base_url}/identity", timeout=10)
    assert versions.status_code == 300
    (v3,) = versions.json()["versions"]["values"]
    assert v3["status"] == "stable"
    assert v3["links"][0]["href"] == f"{sim.base_url}/identity/v3/"
    assert (
        requests.get(f"{sim.base_url}/identity/v3/", timeout=10).json()["version"]["id"] == "v3.14"
    )


def test_password_token_has_project_roles_and_full_catalog(sim: Sim) -> None:
    response = issue(sim, password_auth("demo", "demo-password", "demo"))
    assert response.status_code == 201
    assert response.headers["X-Subject-Token"]
    token = response.json()["token"]
    assert token["methods"] == ["password"]
    assert token["project"] == {
        "id": stable_id("project", "demo"),
        "name": "demo",
        "domain": {"id": "default", "name": "Default"},
    }
    assert {r["name"] for r in token["roles"]} == {"member", "reader"}
    assert token["expires_at"].endswith("Z")
    by_type = {entry["type"]: entry for entry in token["catalog"]}
    assert set(by_type) == {"identity", "compute", "network", "load-balancer", "image"}
    compute = by_type["compute"]["endpoints"]
    assert {e["interface"] for e in compute} == {"public", "internal", "admin"}
    assert all(e["region"] == e["region_id"] == "RegionOne" for e in compute)
    assert compute[0]["url"] == f"{sim.base_url}/compute/v2.1"


def test_bad_password_and_unknown_user_are_401(sim: Sim) -> None:
    assert issue(sim, password_auth("demo", "wrong", "demo")).status_code == 401
    assert issue(sim, password_auth("nobody", "demo-password", "demo")).status_code == 401
    # a real user asking for a project it has no role in
    assert issue(sim, password_auth("demo", "demo-password", "alt")).status_code == 401


def test_requests_without_a_valid_token_are_401_in_the_service_shape(sim: Sim) -> None:
    for headers in ({}, {"X-Auth-Token": "not-a-token"}):
        response = requests.get(f"{sim.base_url}/image/v2/images", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == 401
    assert sim.inspect("calls")["errors"]["image.images.list"] == 2


def test_token_validation_and_revocation(sim: Sim) -> None:
    token_id = issue(sim, password_auth("alt", "alt-password", "alt")).headers["X-Subject-Token"]
    headers = {"X-Auth-Token": token_id, "X-Subject-Token": token_id}
    url = f"{sim.base_url}/identity/v3/auth/tokens"
    checked = requests.get(url, headers=headers, timeout=10)
    assert checked.status_code == 200
    assert checked.json()["token"]["project"]["name"] == "alt"
    assert requests.delete(url, headers=headers, timeout=10).status_code == 204
    images = requests.get(f"{sim.base_url}/image/v2/images", headers=headers, timeout=10)
    assert images.status_code == 401


def test_application_credential_through_openstacksdk(sim: Sim) -> None:
    conn = openstack.connection.Connection(
        auth_type="v3applicationcredential",
        auth_url=sim.auth_url,
        application_credential_id="alt-appcred",
        application_credential_secret="alt-appcred-secret",
        region_name="RegionOne",
    )
    assert conn.current_project_id == stable_id("project", "alt")
    assert len(list(conn.image.images())) == 3
    bad = openstack.connection.Connection(
        auth_type="v3applicationcredential",
        auth_url=sim.auth_url,
        application_credential_id="alt-appcred",
        application_credential_secret="wrong",
        region_name="RegionOne",
    )
    with pytest.raises(keystoneauth1.exceptions.Unauthorized):
        list(bad.image.images())


def test_admin_sees_every_project(sim: Sim) -> None:
    demo = sim.connect("demo")
    admin = sim.connect("admin")
    assert [p.name for p in demo.identity.projects()] == ["demo"]
    assert {p.name for p in admin.identity.projects()} == {"admin", "demo", "alt"}


def test_find_image_by_name_and_id(sim: Sim) -> None:
    conn = sim.connect()
    image = conn.image.find_image("ubuntu-22.04-kube-v1.30.2", ignore_missing=False)
    assert image.id == image_id("ubuntu-22.04-kube-v1.30.2")
    assert image.os_distro == "ubuntu"
    assert image.status == "active"
    assert "kube-v1.30.2" in image.tags
    assert conn.image.get_image(image.id).name == image.name
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.image.find_image("no-such-image", ignore_missing=False)


def test_image_filters_and_paging(sim: Sim) -> None:
    conn = sim.connect()
    assert [i.name for i in conn.image.images(tag="test")] == ["cirros-0.6.2"]
    assert len(list(conn.image.images(tag=["kubernetes", "capi"]))) == 2
    assert len(list(conn.image.images(visibility="public", status="active"))) == 3
    # limit=1 makes openstacksdk follow the "next" links: three pages plus an empty check
    assert len(list(conn.image.images(limit=1))) == 3
    assert sim.inspect("calls")["calls"]["image.images.list"] >= 6


def test_glance_paging_links_over_http(sim: Sim) -> None:
    token = sim.connect().auth_token
    url = f"{sim.base_url}/image/v2/images"
    first = requests.get(url, params={"limit": 2}, headers={"X-Auth-Token": token}, timeout=10)
    page = first.json()
    assert len(page["images"]) == 2
    assert page["next"].startswith("/v2/images?")
    rest = requests.get(
        f"{sim.base_url}/image{page['next']}", headers={"X-Auth-Token": token}, timeout=10
    ).json()
    assert len(rest["images"]) == 1
    assert "next" not in rest
    versions = requests.get(f"{sim.base_url}/image", timeout=10)
    assert versions.status_code == 300
    assert versions.json()["versions"][0]["status"] == "CURRENT"


def test_unknown_route_is_404_in_the_service_shape(sim: Sim) -> None:
    token = sim.connect().auth_token
    headers = {"X-Auth-Token": token}
    glance = requests.get(f"{sim.base_url}/image/v2/nothing/here", headers=headers, timeout=10)
    assert glance.status_code == 404
    assert glance.json()["error"]["code"] == 404
    nova = requests.get(f"{sim.base_url}/compute/v2.1/nothing/here", headers=headers, timeout=10)
    assert nova.status_code == 404
    assert nova.json()["itemNotFound"]["code"] == 404
    assert nova.headers["OpenStack-API-Version"].startswith("compute ")


def test_inventory_lists_seed_projects_and_images(sim: Sim) -> None:
    inventory = sim.inspect("inventory")
    assert {p["name"] for p in inventory["projects"]} == {"admin", "demo", "alt"}
    assert {i["name"] for i in inventory["images"]} >= {"cirros-0.6.2"}
    assert all(not key.startswith("_") for user in inventory["users"] for key in user)
    assert sim.inspect("leaks") == {"leaks": [], "count": 0}
