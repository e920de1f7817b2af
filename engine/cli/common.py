"""What every client-side command shares: settings, running a coroutine, clear errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aio_pika
import typer
from rich.console import Console

from engine.client import RABBITMQ_HINT, ClientError, ClusterClient
from engine.settings import Settings, load_settings

T = TypeVar("T")

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` in red on stderr; ``raise`` the returned Exit."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def run(fn: Callable[[ClusterClient], Awaitable[T]]) -> T:
    """Run ``fn`` with a client for the configured deployment; user errors exit non-zero."""

    async def main() -> T:
        async with ClusterClient(load_settings()) as client:
            return await fn(client)

    return run_plain(main)


def run_plain(fn: Callable[[], Awaitable[T]]) -> T:
    """asyncio.run with the broker and client errors turned into one clear line."""
    # aiormq logs a traceback-ish line per failed connect; our own message says it better.
    logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(_awaited(fn))
    except ClientError as error:
        raise fail(str(error)) from None
    except (OSError, aio_pika.exceptions.AMQPConnectionError) as error:
        raise fail(f"cannot reach RabbitMQ ({error}); {RABBITMQ_HINT}") from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def _awaited(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


async def connect(settings: Settings) -> aio_pika.abc.AbstractConnection:
    """A plain (not robust) connection: a CLI should fail fast, not retry forever."""
    try:
        return await asyncio.wait_for(
            aio_pika.connect(settings.amqp_url.get_secret_value()), timeout=10
        )
    except (OSError, TimeoutError, aio_pika.exceptions.AMQPConnectionError) as error:
        raise ClientError(f"cannot reach RabbitMQ ({error}); {RABBITMQ_HINT}") from None
