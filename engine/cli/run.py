"""``clusterbus run``: the engine and/or the handlers in this process."""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum
from typing import Annotated

import typer

from engine import logs
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
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_forever(settings, role=str(role)))
