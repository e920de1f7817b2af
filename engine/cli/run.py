"""``clusterbus run``: the engine and/or the handlers in this process."""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum
from typing import Annotated

import aio_pika
import typer

from engine import logs
from engine.bus.errors import PluginMissing
from engine.settings import load_settings


class Role(StrEnum):
    ALL = "all"
    ENGINE = "engine"
    HANDLERS = "handlers"


def run(
    role: Annotated[Role, typer.Option(help="what this process runs")] = Role.ALL,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Run the engine (state machines, store, outbox relay) and/or the OpenStack handlers."""
    from engine.service import run_forever
    from engine.tracing import setup_tracing

    logs.configure(log_level)
    setup_tracing()
    settings = load_settings()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_forever(settings, role=str(role)))
    except PluginMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
        typer.echo(
            f"error: cannot reach RabbitMQ ({type(exc).__name__}: {exc}); start it with "
            "`rabbitmq-server -detached` or set CLUSTERBUS_AMQP_URL",
            err=True,
        )
        raise typer.Exit(2) from None
