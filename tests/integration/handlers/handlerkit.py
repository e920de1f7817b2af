"""Helpers for the handler tests: a fake secret store, Deps on the simulator, a retry loop.

Import them as ``from handlerkit import ...`` (pytest puts this directory on sys.path; a plain
``from conftest import ...`` breaks when several test directories run together, since every
directory's conftest is called ``conftest``). Fixtures live in conftest.py.

A task's ``cloud`` is the simulator project it runs in: ``"demo"`` (``CLOUD``) or ``"alt"``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from engine.cloudpool import ThreadedCloudPool
from handlers.base import Deps, Event, Handler, Reply, cluster_tag
from simulator.testing import Sim

CLOUD = "demo"  # the cloud name handlers get == the simulator project they act in
TIME_SCALE = 0.01


class FakeSecretStore:
    """In-memory implementation of handlers.base.SecretStore."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], bytes] = {}

    async def get(self, cluster_id: str, name: str) -> bytes | None:
        return self.data.get((cluster_id, name))

    async def put_if_absent(self, cluster_id: str, name: str, value: bytes) -> bytes:
        return self.data.setdefault((cluster_id, name), value)

    async def delete_all(self, cluster_id: str) -> None:
        for key in [k for k in self.data if k[0] == cluster_id]:
            del self.data[key]


@dataclass
class Run:
    """What ``run_until_done`` saw: the final reply, every event in order, the rounds it took."""

    reply: Reply
    events: list[Event] = field(default_factory=list)
    rounds: int = 0
    task: dict[str, Any] = field(default_factory=dict)  # the last task the handler got

    def of(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.type == event_type]

    def last(self, event_type: str) -> Event:
        """The last event of ``event_type`` (AssertionError if there is none)."""
        found = self.of(event_type)
        assert found, f"no {event_type} event in {[e.type for e in self.events]}"
        return found[-1]


async def run_until_done(
    handler: Handler,
    task: dict[str, Any],
    deps: Deps,
    deadline: float = 10.0,
    *,
    time_scale: float = TIME_SCALE,
) -> Run:
    """Call ``handler`` like the runner does: re-run ``retry_data`` (attempt + 1) after the
    scaled-down ``retry_after_ms`` until a reply without a retry; fail after ``deadline`` s.
    Handler exceptions propagate (the runner would turn them into ``*.failed``)."""
    give_up = time.monotonic() + deadline
    run = Run(reply=Reply())
    current = dict(task)
    while True:
        run.task = current
        reply = await handler(current, deps)
        run.rounds += 1
        run.reply = reply
        run.events.extend(reply.events)
        if reply.retry_after_ms is None:
            return run
        assert reply.retry_data is not None, "Reply.later without retry_data"
        if time.monotonic() > give_up:
            raise AssertionError(f"not done within {deadline} s after {run.rounds} rounds")
        current = {**reply.retry_data, "attempt": int(reply.retry_data.get("attempt", 0)) + 1}
        await asyncio.sleep(reply.retry_after_ms / 1000 * time_scale)


def leaks(sim: Sim, cluster_id: str) -> list[dict[str, Any]]:
    """Resources still in the cloud carrying ``cluster_id``'s ownership tag."""
    found: list[dict[str, Any]] = sim.inspect("leaks", tag=cluster_tag(cluster_id))["leaks"]
    return found


def inventory(sim: Sim, kind: str, project: str = CLOUD) -> list[dict[str, Any]]:
    """Every record of ``kind`` (e.g. "networks") in ``project``."""
    records: list[dict[str, Any]] = sim.inspect("inventory", project=project)[kind]
    return records


def named(sim: Sim, kind: str, name: str, project: str = CLOUD) -> list[dict[str, Any]]:
    """Records of ``kind`` called ``name`` in ``project``."""
    return [r for r in inventory(sim, kind, project) if r.get("name") == name]


def call_count(sim: Sim) -> int:
    """Total OpenStack API calls the simulator has answered so far."""
    return int(sim.inspect("calls")["total"])


def make_deps(sim: Sim, secrets: FakeSecretStore | None = None) -> Deps:
    """Deps whose cloud pool connects each cloud name to the simulator project of that name."""
    pool = ThreadedCloudPool(max_threads=4, per_cloud=4, connect=lambda cloud: sim.connect(cloud))
    return Deps(clouds=pool, secrets=secrets or FakeSecretStore())
