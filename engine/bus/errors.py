"""Bus errors.

BusError
 ├── Unroutable      a mandatory publish was returned: no queue is bound for it
 ├── PublishNacked   the broker refused to take responsibility for a message
 └── PluginMissing   the broker lacks a plugin the topology needs
"""

from __future__ import annotations


class BusError(Exception):
    """Base class of every error raised by engine.bus."""


class Unroutable(BusError):
    """A mandatory message came back: nothing is bound for its exchange and routing key."""

    def __init__(self, exchange: str, routing_key: str) -> None:
        super().__init__(f"unroutable: no queue bound for {exchange!r} / {routing_key!r}")
        self.exchange = exchange
        self.routing_key = routing_key


class PublishNacked(BusError):
    """The broker answered basic.nack to a confirmed publish."""


class PluginMissing(BusError):
    """An exchange type is unknown to the broker because its plugin is not enabled."""

    def __init__(self, exchange_type: str, plugin: str) -> None:
        super().__init__(
            f"RabbitMQ does not know exchange type {exchange_type!r}: enable its plugin with "
            f"`rabbitmq-plugins enable {plugin}`"
        )
        self.exchange_type = exchange_type
        self.plugin = plugin
