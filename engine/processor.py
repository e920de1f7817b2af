"""The engine's unit of work: a batch of messages in, one store transaction out.

Per message: skip it if the inbox has seen it, load the aggregate (or take the one this batch
already advanced), let the pure state machines decide, and turn the decision into a ``Step``:
new state rows, the inbox row, outbox rows (tasks + notifications) and history rows. The whole
batch is committed in one transaction; only then does the caller ack and publish the outbox.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from opentelemetry.context import Context

from engine import transition_telemetry as telemetry
from engine.messages.envelope import Envelope
from engine.messages.errors import MessageError
from engine.messages.registry import parse
from engine.outcome_rows import OutboxWriter, history_rows
from engine.store import ClusterRow, MachineRow, OutboxMessage, Step, VersionConflict
from statemachines import ClusterAggregate, Outcome

log = logging.getLogger(__name__)
Decider = Callable[..., tuple[ClusterAggregate | None, Outcome]]


class StoreLike(Protocol):
    async def apply(self, steps: list[Step]) -> list[bool]: ...
    async def load_many(
        self, cluster_ids: Sequence[str]
    ) -> dict[str, tuple[ClusterRow, list[MachineRow]]]: ...


@dataclass
class Loaded:
    """An aggregate as this batch knows it, with the row versions the store must still match."""

    aggregate: ClusterAggregate | None
    cluster_version: int = 0
    machine_versions: dict[str, int] = field(default_factory=dict)
    machine_docs: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    traceparent: str | None = None  # the trace of the cluster's creation (kept in its doc)


@dataclass
class Rejected:
    envelope: Envelope
    reason: str


@dataclass
class BatchResult:
    outbox: list[OutboxMessage]
    rejected: list[Rejected]
    applied: int
    duplicates: int


class _DeciderFailed(Exception):
    """The decider raised on a message of a batch: redo the batch one message at a time."""


class Processor:
    """Turns envelopes into committed steps; one instance per engine process."""

    def __init__(
        self,
        store: StoreLike,
        decide: Decider,
        *,
        consumer: str = "engine",
        source: str = "clusterbus/engine",
        exchange_prefix: str = "clusterbus",
        cache_size: int = 10_000,
    ) -> None:
        self._store = store
        self._decide = decide
        self._consumer = consumer
        self._writer = OutboxWriter(source, exchange_prefix)
        self._cache: OrderedDict[str, Loaded] = OrderedDict()
        self._cache_size = cache_size

    async def process(
        self, batch: Sequence[Envelope], contexts: Sequence[Context | None] | None = None
    ) -> BatchResult:
        """Decide and commit a batch; falls back to one message per transaction on a conflict.

        ``contexts``: per envelope, the trace context to work under (its delivery's span).
        """
        traced = list(contexts) if contexts is not None else [None] * len(batch)
        try:
            return await self._process(batch, traced)
        except (VersionConflict, _DeciderFailed):
            # Another replica wrote one of these aggregates (shard hand-over), or one message
            # broke the decider: redo serially, each message against freshly loaded state.
            results = [
                await self._process([envelope], [context])
                for envelope, context in zip(batch, traced, strict=True)
            ]
            return BatchResult(
                outbox=[m for r in results for m in r.outbox],
                rejected=[x for r in results for x in r.rejected],
                applied=sum(r.applied for r in results),
                duplicates=sum(r.duplicates for r in results),
            )

    async def _process(
        self, batch: Sequence[Envelope], contexts: Sequence[Context | None]
    ) -> BatchResult:
        # A message the inbox already holds comes back from apply() as False; if a later message
        # of the same batch built on it, its version check fails and process() redoes the batch
        # one message at a time. Redeliveries are rare, so no extra inbox query per batch.
        seen: set[str] = set()
        loaded = await self._take_aggregates({envelope.subject for envelope in batch})
        steps: list[Step] = []
        decided: list[tuple[Envelope, Outcome, ClusterAggregate | None]] = []
        rejected: list[Rejected] = []
        duplicates = 0
        for envelope, context in zip(batch, contexts, strict=True):
            if envelope.id in seen:
                duplicates += 1
                continue
            seen.add(envelope.id)
            state = (
                loaded.get(envelope.subject)
                or (await self._load({envelope.subject}))[envelope.subject]
            )
            with telemetry.apply_span(envelope, context) as trace_context:
                try:
                    aggregate, outcome = self._decide(
                        state.aggregate, envelope.type, normalized(envelope), now=datetime.now(UTC)
                    )
                except (ValueError, MessageError) as exc:
                    # The decider may have changed the aggregate before it gave up: neither
                    # cache it nor build on it (a later message of the batch reloads it).
                    loaded.pop(envelope.subject, None)
                    rejected.append(Rejected(envelope, f"not applicable: {exc}"))
                    continue
                except Exception as exc:
                    # The machines are pure, so a retry fails again; failing the batch would
                    # send every other message of it round the retry loop with this one until
                    # all are dead-lettered. Alone in its batch (its aggregate may be half
                    # mutated, nothing else built on it) it is rejected.
                    if len(batch) > 1:
                        raise _DeciderFailed from exc
                    log.exception("decider failed", extra={"message_id": envelope.id})
                    loaded.pop(envelope.subject, None)
                    rejected.append(Rejected(envelope, f"decider error: {type(exc).__name__}"))
                    continue
                telemetry.transition_spans(outcome)
                step, loaded[envelope.subject] = self._step(
                    envelope, state, aggregate, outcome, trace_context
                )
            steps.append(step)
            decided.append((envelope, outcome, aggregate))
        results = await self._store.apply(steps) if steps else []
        self._remember(loaded, steps, results)
        now = datetime.now(UTC)
        for (envelope, outcome, aggregate), ok in zip(decided, results, strict=True):
            if ok:
                telemetry.committed(envelope, outcome, aggregate, now)
        outbox = [m for step, ok in zip(steps, results, strict=True) if ok for m in step.outbox]
        duplicates += results.count(False)
        return BatchResult(outbox, rejected, results.count(True), duplicates)

    def _remember(self, loaded: dict[str, Loaded], steps: list[Step], results: list[bool]) -> None:
        """Cache what this batch committed; a cluster with a duplicate step is reloaded next time.

        Aggregates are taken out of the cache while a batch works on them, so a batch that
        fails (version conflict, database error) leaves nothing half-applied behind. The cache
        is safe across replicas: a stale entry fails its version check and is reloaded.
        """
        skipped = {
            step.clusters[0].id
            for step, ok in zip(steps, results, strict=True)
            if not ok and step.clusters
        }
        for cluster_id, state in loaded.items():
            if cluster_id not in skipped and state.aggregate is not None:
                self._cache[cluster_id] = state
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _take_aggregates(self, cluster_ids: set[str]) -> dict[str, Loaded]:
        """The batch's aggregates: out of the cache, the others loaded in one read."""
        taken = {cid: state for cid in cluster_ids if (state := self._cache.pop(cid, None))}
        missing = cluster_ids - taken.keys()
        return {**taken, **(await self._load(missing) if missing else {})}

    async def _load(self, cluster_ids: set[str]) -> dict[str, Loaded]:
        """From the store, in one read; a cluster it does not have is ``Loaded(None)``."""
        rows = await self._store.load_many(sorted(cluster_ids))
        return {cid: _loaded(rows[cid]) if cid in rows else Loaded(None) for cid in cluster_ids}

    def _step(
        self,
        envelope: Envelope,
        before: Loaded,
        aggregate: ClusterAggregate | None,
        outcome: Outcome,
        trace_context: Context | None = None,
    ) -> tuple[Step, Loaded]:
        now = datetime.now(UTC)
        step = Step(consumer=self._consumer, message_id=envelope.id)
        after = Loaded(aggregate)
        # Read once: the same context for every row below.
        trace = telemetry.trace_headers(trace_context)
        if aggregate is not None:
            self._state_rows(step, before, after, aggregate, now, trace)
        step.outbox.extend(self._writer.rows(envelope, outcome, aggregate, trace))
        step.history.extend(history_rows(envelope, outcome, aggregate, now))
        return step, after

    def _state_rows(
        self,
        step: Step,
        before: Loaded,
        after: Loaded,
        aggregate: ClusterAggregate,
        now: datetime,
        trace: dict[str, str],
    ) -> None:
        cluster_doc, machines = aggregate.to_rows()
        after.traceparent = telemetry.root_traceparent(before.traceparent, trace)
        if after.traceparent:
            cluster_doc[telemetry.TRACEPARENT_KEY] = after.traceparent
        step.clusters.append(
            ClusterRow(
                id=aggregate.id,
                state=str(aggregate.state.value),
                version=before.cluster_version,
                doc=cluster_doc,
                created_at=now,
                updated_at=now,
            )
        )
        after.cluster_version = before.cluster_version + 1
        for machine_id, role, state, doc in machines:
            version = before.machine_versions.get(machine_id, 0)
            if before.machine_docs.get(machine_id) == (state, doc):
                after.machine_versions[machine_id] = version
            else:
                step.machines.append(
                    MachineRow(machine_id, aggregate.id, role, state, version, doc, now, now)
                )
                after.machine_versions[machine_id] = version + 1
            after.machine_docs[machine_id] = (state, doc)
        present = {m[0] for m in machines}
        step.deleted_machine_ids.extend(m for m in before.machine_versions if m not in present)


def normalized(envelope: Envelope) -> dict[str, Any]:
    """The payload validated and with every default filled in, as JSON (what the machines read).

    A producer may omit optional fields (a minimal spec, say); the state machines must see the
    same complete document whoever sent it.
    """
    return parse(envelope).model_dump(mode="json")


def _loaded(rows: tuple[ClusterRow, list[MachineRow]]) -> Loaded:
    """An aggregate as read from its rows, with their versions."""
    cluster, machines = rows
    aggregate = ClusterAggregate.from_rows(
        cluster.id,
        cluster.state,
        cluster.doc,
        [(m.id, m.role, m.state, m.doc) for m in machines],
    )
    traceparent = cluster.doc.get(telemetry.TRACEPARENT_KEY)
    return Loaded(
        aggregate,
        cluster.version,
        {m.id: m.version for m in machines},
        {m.id: (m.state, m.doc) for m in machines},
        traceparent if isinstance(traceparent, str) else None,
    )
