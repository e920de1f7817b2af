"""The outbox relay: publishes committed outbox rows with confirms and marks them sent.

The engine publishes a batch's rows right after its commit (the fast path). The relay's sweep
catches what the fast path could not: rows left by a crash between commit and publish (swept at
start-up) or by a broker outage. A row may be published twice (fast path and sweep racing, or a
crash after publish and before ``mark_sent``); consumers de-duplicate by message id.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Sequence
from datetime import timedelta

from opentelemetry import trace

from engine.bus import Bus
from engine.bus.delivery import dead_letter_headers
from engine.bus.telemetry import tracing_enabled
from engine.store import OutboxMessage, Store

log = logging.getLogger(__name__)
_PAGE = 500


class OutboxRelay:
    """Publishes committed outbox rows: the engine's batches at once, leftovers by sweeping."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        *,
        sweep_interval_s: float = 2.0,
        grace: timedelta = timedelta(seconds=10),
        keep_sent: timedelta = timedelta(hours=1),
        keep_inbox: timedelta = timedelta(days=7),
        purge_interval_s: float = 600.0,
    ) -> None:
        self._store = store
        self._bus = bus
        self._interval = sweep_interval_s
        self._grace = grace
        self._keep_sent = keep_sent
        self._keep_inbox = keep_inbox
        self._purge_interval = purge_interval_s

    async def publish(self, messages: Sequence[OutboxMessage]) -> int:
        """Publish concurrently (each confirmed), then mark the published rows sent."""
        if not messages:
            return 0
        publish = self._publish_one if tracing_enabled() else self._publish_untraced
        results = await asyncio.gather(
            *(
                publish(m) if self._bus.knows_exchange(m.exchange) else self._park(m)
                for m in messages
            ),
            return_exceptions=True,
        )
        sent = [m.seq for m, r in zip(messages, results, strict=True) if r is None and m.seq]
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning(
                "outbox publish failed", extra={"failed": len(failed), "error": str(failed[0])}
            )
        if sent:
            try:
                await self._store.mark_sent(sent)
            except Exception as exc:  # published anyway; a later sweep may send a duplicate
                log.warning("outbox mark_sent failed", extra={"error": str(exc)})
        return len(sent)

    async def _publish_one(self, message: OutboxMessage) -> None:
        # No current span: the publish is parented on the context stored in the row's headers
        # (the transition that wrote it), also when a sweep sends it after a crash.
        with trace.use_span(trace.INVALID_SPAN, end_on_exit=False):
            await self._publish_untraced(message)

    def _publish_untraced(self, message: OutboxMessage) -> Awaitable[None]:
        """The row's headers travel as they are (the bus's coroutine: no wrapper to gather)."""
        return self._bus.publish_raw(
            message.exchange, message.routing_key, message.body, message.properties
        )

    async def _park(self, message: OutboxMessage) -> None:
        """A row for an exchange this topology does not have goes to the dead-letter exchange.

        Published as it is, the broker's 404 would close the publisher channel and, with other
        publishes in flight on it, the whole connection; and the sweep would retry it forever.
        (Rows written under another CLUSTERBUS_TOPOLOGY_PREFIX, say.) `clusterbus dlq` shows it.
        """
        reason = f"outbox row for an exchange this topology does not have: {message.exchange}"
        log.error("outbox row dead-lettered", extra={"seq": message.seq, "reason": reason})
        headers = {
            **(message.properties.get("headers") or {}),
            **dead_letter_headers(
                reason,
                "UnknownExchange",
                exchange=message.exchange,
                routing_key=message.routing_key,
                queue="outbox",
            ),
        }
        properties = {**message.properties, "headers": headers}
        await self._bus.publish_raw("dlx", message.routing_key, message.body, properties)

    async def sweep(self, *, older_than: timedelta | None = None) -> int:
        """Publish unsent rows (only those older than ``older_than``), oldest first."""
        total = 0
        while rows := await self._store.unsent_outbox(limit=_PAGE, older_than=older_than):
            sent = await self.publish(rows)
            total += sent
            if sent < len(rows) or len(rows) < _PAGE:
                break  # done, or the broker refuses: try again on the next sweep
        return total

    async def run(self) -> None:
        """Sweep forever (the engine cancels this task on shutdown).

        Rows younger than ``grace`` belong to the fast path, which is publishing them right
        now; sweeping them too would publish every message twice under load. Sent rows older
        than ``keep_sent`` are dropped every ``purge_interval_s``, or the table grows forever;
        so are inbox records older than ``keep_inbox`` (a redelivery after that long is not
        de-duplicated: keep it far beyond any broker redelivery or delay).
        """
        purged_at = -math.inf
        while True:
            try:
                await self.sweep(older_than=self._grace)
                if time.monotonic() - purged_at >= self._purge_interval:
                    purged_at = time.monotonic()
                    await self._store.purge_outbox(self._keep_sent)
                    await self._store.purge_inbox(self._keep_inbox)
            except Exception as exc:  # the store or broker may be briefly away: never stop
                log.warning("outbox sweep failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self._interval)
