"""Test helpers: a handle on a running simulator for synchronous callers (tests, e2e, benchmarks).

``Sim.start(profile)`` runs the simulator in a background thread on a free loopback port and
writes a clouds.yaml for it; ``connect`` gives an openstacksdk Connection for a project.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openstack.connection
import requests
from openstack.warnings import RemovedInSDK60Warning

from simulator import keystone
from simulator.core import Cloud
from simulator.profile import Profile
from simulator.serve import BackgroundSimulator, write_clouds_yaml


@dataclass
class Sim:
    """Handle on a running simulator for tests."""

    server: BackgroundSimulator
    clouds_yaml: Path

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def cloud(self) -> Cloud:
        return self.server.cloud

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/identity"

    def credentials(self, project: str = "demo") -> tuple[str, str]:
        """(user, password) of ``project``'s user."""
        if project == keystone.ADMIN:
            return keystone.ADMIN, keystone.ADMIN_PASSWORD
        spec = next(p for p in self.server.profile.projects if p.name == project)
        return spec.user, spec.password

    def connect(self, project: str = "demo", **options: Any) -> openstack.connection.Connection:
        """A Connection scoped to ``project``; ``options`` go to openstacksdk's config."""
        user, password = self.credentials(project)
        with warnings.catch_warnings():
            # openstacksdk 4.22 warns about InfluxDB on every Connection, configured or not.
            warnings.simplefilter("ignore", RemovedInSDK60Warning)
            return openstack.connection.Connection(
                auth_url=self.auth_url,
                username=user,
                password=password,
                project_name=project,
                user_domain_name="Default",
                project_domain_name="Default",
                region_name=keystone.REGION,
                identity_api_version="3",
                interface="public",
                **options,
            )

    def inspect(self, path: str, **params: str) -> dict[str, Any]:
        """GET ``/_sim/<path>`` as JSON."""
        response = requests.get(
            f"{self.base_url}/_sim/{path.lstrip('/')}", params=params, timeout=10
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def resource(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        """The record as the cloud has it now (due state changes applied), None if gone."""
        response = requests.get(f"{self.base_url}/_sim/resources/{kind}/{resource_id}", timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def wait_status(
        self, kind: str, resource_id: str, status: str | None, timeout: float = 10.0
    ) -> dict[str, Any] | None:
        """Wait until ``status`` (or ``provisioning_status``) is reached; None: until gone."""

        def reached() -> Any:
            record = self.resource(kind, resource_id)
            if status is None:
                return record is None
            if record is None:
                raise AssertionError(f"{kind} {resource_id} is gone, wanted {status}")
            return (
                record
                if status in (record.get("status"), record.get("provisioning_status"))
                else None
            )

        found = self.wait_for(reached, timeout)
        return found if isinstance(found, dict) else None

    @staticmethod
    def wait_for(
        condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05
    ) -> Any:
        """Poll ``condition`` until truthy (returned); AssertionError after ``timeout`` s."""
        return wait_for(condition, timeout, interval)

    @classmethod
    def start(cls, profile: Profile, clouds_yaml: Path) -> Sim:
        """Start a simulator for ``profile`` and write its clouds.yaml entries."""
        server = BackgroundSimulator(profile=profile).start()
        write_clouds_yaml(clouds_yaml, server.base_url, profile)
        return cls(server=server, clouds_yaml=clouds_yaml)

    def stop(self) -> None:
        self.server.stop()

    def reset(self) -> None:
        requests.post(f"{self.base_url}/_sim/reset", timeout=10).raise_for_status()

    def put_profile(self, profile: Profile, *, reset: bool = False) -> None:
        requests.put(
            f"{self.base_url}/_sim/profile",
            json=profile.model_dump(mode="json"),
            params={"reset": "1"} if reset else None,
            timeout=10,
        ).raise_for_status()


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)
