"""Prometheus metrics of one clusterbus process, and the HTTP endpoint that serves them.

Counters and histograms are updated where things happen (bus, processor, handler runner, cloud
pool); the gauges of what the store holds (clusters and machines by state, outbox lag) are
refreshed by ``refresh_store_gauges`` on an interval, so every engine replica reports the same
numbers: take ``max`` of them in dashboards, not ``sum``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger(__name__)

TRANSITIONS = Counter(
    "clusterbus_transitions",
    "State machine transitions applied",
    ["kind", "from_state", "to_state"],
)
STALE_EVENTS = Counter(
    "clusterbus_stale_events_ignored",
    "Events ignored because they no longer applied (stale or duplicate)",
    ["kind", "trigger"],
)
HANDLER_DURATION = Histogram(
    "clusterbus_handler_duration_seconds",
    "Time one handler run took, by task type and outcome",
    ["task", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
OPENSTACK_CALLS = Counter(
    "clusterbus_openstack_calls",
    "OpenStack HTTP calls made by the handlers",
    ["service", "operation", "status"],
)
OPENSTACK_ERRORS = Counter(
    "clusterbus_openstack_errors",
    "OpenStack HTTP calls that failed (status >= 400, or no response)",
    ["service", "operation", "status"],
)
RETRIES = Counter(
    "clusterbus_retries",
    "Messages sent round a delay queue again",
    ["reason", "type"],
)
DEAD_LETTERED = Counter(
    "clusterbus_dead_lettered",
    "Messages copied to the dead-letter exchange, by reason class",
    ["reason"],
)
OUTBOX_UNSENT = Gauge("clusterbus_outbox_unsent", "Committed outbox rows not yet published")
OUTBOX_AGE = Gauge(
    "clusterbus_outbox_oldest_unsent_age_seconds", "Age of the oldest unpublished outbox row"
)
CLUSTERS = Gauge("clusterbus_clusters", "Clusters by state", ["state"])
MACHINES = Gauge("clusterbus_machines", "Machines by state", ["state"])
TIME_TO_READY = Histogram(
    "clusterbus_cluster_time_to_ready_seconds",
    "Time from cluster.create to the cluster's first ready state",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600),
)


StoreCounts = tuple[dict[str, int], dict[str, int], int, datetime | None]
"""(clusters by state, machines by state, unsent outbox rows, oldest unsent row's time)."""
CountsProbe = Callable[[], Awaitable[StoreCounts]]


async def refresh_store_gauges(
    counts: CountsProbe,
    now: datetime,
) -> None:
    """Set the store gauges from one ``Store.metric_counts()`` result."""
    clusters, machines, unsent, oldest = await counts()
    _set_by_state(CLUSTERS, clusters)
    _set_by_state(MACHINES, machines)
    OUTBOX_UNSENT.set(unsent)
    OUTBOX_AGE.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


def _set_by_state(gauge: Gauge, counts: dict[str, int]) -> None:
    gauge.clear()  # a state nobody is in any more must drop to nothing, not keep its last value
    for state, n in counts.items():
        gauge.labels(state=state).set(n)


async def store_gauges_loop(
    counts: CountsProbe,
    interval_s: float,
) -> None:
    """Refresh the store gauges forever (the engine cancels this task on shutdown)."""
    from engine.store.queries import utcnow

    while True:
        try:
            await refresh_store_gauges(counts, utcnow())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store may be briefly away; metrics never stop the engine
            log.warning("metrics refresh failed", extra={"error": str(exc)})
        await asyncio.sleep(interval_s)


class MetricsServer:
    """``GET /metrics`` in the Prometheus text format, on aiohttp (stoppable, unlike the
    prometheus-client thread server)."""

    def __init__(self, port: int, host: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY):
        self.port = port
        self.host = host
        self._registry = registry
        self._runner: web.AppRunner | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        log.info("metrics endpoint listening", extra={"host": self.host, "port": self.port})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
