"""``clusterbus demo``: two clusters on the embedded cloud, live."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from engine import logs


def demo(
    time_scale: Annotated[
        float, typer.Option(help="simulated cloud time factor (0.1: a 60 s boot takes 6 s)")
    ] = 0.1,
    workdir: Annotated[Path, typer.Option(help="where the demo writes its files")] = Path("."),
) -> None:
    """Start the simulator, the engine and the handlers; create two clusters; Ctrl-C cleans up."""
    from engine.bus.errors import PluginMissing
    from engine.demo import BrokerDown, demo_settings, run_demo

    console = Console()
    logs.configure("warning")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        code = asyncio.run(
            run_demo(demo_settings(workdir), workdir, time_scale=time_scale, console=console)
        )
    except (BrokerDown, PluginMissing) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    raise typer.Exit(code)
