"""The reconciler: every ``reconcile_interval_s`` send ``cluster.reconcile`` to each live cluster.

The state machine does the real work on that command (re-emit overdue tasks, time out machines
that never became ACTIVE); this loop only guarantees that a cluster waiting on a lost message
is looked at again. The tick goes through the commands exchange like any command, so it is
applied in order with everything else on the cluster's shard.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link

from engine.messages.envelope import Envelope, envelope_for
from engine.store import ClusterRow
from engine.transition_telemetry import link_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer("clusterbus.reconciler")

# Clusters in these states await nothing: no tick for them.
SETTLED_STATES = frozenset({"ready", "deleted", "failed"})


class ClusterLister(Protocol):
    async def list_clusters(self) -> list[ClusterRow]: ...


class CommandPublisher(Protocol):
    async def publish(self, envelope: Envelope, *, exchange: str | None) -> None: ...


class Reconciler:
    """Periodic ``cluster.reconcile`` ticks for every cluster that is still in motion."""

    def __init__(
        self,
        store: ClusterLister,
        bus: CommandPublisher,
        *,
        interval_s: float,
        source: str = "clusterbus/reconciler",
    ) -> None:
        self._store = store
        self._bus = bus
        self._interval_s = interval_s
        self._source = source

    async def tick(self) -> int:
        """Publish one reconcile command per unsettled cluster; returns how many were sent."""
        now = datetime.now(UTC)
        sent = 0
        for row in await self._store.list_clusters():
            if row.state in SETTLED_STATES:
                continue
            command = envelope_for(
                "cluster.reconcile", row.id, {"now": now.isoformat()}, source=self._source
            )
            # A new trace per tick (a creation's trace must not grow forever), linked to the
            # trace of the cluster's creation so the two can be navigated.
            with tracer.start_as_current_span(
                "reconcile", context=Context(), links=_links(row), attributes={"cluster.id": row.id}
            ):
                await self._bus.publish(command, exchange=None)
            sent += 1
        return sent

    async def run(self) -> None:
        """Tick forever; a failed tick is logged and the next one tries again."""
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                sent = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker or store may be briefly away; never stop ticking
                log.exception("reconcile tick failed")
                continue
            if sent:
                log.info("reconcile tick", extra={"clusters": sent})


def _links(row: ClusterRow) -> list[Link]:
    context = link_context(row.doc)
    span_context = trace.get_current_span(context).get_span_context() if context else None
    return [Link(span_context)] if span_context and span_context.is_valid else []
