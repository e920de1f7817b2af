"""Injected faults, latency, time scale, quotas, reset and runtime profile changes."""

from __future__ import annotations

import time

import keystoneauth1.exceptions
import openstack.exceptions
import pytest
import requests

from simulator import quotas
from simulator.core import ApiError
from simulator.glance import image_id
from simulator.keystone import stable_id
from simulator.profile import (
    Delays,
    ErrorFault,
    Faults,
    Latency,
    Profile,
    ProjectSpec,
    Quota,
)
from simulator.testing import Sim

DEMO = stable_id("project", "demo")


def with_faults(*faults: ErrorFault) -> Profile:
    return Profile(time_scale=0.01, seed=7, faults=Faults(errors=list(faults)))


def tight_quota(**limits: int) -> Profile:
    spec = ProjectSpec(name="demo", user="demo", password="demo-password", quota=Quota(**limits))
    return Profile(time_scale=0.01, projects=[spec])


@pytest.mark.parametrize(
    ("kind", "status"), [("http_500", 500), ("http_503", 503)], ids=["500", "503"]
)
def test_injected_http_error_reaches_openstacksdk(sim: Sim, kind: str, status: int) -> None:
    # openstacksdk retries an image 503 five times with backoff; one retry keeps this fast
    conn = sim.connect(image_status_code_retries=1)
    sim.put_profile(with_faults(ErrorFault(match="image.images.*", rate=1.0, kind=kind)))
    with pytest.raises(openstack.exceptions.HttpException) as raised:
        list(conn.image.images())
    assert raised.value.status_code == status
    assert "Injected fault" in str(raised.value)
    calls = sim.inspect("calls")
    expected = 2 if status == 503 else 1  # only the 503 is retried
    assert calls["errors"]["image.images.list"] == calls["calls"]["image.images.list"] == expected
    # the fault matches only its pattern: identity still answers
    assert conn.identity.get_project(DEMO).name == "demo"


def test_injected_reset_is_a_connection_error(sim: Sim) -> None:
    conn = sim.connect()
    sim.put_profile(with_faults(ErrorFault(match="image.images.list", rate=1.0, kind="reset")))
    with pytest.raises((keystoneauth1.exceptions.ConnectFailure, requests.ConnectionError)):
        list(conn.image.images())
    sim.put_profile(with_faults())
    assert len(list(conn.image.images())) == 3  # the client recovers on a new connection


def test_partial_fault_rate_fails_some_requests_only(sim: Sim) -> None:
    token = sim.connect().auth_token
    sim.put_profile(with_faults(ErrorFault(match="image.*", rate=0.5)))
    statuses = [
        requests.get(
            f"{sim.base_url}/image/v2/images", headers={"X-Auth-Token": token}, timeout=10
        ).status_code
        for _ in range(40)
    ]
    assert set(statuses) == {200, 500}


@pytest.fixture
def slow_listing() -> Profile:
    # 50 cloud seconds at time scale 0.01: 0.5 s of wall clock on image listing only
    return Profile(
        time_scale=0.01,
        latency={"image.images.list": Latency(value=50.0), "*": Latency(value=0.0)},
    )


def test_latency_is_applied_per_operation_and_scaled(sim: Sim, slow_listing: Profile) -> None:
    conn = sim.connect()
    sim.put_profile(slow_listing)
    started = time.monotonic()
    conn.image.get_image(image_id("cirros-0.6.2"))  # image.images.show: no latency
    fast = time.monotonic() - started
    started = time.monotonic()
    list(conn.image.images(visibility="public"))
    slow = time.monotonic() - started
    assert 0.4 <= slow < 3.0
    assert fast < slow


@pytest.fixture
def sim_profile() -> Profile:
    return Profile(time_scale=0.01, delays=Delays(server_boot=60.0))


def test_time_scale_server_boot_takes_scaled_time(sim: Sim) -> None:
    """Server boot of 60 cloud seconds at scale 0.01 is ACTIVE after about 0.6 s."""
    conn = sim.connect()
    flavor = conn.compute.find_flavor("m1.small", ignore_missing=False)
    image = conn.image.find_image("cirros-0.6.2", ignore_missing=False)
    started = time.monotonic()
    server = conn.compute.create_server(
        name="clock", flavor_id=flavor.id, image_id=image.id, networks="none"
    )
    assert server.status == "BUILD" or conn.compute.get_server(server.id).status == "BUILD"
    sim.wait_for(lambda: conn.compute.get_server(server.id).status == "ACTIVE", timeout=5)
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed <= 3.0


def test_nova_quota_is_403_forbidden(sim: Sim) -> None:
    sim.put_profile(tight_quota(instances=1), reset=True)
    conn = sim.connect()
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    image = conn.image.find_image("cirros-0.6.2", ignore_missing=False)
    conn.compute.create_server(name="one", flavor_id=flavor.id, image_id=image.id, networks="none")
    with pytest.raises(openstack.exceptions.ForbiddenException) as raised:
        conn.compute.create_server(
            name="two", flavor_id=flavor.id, image_id=image.id, networks="none"
        )
    assert "Quota exceeded for instances: Requested 1, but already used 1 of 1" in str(raised.value)


def test_neutron_quota_is_409_over_quota(sim: Sim) -> None:
    sim.put_profile(tight_quota(network=1), reset=True)
    conn = sim.connect()
    conn.network.create_network(name="first")
    with pytest.raises(openstack.exceptions.ConflictException) as raised:
        conn.network.create_network(name="second")
    assert "Quota exceeded for resources: ['network']" in str(raised.value)


def test_quota_check_messages_per_service(sim: Sim) -> None:
    """quotas.check directly: the message and status each service really uses."""
    sim.put_profile(tight_quota(cores=2, port=0, loadbalancer=0), reset=True)
    cloud = sim.cloud
    quotas.check(cloud, DEMO, "cores", 2)  # exactly at the limit is allowed
    cases = [
        ("cores", 3, 403, "Requested 3, but already used 0 of 2 cores."),
        ("port", 1, 409, "['port']"),
        ("loadbalancer", 1, 403, "Quota has been met for resources: LoadBalancer"),
    ]
    for resource, requested, status, message in cases:
        with pytest.raises(ApiError) as raised:
            quotas.check(cloud, DEMO, resource, requested)
        assert raised.value.status == status
        assert message in raised.value.message
    assert quotas.quota_set(cloud, DEMO)["cores"] == {"limit": 2, "in_use": 0}


def test_reset_returns_to_seed_state_and_keeps_tokens(sim: Sim) -> None:
    conn = sim.connect()
    network = conn.network.create_network(name="to-be-reset")
    assert [leak["name"] for leak in sim.inspect("leaks")["leaks"]] == ["to-be-reset"]
    sim.reset()
    assert sim.inspect("leaks")["count"] == 0
    assert sim.inspect("calls")["total"] == 0
    assert sim.cloud.find("networks", network.id) is None
    assert len(list(conn.image.images())) == 3  # same token still valid


def test_profile_round_trip_and_validation(sim: Sim) -> None:
    sim.put_profile(Profile(time_scale=0.5))
    assert sim.inspect("profile")["time_scale"] == 0.5
    assert sim.cloud.clock.scale == 0.5
    bad = requests.put(f"{sim.base_url}/_sim/profile", json={"time_scale": -1}, timeout=10)
    assert bad.status_code == 400
    assert sim.inspect("profile")["time_scale"] == 0.5
