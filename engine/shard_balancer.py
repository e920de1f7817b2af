"""Spread the engine's shard queues over the live engine replicas with leases in the store.

Every ``lease_interval_s`` each replica heartbeats, computes its fair share
ceil(shards / live replicas), renews its leases and claims free or expired ones up to that
share, subscribes to the shards it newly owns, and gives back (cancel, then release) the
shards beyond its share so that waiting replicas can take them. A lease lasts three
intervals: a crashed replica's shards move after at most ttl + one interval.

Leases are the first guard against two replicas consuming one shard. The shard queues keep
``x-single-active-consumer`` as the second (two owners by accident still give one active
consumer) and the aggregates' optimistic versions are the third.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol

from engine.settings import Settings
from engine.store import Store
from engine.store.queries import utcnow

log = logging.getLogger(__name__)


class Subscription(Protocol):
    """What ``subscribe`` returns: engine.bus.Subscription, or a fake in tests."""

    async def cancel(self) -> None: ...


Subscribe = Callable[[int], Awaitable[Subscription]]
TTL_INTERVALS = 3
FORGET_AFTER = timedelta(days=1)


def new_member_id() -> str:
    """Unique per process start: a restarted replica must not inherit a dead one's leases."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class ShardBalancer:
    """Owns this replica's shard subscriptions; ``tick()`` once, or ``run()`` forever."""

    def __init__(
        self, store: Store, settings: Settings, subscribe: Subscribe, *, member_id: str = ""
    ) -> None:
        self.store = store
        self.member_id = member_id or new_member_id()
        self._shards = settings.shards
        self._interval = settings.lease_interval_s
        self._ttl = timedelta(seconds=settings.lease_interval_s * TTL_INTERVALS)
        self._subscribe = subscribe
        self._subscriptions: dict[int, Subscription] = {}
        self._renewed_at = time.monotonic()
        self._pruned = False

    @property
    def consuming(self) -> set[int]:
        """The shards this replica is subscribed to now."""
        return set(self._subscriptions)

    async def run(self) -> None:
        """Tick every interval until cancelled; a failed tick is logged and retried."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except Exception:
                log.exception("shard lease tick failed")
                await self._drop_if_stale()

    async def tick(self) -> None:
        """Heartbeat, claim the fair share, subscribe to new shards, give back the surplus."""
        now = utcnow()
        await self.store.heartbeat(self.member_id, now)
        if not self._pruned:
            # Crashed replicas leave rows behind; long-silent ones are only noise.
            await self.store.forget_members(now - FORGET_AFTER)
            self._pruned = True
        members = await self.store.live_members(now - self._ttl)
        fair = math.ceil(self._shards / max(1, len(members)))
        owned = await self.store.claim_shards(
            self.member_id, fair, now, self._ttl, shards=self._shards
        )
        self._renewed_at = time.monotonic()
        surplus = sorted(owned)[fair:]
        for shard in set(self._subscriptions) - owned:
            log.warning("shard lease lost, unsubscribing", extra={"shard": shard})
            await self._unsubscribe(shard)
        if surplus:
            # Stop consuming before releasing: the next owner must not overlap with us.
            for shard in surplus:
                await self._unsubscribe(shard)
            await self.store.release_shards(self.member_id, surplus)
            log.info("released shards beyond the fair share", extra={"shards": surplus})
        for shard in sorted(owned - set(surplus) - set(self._subscriptions)):
            await self._start(shard)

    async def stop(self) -> None:
        """Unsubscribe from everything, then hand the leases back at once."""
        for shard in list(self._subscriptions):
            await self._unsubscribe(shard)
        try:
            await self.store.leave(self.member_id)
        except Exception:
            # The leases expire by themselves; leaving only makes the handover faster.
            log.exception("could not release the shard leases on stop")

    async def _start(self, shard: int) -> None:
        try:
            self._subscriptions[shard] = await self._subscribe(shard)
        except Exception:
            # Still leased: the next tick retries.
            log.exception("could not subscribe to shard %d", shard)
            return
        log.info("consuming shard", extra={"shard": shard})

    async def _unsubscribe(self, shard: int) -> None:
        subscription = self._subscriptions.pop(shard)
        try:
            await subscription.cancel()
        except Exception:
            # A channel already lost with its connection: the broker dropped the consumer.
            log.exception("could not cancel the subscription of shard %d", shard)

    async def _drop_if_stale(self) -> None:
        """Without a renewal for a whole ttl our leases may be someone else's: stop consuming."""
        if time.monotonic() - self._renewed_at < self._ttl.total_seconds():
            return
        for shard in list(self._subscriptions):
            log.warning("shard lease expired unrenewed, unsubscribing", extra={"shard": shard})
            await self._unsubscribe(shard)
