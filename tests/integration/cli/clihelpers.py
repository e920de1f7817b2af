"""Run ``python -m engine ...`` as a child process with the test's settings."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

from engine.bus import Bus
from engine.client import ClusterClient
from engine.messages import Message, make
from engine.settings import Settings
from support.processes import settings_env
from support.waiting import eventually


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def cli(
    settings: Settings, *args: str, within: float = 60.0, env: dict[str, str] | None = None
) -> Result:
    """Run the CLI to completion without blocking the test's event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", *args,
        env=settings_env(settings, COLUMNS="200", **(env or {})),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        proc.kill()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def publish_event(bus: Bus, event: Message) -> None:
    """Play a handler: publish one event as a handler would."""
    await bus.publish(make(event, source="tests-fake-handler"), exchange=None)


async def wait_state(client: ClusterClient, name: str, state: str, within: float = 20.0) -> None:
    async def reached() -> bool:
        snap = await client.get(name)
        return snap is not None and snap["state"] == state

    await eventually(reached, within=within, what=f"{name} in {state}")
