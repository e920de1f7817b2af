"""``clusterbus events tail``: print what flows on an exchange, live."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from aio_pika.abc import AbstractIncomingMessage

from engine.cli.common import connect, console, run_plain
from engine.settings import load_settings

app = typer.Typer(help="Follow messages on the bus.", no_args_is_help=True)

EXCHANGES = ("notifications", "events", "tasks", "commands")


def describe(message: AbstractIncomingMessage) -> str:
    """One line: time, routing key and the interesting part of the payload (no snapshots)."""
    try:
        data = json.loads(message.body).get("data", {})
    except (ValueError, AttributeError):
        data = {}
    shown = {k: v for k, v in data.items() if k not in ("snapshot", "spec")} if data else {}
    stamp = message.timestamp.strftime("%H:%M:%S") if message.timestamp else "--:--:--"
    return f"{stamp} {message.routing_key} {json.dumps(shown, default=str)}"


@app.command("tail")
def tail(
    type_: Annotated[
        str, typer.Option("--type", "-t", help="routing pattern, e.g. 'cluster.*.ready.#'")
    ] = "#",
    exchange: Annotated[str, typer.Option(help=f"one of {', '.join(EXCHANGES)}")] = "notifications",
    count: Annotated[int, typer.Option(help="stop after this many messages (0: never)")] = 0,
) -> None:
    """Print messages as they are published (notifications by default) until Ctrl-C."""
    if exchange not in EXCHANGES:
        raise typer.BadParameter(f"choose one of {', '.join(EXCHANGES)}", param_hint="--exchange")
    settings = load_settings()

    async def main() -> None:
        conn = await connect(settings)
        async with conn:
            channel = await conn.channel()
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(f"{settings.topology_prefix}.{exchange}", type_)
            console.print(f"[dim]listening on {exchange} for {type_!r}[/]", highlight=False)
            seen = 0
            async with queue.iterator(no_ack=True) as messages:
                async for message in messages:
                    console.print(describe(message), highlight=False, markup=False)
                    seen += 1
                    if count and seen >= count:
                        return

    run_plain(main)
