"""clusterbus: engine/bus — RabbitMQ topology, publishing and consuming with one ack policy."""

from engine.bus.bus import Bus, Subscription, default_decoder
from engine.bus.delivery import Decoder, Delivery, RawMessage
from engine.bus.errors import BusError, PluginMissing, PublishNacked, Unroutable
from engine.bus.topology import Names, Topology, build_topology, declare

__all__ = [
    "Bus",
    "BusError",
    "Decoder",
    "Delivery",
    "Names",
    "PluginMissing",
    "PublishNacked",
    "RawMessage",
    "Subscription",
    "Topology",
    "Unroutable",
    "build_topology",
    "declare",
    "default_decoder",
]
