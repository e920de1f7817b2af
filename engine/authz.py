"""Who may send commands: the AMQP ``user_id`` property vs Settings.command_publishers.

RabbitMQ rejects a publish whose ``user_id`` differs from the connection's user, so the property
is a trustworthy identity of the producer. The engine's own user is always allowed: it publishes
commands itself (reconciler, CLI) and re-publishes commands it has already authorized (re-route to
a shard, retry through a delay queue), and those copies carry its user.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from engine.messages.envelope import Envelope
from engine.messages.errors import Unauthorized
from engine.messages.registry import KINDS
from engine.settings import Settings

if TYPE_CHECKING:  # engine.bus imports this module for amqp_user
    from engine.bus.delivery import Decoder

ANY_COMMAND = "*"
DEFAULT_AMQP_USER = "guest"  # what RabbitMQ clients use when the URL names nobody


def amqp_user(url: str) -> str:
    """The user name of an AMQP URL (the broker's default when it has none)."""
    name = urlsplit(url).username
    return unquote(name) if name else DEFAULT_AMQP_USER


class CommandPolicy:
    """Command type -> allowed RabbitMQ users; ``*`` applies to every command type."""

    def __init__(self, publishers: Mapping[str, list[str]], engine_user: str) -> None:
        self._publishers = {type_: frozenset(users) for type_, users in publishers.items()}
        self._engine_user = engine_user

    @classmethod
    def from_settings(cls, settings: Settings) -> CommandPolicy:
        return cls(settings.command_publishers, amqp_user(settings.amqp_url.get_secret_value()))

    def allowed(self, type_: str) -> frozenset[str]:
        """The users that may send ``type_`` (the engine's own user included)."""
        users = self._publishers.get(type_, frozenset()) | self._publishers.get(
            ANY_COMMAND, frozenset()
        )
        return users | {self._engine_user}

    def check(self, envelope: Envelope, user_id: str | None) -> None:
        """Raise Unauthorized unless ``user_id`` may send this envelope (commands only)."""
        if KINDS.get(envelope.type) != "command":
            return
        if not user_id:
            raise Unauthorized(f"{envelope.type}: the AMQP user_id property is required")
        if user_id not in self.allowed(envelope.type):
            # The user name is an identity, not a secret: operators need it to fix the config.
            raise Unauthorized(f"{envelope.type}: user {user_id[:64]!r} may not send it")


def authorizing_decoder(decoder: Decoder, policy: CommandPolicy) -> Decoder:
    """``decoder`` followed by the command check (for the engine's shard queues)."""

    def decode(body: bytes, properties: dict[str, Any]) -> Envelope:
        envelope = decoder(body, properties)
        user_id = properties.get("user_id")
        policy.check(envelope, user_id if isinstance(user_id, str) else None)
        return envelope

    return decode
