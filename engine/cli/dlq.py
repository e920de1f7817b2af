"""``clusterbus dlq list|replay``: inspect and re-send dead letters without losing any.

Messages are taken with basic.get and kept unacknowledged while we look; whatever we do not
replay is returned with basic.nack(requeue=True), so a crash of the CLI loses nothing either
(the broker requeues unacked messages when the channel closes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import aio_pika
import typer
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from engine.authz import amqp_user
from engine.bus.delivery import (
    H_ERROR,
    H_ORIGINAL_EXCHANGE,
    H_ORIGINAL_ROUTING_KEY,
    H_QUEUE,
    H_REASON,
)
from engine.cli.common import connect, console, fail, run_plain
from engine.client import ClientError
from engine.settings import Settings, load_settings

app = typer.Typer(help="The dead-letter queue (P.dead-letter).", no_args_is_help=True)

# Headers that describe the dead-lettering, not the message: dropped on replay.
_DEATH_HEADERS = (
    H_REASON,
    H_ERROR,
    H_ORIGINAL_EXCHANGE,
    H_ORIGINAL_ROUTING_KEY,
    H_QUEUE,
    "x-death",
)
MAX_MESSAGES = 10_000


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class DeadLetter:
    message: AbstractIncomingMessage

    @property
    def id(self) -> str:
        return self.message.message_id or f"#{self.message.delivery_tag}"

    def header(self, name: str) -> str:
        return _text((self.message.headers or {}).get(name) or "")

    def origin(self) -> tuple[str, str] | None:
        """(exchange, routing key) it was first published to: our headers, else x-death."""
        exchange = self.header(H_ORIGINAL_EXCHANGE)
        if exchange:
            return exchange, self.header(H_ORIGINAL_ROUTING_KEY) or self.message.routing_key or ""
        deaths = (self.message.headers or {}).get("x-death")
        if isinstance(deaths, list) and deaths and isinstance(deaths[-1], dict):
            first: dict[str, Any] = deaths[-1]  # the oldest death is last
            keys = first.get("routing-keys") or [self.message.routing_key or ""]
            return _text(first.get("exchange", "")), _text(keys[0])
        return None

    def reason(self) -> str:
        reason = self.header(H_REASON)
        deaths = (self.message.headers or {}).get("x-death")
        if not reason and isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
            death: dict[str, Any] = deaths[0]
            reason = f"{_text(death.get('reason'))} from {_text(death.get('queue'))}"
        return reason

    def summary(self) -> dict[str, str]:
        origin = self.origin()
        return {
            "id": self.id,
            "type": self.message.type or "",
            "error": self.header(H_ERROR),
            "reason": self.reason(),
            "origin": f"{origin[0]} / {origin[1]}" if origin else "unknown",
        }


async def take_all(channel: AbstractChannel, queue_name: str) -> list[DeadLetter]:
    """Every message of the queue, unacked (they stay ours until acked or nacked)."""
    queue = await channel.get_queue(queue_name, ensure=True)
    taken: list[DeadLetter] = []
    while len(taken) < MAX_MESSAGES:
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        taken.append(DeadLetter(message))
    return taken


async def republish(channel: AbstractChannel, letter: DeadLetter, user: str) -> None:
    """Publish a copy to where it came from (confirmed, mandatory), then ack the dead letter.

    The copy carries the replaying user as AMQP ``user_id``: RabbitMQ refuses any other, and
    the engine authorizes commands by it (whoever replays vouches for the message).
    """
    origin = letter.origin()
    if origin is None:
        raise ClientError(f"{letter.id}: no original exchange recorded; cannot replay")
    m = letter.message
    headers = {k: v for k, v in (m.headers or {}).items() if k not in _DEATH_HEADERS}
    copy = aio_pika.Message(
        m.body,
        headers=headers,
        content_type=m.content_type,
        message_id=m.message_id,
        correlation_id=m.correlation_id,
        type=m.type,
        app_id=m.app_id,
        user_id=user,
        timestamp=m.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    exchange = await channel.get_exchange(origin[0], ensure=False)
    await exchange.publish(copy, origin[1], mandatory=True)
    await m.ack()


async def _with_letters(settings: Settings, action: str, target: str | None) -> int:
    """List (action "list") or replay ``target`` (None: all); returns how many were touched."""
    conn = await connect(settings)
    async with conn:
        channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
        letters = await take_all(channel, f"{settings.topology_prefix}.dead-letter")
        done = 0
        try:
            for letter in letters:
                if action == "list":
                    _print(letter)
                    done += 1
                elif target is None or letter.id == target:
                    await republish(
                        channel, letter, amqp_user(settings.amqp_url.get_secret_value())
                    )
                    console.print(f"replayed {letter.id} to {letter.summary()['origin']}")
                    done += 1
        finally:
            for letter in letters:
                if not letter.message.processed:
                    await letter.message.nack(requeue=True)
        return done


def _print(letter: DeadLetter) -> None:
    console.print(json.dumps(letter.summary()), highlight=False, markup=False)


@app.command("list")
def list_() -> None:
    """Show every dead letter (id, type, error, reason, origin); they stay in the queue."""
    count = run_plain(lambda: _with_letters(load_settings(), "list", None))
    console.print(f"[dim]{count} dead letter(s)[/]")


@app.command("replay")
def replay(
    message_id: Annotated[str | None, typer.Argument(help="the message id to replay")] = None,
    all_: Annotated[bool, typer.Option("--all", help="replay every dead letter")] = False,
) -> None:
    """Re-publish dead letters to their original exchange and routing key."""
    if (message_id is None) == (not all_):
        raise fail("give a message ID or --all (not both)", code=2)
    count = run_plain(lambda: _with_letters(load_settings(), "replay", message_id))
    if message_id is not None and count == 0:
        raise fail(f"no dead letter with id {message_id}")
    console.print(f"{count} message(s) replayed")
