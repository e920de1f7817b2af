"""The RabbitMQ topology as one declarative table, built from Settings.

Every name starts with ``Settings.topology_prefix`` (P)::

    P.commands  P.events  P.tasks  P.notifications     topic, routing key = message type
    P.dlx (topic) ──#──▶ P.dead-letter                  poison and exhausted messages
    P.commands ─#─┐
    P.events  ─#─┴▶ P.engine (x-consistent-hash on header ce-subject) ─▶ P.engine.shard.<k>
    P.tasks ─pki.*──────────────────────▶ P.handlers.pki            (and so on, see HANDLER_ROUTES)
    P.delay (headers) ─{x-delay-target, x-delay-ms}─▶ P.delay.<target>.<ms>
                         ──TTL, dead-letter──▶ P.<target> with the original routing key

The delay bindings use ``x-match: all-with-x`` (RabbitMQ >= 3.10): a headers exchange leaves
``x-*`` headers out of plain ``all`` matching, which would copy each delayed message into every
delay queue (measured).

The consistent-hash exchange routes a message that lacks the ``ce-subject`` header (or has it
empty) to one fixed shard: the hash of "no value" (measured on RabbitMQ 3.10.8; nothing is
dropped). Our publishers always set the header; the consumer of a shard queue re-routes a message
that arrives without it (see engine.bus.consumer), so foreign producers cannot break the
one-cluster-one-shard rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel

from engine.bus.errors import PluginMissing
from engine.settings import QueueType, Settings

DelayTarget = Literal["tasks", "events"]
DELAY_TARGETS: tuple[DelayTarget, ...] = ("tasks", "events")

HASH_HEADER = "ce-subject"
CONSISTENT_HASH = "x-consistent-hash"
# Exchange types that come from a plugin, and the plugin to enable for each.
PLUGIN_OF_TYPE = {CONSISTENT_HASH: "rabbitmq_consistent_hash_exchange"}

# handler work queue suffix -> task routing patterns it takes from P.tasks
HANDLER_ROUTES: Mapping[str, tuple[str, ...]] = {
    "pki": ("pki.*",),
    "network": ("network.*", "floatingip.*"),
    "security_groups": ("security_groups.*",),
    "loadbalancer": ("loadbalancer.*", "member.*"),
    "compute": ("server.*",),
}


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    name: str
    type: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BindingSpec:
    """``source`` exchange routes ``routing_key`` (and header ``arguments``) to ``destination``."""

    source: str
    destination: str
    routing_key: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    to_exchange: bool = False


@dataclass(frozen=True, slots=True)
class Names:
    """Every exchange and queue name, derived from one prefix."""

    prefix: str

    def _n(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    @property
    def commands(self) -> str:
        return self._n("commands")

    @property
    def events(self) -> str:
        return self._n("events")

    @property
    def tasks(self) -> str:
        return self._n("tasks")

    @property
    def notifications(self) -> str:
        return self._n("notifications")

    @property
    def dlx(self) -> str:
        return self._n("dlx")

    @property
    def dead_letter(self) -> str:
        return self._n("dead-letter")

    @property
    def engine(self) -> str:
        return self._n("engine")

    @property
    def delay(self) -> str:
        return self._n("delay")

    def shard(self, k: int) -> str:
        return self._n(f"engine.shard.{k}")

    def handler(self, part: str) -> str:
        return self._n(f"handlers.{part}")

    def handler_queues(self) -> list[str]:
        """Every handler work queue (one per OpenStack service area)."""
        return [self.handler(part) for part in HANDLER_ROUTES]

    def delay_queue(self, target: DelayTarget, ms: int) -> str:
        return self._n(f"delay.{target}.{ms}")

    def exchange(self, kind: str) -> str:
        """Full exchange name of a kind ("commands", "tasks", ...); full names pass through."""
        return kind if kind.startswith(self.prefix + ".") else self._n(kind)


@dataclass(frozen=True, slots=True)
class Topology:
    names: Names
    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[QueueSpec, ...]
    bindings: tuple[BindingSpec, ...]
    shard_queues: frozenset[str]
    delay_levels_ms: tuple[int, ...]


def _work_queue_args(settings: Settings, dlx: str) -> dict[str, Any]:
    args: dict[str, Any] = {
        "x-queue-type": settings.queue_type.value,
        "x-dead-letter-exchange": dlx,
    }
    if settings.queue_type is QueueType.QUORUM:
        # RabbitMQ 3.10 sets no default: without it a crashing consumer loops forever.
        args["x-delivery-limit"] = settings.delivery_limit
    return args


def _delay_queue_args(settings: Settings, target_exchange: str, ms: int) -> dict[str, Any]:
    # No x-dead-letter-routing-key: the expired message keeps its routing key (= message type).
    args: dict[str, Any] = {
        "x-queue-type": settings.queue_type.value,
        "x-message-ttl": ms,
        "x-dead-letter-exchange": target_exchange,
    }
    if settings.queue_type is QueueType.QUORUM:
        # Quorum dead-lettering is at-most-once unless asked otherwise.
        args["x-dead-letter-strategy"] = "at-least-once"
        args["x-overflow"] = "reject-publish"
    return args


def build_topology(settings: Settings) -> Topology:
    """The whole topology for these settings."""
    n = Names(settings.topology_prefix)
    levels = tuple(sorted(set(settings.delay_levels_ms)))
    exchanges = [
        ExchangeSpec(n.commands, "topic"),
        ExchangeSpec(n.events, "topic"),
        ExchangeSpec(n.tasks, "topic"),
        ExchangeSpec(n.notifications, "topic"),
        ExchangeSpec(n.dlx, "topic"),
        ExchangeSpec(n.engine, CONSISTENT_HASH, {"hash-header": HASH_HEADER}),
        ExchangeSpec(n.delay, "headers"),
    ]
    work_args = _work_queue_args(settings, n.dlx)
    dl_args = {"x-queue-type": settings.queue_type.value}
    queues = [QueueSpec(n.dead_letter, dl_args)]
    bindings = [
        BindingSpec(n.dlx, n.dead_letter, "#"),
        BindingSpec(n.commands, n.engine, "#", to_exchange=True),
        BindingSpec(n.events, n.engine, "#", to_exchange=True),
    ]
    shards = [n.shard(k) for k in range(settings.shards)]
    for name in shards:
        queues.append(QueueSpec(name, {**work_args, "x-single-active-consumer": True}))
        bindings.append(BindingSpec(n.engine, name, "1"))  # weight 1: equal share of the ring
    for part, patterns in HANDLER_ROUTES.items():
        queues.append(QueueSpec(n.handler(part), work_args))
        bindings.extend(BindingSpec(n.tasks, n.handler(part), p) for p in patterns)
    for target in DELAY_TARGETS:
        for ms in levels:
            name = n.delay_queue(target, ms)
            queues.append(QueueSpec(name, _delay_queue_args(settings, n.exchange(target), ms)))
            # "all" ignores headers named x-*: every binding would match every message.
            match = {"x-match": "all-with-x", "x-delay-target": target, "x-delay-ms": str(ms)}
            bindings.append(BindingSpec(n.delay, name, "", match))
    return Topology(n, tuple(exchanges), tuple(queues), tuple(bindings), frozenset(shards), levels)


async def declare(channel: AbstractChannel, topology: Topology) -> None:
    """Declare every exchange, queue and binding; safe to run any number of times."""
    exchanges = {}
    for spec in topology.exchanges:
        exchanges[spec.name] = await _declare_exchange(channel, spec)
    queues = {}
    for q in topology.queues:
        queues[q.name] = await channel.declare_queue(
            q.name, durable=True, arguments=dict(q.arguments)
        )
    for b in topology.bindings:
        source = exchanges[b.source]
        args = dict(b.arguments) or None
        if b.to_exchange:
            await exchanges[b.destination].bind(source, b.routing_key, arguments=args)
        else:
            await queues[b.destination].bind(source, b.routing_key, arguments=args)


async def _declare_exchange(
    channel: AbstractChannel, spec: ExchangeSpec
) -> aio_pika.abc.AbstractExchange:
    try:
        return await channel.declare_exchange(
            spec.name, spec.type, durable=True, arguments=dict(spec.arguments) or None
        )
    except aiormq.exceptions.AMQPError as exc:
        # RabbitMQ closes the whole connection with 503 "unknown exchange type '<type>'".
        if "unknown exchange type" in str(exc):
            plugin = PLUGIN_OF_TYPE.get(spec.type, f"<the plugin providing {spec.type}>")
            raise PluginMissing(spec.type, plugin) from exc
        raise


async def delete(channel: AbstractChannel, topology: Topology) -> None:
    """Delete every queue and exchange of the topology (tests, uninstall)."""
    for q in topology.queues:
        await channel.queue_delete(q.name)
    for spec in reversed(topology.exchanges):
        await channel.exchange_delete(spec.name)
