"""Helpers for the end-to-end tests: a deployment of child processes, commands, store probes.

Import as ``from e2ekit import ...`` (pytest puts this directory on sys.path).
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from engine.bus import Bus
from engine.messages.envelope import envelope_for
from engine.messages.spec import ClusterSpec
from engine.settings import Settings
from engine.store import Store
from simulator.profile import Delays, Profile
from simulator.testing import Sim
from support.engine import wait_engine_ready
from support.processes import ClusterbusProcess
from support.waiting import eventually

TIME_SCALE = 0.01
CLOUDS = {"demo": "clusterbus-sim", "alt": "clusterbus-sim-alt"}


def fast_profile(**changes: Any) -> Profile:
    """A realistic but quick cloud: every asynchronous delay is ~0.1-0.6 s of wall time."""
    delays = Delays(
        server_boot=30, server_delete=5, lb_create=30, lb_update=5, lb_delete=10, member_online=10
    )
    return Profile(**{"time_scale": TIME_SCALE, "seed": 7, "delays": delays, **changes})


def cluster_spec(name: str, cloud: str, *, workers: int = 2) -> dict[str, Any]:
    """3 control-plane nodes, one worker pool, a bastion; as the JSON of ``cluster.create``."""
    spec = ClusterSpec.model_validate(
        {
            "name": name,
            "cloud": cloud,
            "control_plane": {"replicas": 3, "flavor": "m1.medium"},
            "worker_pools": [{"name": "md", "replicas": workers, "flavor": "m1.large"}],
            # m1.tiny (the spec default) has a 1 GB disk, too small for the 20 GB kube image.
            "bastion": {"enabled": True, "flavor": "m1.small"},
        }
    )
    return spec.model_dump(mode="json")


class Deployment:
    """The engine and handlers roles as killable child processes, plus a client's view."""

    def __init__(self, settings: Settings, bus: Bus, store: Store, log_dir: Path) -> None:
        self.settings = settings
        self.bus = bus
        self.store = store
        self.log_dir = log_dir
        self.env = {
            "OS_CLIENT_CONFIG_FILE": str(log_dir / "clouds.yaml"),
            "CLUSTERBUS_RECONCILE_INTERVAL_S": "2",
            # A restarted engine takes a killed one's shards after its leases expire (3 intervals).
            "CLUSTERBUS_LEASE_INTERVAL_S": "0.5",
        }
        self.procs: dict[str, ClusterbusProcess] = {}
        self.dead: list[ClusterbusProcess] = []

    def start(self, *roles: str) -> None:
        for role in roles or ("engine", "handlers"):
            self.procs[role] = ClusterbusProcess(
                self.settings, role, self.log_dir, **self.env
            ).start()

    async def start_and_wait(self) -> None:
        self.start()
        await wait_engine_ready(self.bus)

    def kill(self, role: str) -> None:
        proc = self.procs.pop(role)
        proc.kill()
        self.dead.append(proc)

    def kill_all(self) -> None:
        for role in list(self.procs):
            self.kill(role)

    def logs(self, lines: int = 60) -> str:
        """The tail of every child's log, for assertion messages."""
        every = [*self.dead, *self.procs.values()]
        return "\n".join(f"--- {p.role} ---\n{_interesting(p, lines)}" for p in every)

    async def command(self, type_: str, cluster_id: str, data: dict[str, Any]) -> None:
        await self.bus.publish(envelope_for(type_, cluster_id, data, source="tests"), exchange=None)

    async def create(self, name: str, cloud: str, *, workers: int = 2) -> None:
        await self.command(
            "cluster.create", name, {"spec": cluster_spec(name, cloud, workers=workers)}
        )

    async def state(self, cluster_id: str) -> str | None:
        loaded = await self.store.load(cluster_id)
        return loaded[0].state if loaded else None

    async def wait_state(
        self, cluster_id: str, wanted: str, *, within: float = 60.0, fail_fast: bool = True
    ) -> None:
        """Poll the store until the cluster is ``wanted``; fail early if it fails instead."""

        async def reached() -> bool:
            loaded = await self.store.load(cluster_id)
            if fail_fast and loaded and loaded[0].state == "failed" and wanted != "failed":
                reason = loaded[0].doc.get("failure_reason")
                raise AssertionError(f"{cluster_id} failed: {reason}\n{self.logs()}")
            return loaded is not None and loaded[0].state == wanted

        try:
            await eventually(reached, within=within, interval=0.2, what=f"{cluster_id} {wanted}")
        except AssertionError as error:
            state = await self.state(cluster_id)
            raise AssertionError(f"{error}\nstate={state}\n{self.logs()}") from None

    async def machines(self, cluster_id: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
        """machine id -> (role, state, doc)."""
        loaded = await self.store.load(cluster_id)
        assert loaded is not None
        return {m.id: (m.role, m.state, m.doc) for m in loaded[1]}


def _interesting(proc: ClusterbusProcess, lines: int) -> str:
    """The last ``lines`` log lines without the transitions library's chatter."""
    text = proc.log_path.read_text(errors="replace") if proc.log_path.exists() else ""
    kept = [line for line in text.splitlines() if '"transitions.core"' not in line]
    return "\n".join(kept[-lines:])


def user_data(sim: Sim, server_id: str) -> str:
    """The decoded user-data the server booted with (a private field of the simulator)."""
    record = sim.cloud.table("servers")[server_id]
    encoded = record.get("_user_data") or ""
    return base64.b64decode(encoded).decode() if encoded else ""


async def settle(seconds: float) -> None:
    """Let in-flight work continue (used only between random kills, never as a wait)."""
    await asyncio.sleep(seconds)
