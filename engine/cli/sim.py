"""``clusterbus sim ...``: the embedded OpenStack simulator."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The embedded OpenStack cloud (simulator).", no_args_is_help=True)


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0 picks a free one)")] = 8774,
    host: Annotated[str, typer.Option(help="loopback address to listen on")] = "127.0.0.1",
    profile: Annotated[Path | None, typer.Option(help="YAML realism profile")] = None,
    state: Annotated[Path | None, typer.Option(help="keep the cloud's state in this file")] = None,
    clouds_yaml: Annotated[Path, typer.Option(help="clouds.yaml to write the entry into")] = Path(
        "clouds.yaml"
    ),
) -> None:
    """Serve Keystone, Nova, Neutron, Octavia and Glance on loopback until Ctrl-C."""
    from simulator.serve import check_loopback
    from simulator.serve import serve as serve_simulator

    try:
        check_loopback(host)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--host") from exc
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_simulator(host, port, profile, state, clouds_yaml))
