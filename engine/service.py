"""Wiring of one clusterbus process: the engine role, the handlers role, or both."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from datetime import timedelta

from engine.authz import CommandPolicy, authorizing_decoder
from engine.bus import Bus, default_decoder
from engine.bus.bus import Subscription
from engine.bus.delivery import Delivery
from engine.metrics import MetricsServer, store_gauges_loop
from engine.processor import Decider, Processor
from engine.reconciler import Reconciler
from engine.relay import OutboxRelay
from engine.runtime import tune_gc
from engine.settings import Settings
from engine.shard_balancer import ShardBalancer
from engine.store import Store
from statemachines import handle

log = logging.getLogger(__name__)

# Tests only: make the engine exit abruptly "before-commit" or "after-commit" of its first batch.
CRASH_POINT_ENV = "CLUSTERBUS_TEST_CRASH_POINT"
CRASH_EXIT_CODE = 86


class EngineService:
    """Consumes the shard queues in batches and applies them through the Processor."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        store: Store,
        *,
        max_batch: int = 64,
        decide: Decider = handle,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.store = store
        self.processor = Processor(
            store, decide, source=f"{settings.source}/engine", exchange_prefix=bus.names.prefix
        )
        self.relay = OutboxRelay(
            store, bus, keep_inbox=timedelta(hours=settings.inbox_retention_hours)
        )
        self._max_batch = max_batch
        self._tasks: list[asyncio.Task[None]] = []
        self._crash_point = os.environ.get(CRASH_POINT_ENV)
        self.balancer: ShardBalancer | None = None

    async def start(self) -> None:
        # Anything committed but not published before a crash goes out first.
        swept = await self.relay.sweep()
        if swept:
            log.info("published outbox rows left from a previous run", extra={"count": swept})
        decoder = authorizing_decoder(
            default_decoder(self.settings), CommandPolicy.from_settings(self.settings)
        )

        async def subscribe(shard: int) -> Subscription:
            return await self.bus.consume_batches(
                self.bus.names.shard(shard),
                self.on_batch,
                max_batch=self._max_batch,
                max_wait_ms=5,
                prefetch=self.settings.prefetch,
                decoder=decoder,
            )

        if self.settings.shard_leases:
            self.balancer = ShardBalancer(self.store, self.settings, subscribe)
            await self.balancer.tick()  # a lone replica consumes every shard on return
            self._tasks.append(asyncio.create_task(self.balancer.run(), name="shard-leases"))
        else:
            for k in range(self.settings.shards):
                await subscribe(k)
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-sweep"))
        reconciler = Reconciler(
            self.store,
            self.bus,
            interval_s=self.settings.reconcile_interval_s,
            source=f"{self.settings.source}/reconciler",
        )
        self._tasks.append(asyncio.create_task(reconciler.run(), name="reconciler"))
        gauges = store_gauges_loop(self.store.metric_counts, self.settings.metrics_refresh_s)
        self._tasks.append(asyncio.create_task(gauges, name="metrics-gauges"))

    async def on_batch(self, deliveries: list[Delivery]) -> None:
        self._maybe_crash("before-commit")
        result = await self.processor.process(
            [d.envelope for d in deliveries], [d.trace_context for d in deliveries]
        )
        self._maybe_crash("after-commit")
        for rejected in result.rejected:
            delivery = next(d for d in deliveries if d.envelope is rejected.envelope)
            await self.bus.dead_letter(delivery, rejected.reason, error="NotApplicable")
        # Committed: publish with confirms, then the bus acks the batch. A crash in between
        # leaves the rows unsent for the relay's sweep at the next start.
        await self.relay.publish(result.outbox)

    def _maybe_crash(self, point: str) -> None:
        """Fault injection for the crash tests: die like SIGKILL at a named point."""
        if self._crash_point == point:
            log.warning("crash point reached, exiting", extra={"point": point})
            os._exit(CRASH_EXIT_CODE)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.balancer is not None:
            await self.balancer.stop()


async def run_forever(settings: Settings, *, role: str = "all") -> None:
    """Run until SIGINT/SIGTERM; ``role`` is all, engine or handlers."""
    bus = Bus(settings, name=f"clusterbus-{role}")
    await bus.declare()
    await bus.connect()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    store = await Store.open(settings.store_url)
    services: list[EngineService] = []
    metrics = MetricsServer(settings.metrics_port, settings.metrics_host)
    try:
        if settings.metrics_port:
            await metrics.start()
        if role in ("all", "engine"):
            engine = EngineService(settings, bus, store)
            await engine.start()
            services.append(engine)
        if role in ("all", "handlers"):
            from engine.handler_service import start_handlers

            await start_handlers(settings, bus, store)
        tune_gc()
        log.info("clusterbus running", extra={"role": role, "shards": settings.shards})
        await stop.wait()
    finally:
        for service in services:
            await service.stop()
        await metrics.stop()
        await bus.close()
        await store.close()
