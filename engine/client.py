"""Python client of a clusterbus deployment: send commands, read the store, follow notifications.

Example::

    import asyncio
    from engine.client import ClusterClient, ClusterFailed
    from engine.messages import ClusterSpec
    from engine.settings import load_settings

    async def main() -> None:
        async with ClusterClient(load_settings()) as client:
            await client.create_cluster(ClusterSpec(name="demo", cloud="clusterbus-sim"))
            try:
                snapshot = await client.wait_ready("demo", timeout=600)
            except ClusterFailed as failed:
                print("failed:", failed.reason)
            else:
                print(snapshot["endpoint"])
            async for note in client.watch("demo"):  # until you break out
                print(note["type"], note["to_state"])

    asyncio.run(main())

Commands are published with publisher confirms (and ``mandatory``), so a returned correlation id
means RabbitMQ has the command; the engine applies it asynchronously.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Collection
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from engine.bus import Bus
from engine.messages import (
    ClusterSpec,
    CreateCluster,
    DeleteCluster,
    Envelope,
    Message,
    RetryCluster,
    ScaleCluster,
    make,
)
from engine.settings import Settings
from engine.store import Store
from statemachines.model import ClusterAggregate

log = logging.getLogger(__name__)

SOURCE = "clusterbus-client"
KUBECONFIG_SECRET = "kubeconfig"  # = handlers.pki.KUBECONFIG_SECRET
RABBITMQ_HINT = "is RabbitMQ running? start it with: rabbitmq-server -detached"
Json = dict[str, Any]


class ClientError(Exception):
    """Something the user can fix; the message says what."""


class BrokerUnavailable(ClientError):
    """RabbitMQ does not answer."""


class ClusterFailed(ClientError):
    """The cluster reached ``failed`` while we waited."""

    def __init__(self, cluster_id: str, reason: str) -> None:
        super().__init__(f"cluster {cluster_id} failed: {reason}")
        self.cluster_id = cluster_id
        self.reason = reason


def notification_patterns(cluster_id: str) -> tuple[str, str]:
    """Routing patterns of every notification about one cluster."""
    return (f"cluster.state_changed.*.{cluster_id}", f"machine.state_changed.*.{cluster_id}")


class Notifications:
    """A private exclusive queue on P.notifications; bound before you read the store (no gap)."""

    def __init__(self, queue: AbstractQueue, channel: AbstractChannel) -> None:
        self._queue = queue
        self._channel = channel
        self._inbox: asyncio.Queue[Json] = asyncio.Queue()

    async def start(self) -> Notifications:
        # no_ack: the queue is private and dies with us; nothing to redeliver to anyone.
        await self._queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Envelope only, payload unvalidated: a watcher must survive a newer engine's extra
        # snapshot fields. Anything else unreadable is skipped (it is only a hint).
        try:
            envelope = Envelope.model_validate_json(message.body)
        except ValueError:
            log.warning("skipping an unreadable notification %s", message.message_id)
            return
        self._inbox.put_nowait(
            {"type": envelope.type, "time": envelope.time.isoformat(), **envelope.data}
        )

    def __aiter__(self) -> Notifications:
        return self

    async def __anext__(self) -> Json:
        return await self._inbox.get()

    async def next(self, within: float) -> Json:
        """The next notification; TimeoutError after ``within`` seconds."""
        return await asyncio.wait_for(self._inbox.get(), within)

    async def close(self) -> None:
        if not self._channel.is_closed:
            await self._channel.close()


class ClusterClient:
    """Commands over RabbitMQ, reads from the store; use ``async with``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._bus: Bus | None = None
        self._store: Store | None = None

    async def __aenter__(self) -> ClusterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._bus is not None:
            await self._bus.close()
            self._bus = None
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def bus(self) -> Bus:
        """The connected bus (topology declared), connecting on first use."""
        if self._bus is None:
            bus = Bus(self.settings, name="clusterbus-client")
            try:
                await asyncio.wait_for(bus.declare(), 10)
                await asyncio.wait_for(bus.connect(), 10)
            except (OSError, TimeoutError, aio_pika.exceptions.AMQPConnectionError) as error:
                await bus.close()
                raise BrokerUnavailable(
                    f"cannot reach RabbitMQ ({error}); {RABBITMQ_HINT}"
                ) from None
            self._bus = bus
        return self._bus

    async def store(self) -> Store:
        if self._store is None:
            self._store = await Store.open(self.settings.store_url)
        return self._store

    # -- commands ---------------------------------------------------------------------

    async def send(self, cluster_id: str, command: Message) -> str:
        """Publish one command (confirmed); returns its correlation id."""
        envelope = make(command, source=SOURCE, subject=cluster_id)
        await (await self.bus()).publish(envelope, exchange=None)
        return envelope.correlationid

    async def create_cluster(self, spec: ClusterSpec) -> str:
        return await self.send(spec.name, CreateCluster(spec=spec))

    async def delete_cluster(self, name: str) -> str:
        return await self.send(name, DeleteCluster())

    async def scale(
        self,
        name: str,
        workers: dict[str, int] | None = None,
        control_plane_replicas: int | None = None,
    ) -> str:
        command = ScaleCluster(workers=workers or {}, control_plane_replicas=control_plane_replicas)
        return await self.send(name, command)

    async def retry(self, name: str) -> str:
        return await self.send(name, RetryCluster())

    # -- reads ------------------------------------------------------------------------

    async def aggregate(self, name: str) -> ClusterAggregate | None:
        """The full aggregate (recorded IDs included; no secrets live in it)."""
        loaded = await (await self.store()).load(name)
        if loaded is None:
            return None
        row, machines = loaded
        rows = [(m.id, m.role, m.state, m.doc) for m in machines]
        return ClusterAggregate.from_rows(row.id, row.state, row.doc, rows)

    async def get(self, name: str) -> Json | None:
        """The cluster snapshot (state, conditions, machines, endpoint, timings), or None."""
        agg = await self.aggregate(name)
        return agg.snapshot() if agg is not None else None

    async def list(self) -> builtins.list[Json]:
        """One summary per cluster: id, state, endpoint, failure reason, timestamps."""
        summaries = []
        for row in await (await self.store()).list_clusters():
            snap = ClusterAggregate.from_rows(row.id, row.state, row.doc, []).snapshot()
            keep = ("cluster_id", "state", "endpoint", "failure_reason", "created_at", "updated_at")
            summaries.append({k: snap[k] for k in keep})
        return summaries

    async def history(self, name: str) -> builtins.list[Json]:
        entries = await (await self.store()).history(name)
        return [
            {"at": e.at.isoformat() if e.at else None, "machine_id": e.machine_id,
             "from": e.from_state, "to": e.to_state, "trigger": e.trigger, "ignored": e.ignored}
            for e in entries
        ]  # fmt: skip

    async def kubeconfig(self, name: str) -> bytes | None:
        """The decrypted admin kubeconfig, or None if the PKI is not there yet."""
        from engine.secrets import StoreSecrets

        secrets = StoreSecrets.from_settings(await self.store(), self.settings)
        return await secrets.get(name, KUBECONFIG_SECRET)

    # -- notifications ----------------------------------------------------------------

    async def subscribe(self, name: str) -> Notifications:
        """Bind a private queue to this cluster's notifications; ``close()`` it when done."""
        bus = await self.bus()
        channel = await bus.connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for pattern in notification_patterns(name):
            await queue.bind(bus.names.notifications, pattern)
        return await Notifications(queue, channel).start()

    async def watch(self, name: str) -> AsyncIterator[Json]:
        """Every notification about ``name`` from now on (cluster and machine state changes)."""
        notes = await self.subscribe(name)
        try:
            async for note in notes:
                yield note
        finally:
            await notes.close()

    async def wait_for(
        self,
        name: str,
        states: Collection[str],
        timeout: float,  # noqa: ASYNC109 (the public API takes a plain timeout)
        *,
        fail_on_failed: bool = True,
    ) -> Json:
        """The snapshot once the cluster is in one of ``states``; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        notes = await self.subscribe(name)
        try:
            snapshot = await self.get(name)
            while True:
                if snapshot is not None:
                    if snapshot["state"] in states:
                        return snapshot
                    if fail_on_failed and snapshot["state"] == "failed":
                        raise ClusterFailed(name, snapshot.get("failure_reason") or "unknown")
                left = deadline - time.monotonic()
                if left <= 0:
                    state = snapshot["state"] if snapshot else "absent"
                    raise TimeoutError(f"cluster {name} still {state} after {timeout}s")
                snapshot = await self._next_snapshot(notes, name, left)
        finally:
            await notes.close()

    async def _next_snapshot(self, notes: Notifications, name: str, left: float) -> Json | None:
        # The store is the truth; a notification only says "look again". Re-read at least
        # every few seconds in case a notification was published before we bound the queue.
        with contextlib.suppress(TimeoutError):
            note = await notes.next(min(left, 5.0))
            if note["type"] == "cluster.state_changed":
                snapshot: Json = note["snapshot"]
                return snapshot
        return await self.get(name)

    async def wait_ready(self, name: str, timeout: float = 1800.0) -> Json:  # noqa: ASYNC109
        """The snapshot once ready; raises ClusterFailed(reason) or TimeoutError."""
        return await self.wait_for(name, ("ready",), timeout)

    async def wait_deleted(self, name: str, timeout: float = 1800.0) -> Json | None:  # noqa: ASYNC109
        """Wait until the cluster is deleted (or its row is gone)."""
        deadline = time.monotonic() + timeout
        if await self.get(name) is None:
            return None
        return await self.wait_for(name, ("deleted",), max(0.0, deadline - time.monotonic()))
