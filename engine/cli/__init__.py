"""The ``clusterbus`` command line."""

from __future__ import annotations

import typer

from engine.cli import run as run_commands
from engine.cli import sim as sim_commands

app = typer.Typer(
    name="clusterbus",
    help="Event-driven Kubernetes clusters on OpenStack over RabbitMQ.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("run")(run_commands.run)
app.add_typer(sim_commands.app, name="sim")


def main() -> None:
    app()
