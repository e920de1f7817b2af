"""The ``clusterbus`` command line."""

from __future__ import annotations

import typer

from engine.cli import cluster as cluster_commands
from engine.cli import demo as demo_commands
from engine.cli import dlq as dlq_commands
from engine.cli import events as events_commands
from engine.cli import run as run_commands
from engine.cli import sim as sim_commands
from engine.cli import timeline as timeline_commands

app = typer.Typer(
    name="clusterbus",
    help="Event-driven Kubernetes clusters on OpenStack over RabbitMQ.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("run")(run_commands.run)
app.command("demo")(demo_commands.demo)
app.add_typer(sim_commands.app, name="sim")
app.add_typer(cluster_commands.app, name="cluster")
cluster_commands.app.command("timeline")(timeline_commands.timeline)
app.add_typer(events_commands.app, name="events")
app.add_typer(dlq_commands.app, name="dlq")


def main() -> None:
    app()
