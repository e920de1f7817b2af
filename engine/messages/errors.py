"""Why a message cannot be processed; the bus dead-letters it with ``reason``.

Hierarchy::

    MessageError            .reason: short, human readable, never echoes payload values
    ├── Malformed           not JSON, not a CloudEvent, broken envelope attributes
    ├── TooLarge            body over the size limit
    ├── UnknownMessageType  a well-formed envelope whose type is not in the catalog
    ├── InvalidPayload      ``data`` does not validate against the type's model
    └── Unauthorized        a producer not allowed to send this kind of message
"""

from __future__ import annotations


class MessageError(Exception):
    """A message that can never be processed (poison): dead-letter it, never requeue it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Malformed(MessageError):
    """The body is not JSON, not a CloudEvent, or its envelope attributes are invalid."""


class TooLarge(MessageError):
    """The body is larger than the configured limit."""


class UnknownMessageType(MessageError):
    """The envelope's type is not in the message catalog."""


class InvalidPayload(MessageError):
    """The envelope's data does not validate against the model of its type."""


class Unauthorized(MessageError):
    """The producer may not send this message."""
