"""``clusterbus cluster timeline`` on a real finished cluster (engine + handlers + simulator).

With ``CLUSTERBUS_TIMELINE_EXAMPLE=docs/timeline-example.svg`` the test also writes the picture
committed as the README's example.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from e2ekit import Deployment

from engine.timeline import build
from simulator.testing import Sim
from support.processes import settings_env

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(150)]
NAME = "chronos"
MACHINES = {"bastion", "control-plane-0", "control-plane-1", "control-plane-2", "md-0", "md-1"}


async def timeline_cli(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    env = settings_env(deployment.settings, COLUMNS="160")
    command = [sys.executable, "-m", "engine", "cluster", "timeline", *args]
    run = subprocess.run
    return await asyncio.to_thread(run, command, env=env, capture_output=True, text=True,
                                   timeout=60, check=False)  # fmt: skip


async def test_timeline_of_a_finished_cluster(
    sim: Sim, deployment: Deployment, tmp_path: Path
) -> None:
    await deployment.start_and_wait()
    await deployment.create(NAME, "clusterbus-sim")
    await deployment.wait_state(NAME, "ready", within=60)

    chart = build(NAME, await deployment.store.history(NAME))
    bars = {bar.label: bar for bar in chart.bars}
    assert MACHINES | {"PKI", "network", "security groups", "API endpoint (LB)"} <= set(bars)
    assert all(bar.outcome == "done" for bar in chart.bars)
    path = [bar.label for bar in chart.critical_path]
    # The network starts everything; the last control-plane join or a worker ends it.
    assert path[0] in ("network", "PKI") and path[-1] in MACHINES - {"bastion"}
    assert chart.ready_after == pytest.approx(chart.total) and chart.total > 0

    svg, page = tmp_path / "t.svg", tmp_path / "t.html"
    result = await timeline_cli(deployment, NAME, "--svg", str(svg), "--html", str(page))
    assert result.returncode == 0, result.stderr
    assert f"cluster {NAME}: ready after" in result.stdout
    assert "critical path: " + " → ".join(path) in result.stdout
    text = " ".join(ET.fromstring(svg.read_text()).itertext())
    assert all(label in text for label in MACHINES)
    assert "<svg" in page.read_text()
    if example := os.environ.get("CLUSTERBUS_TIMELINE_EXAMPLE"):
        shutil.copyfile(svg, example)

    unknown = await timeline_cli(deployment, "nobody")
    assert unknown.returncode == 1 and "no cluster named nobody" in unknown.stderr
