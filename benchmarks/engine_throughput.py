"""Engine throughput against the raw broker round trip, measured in one run.

(a) raw: consume -> publish a follow-up (confirmed, persistent) -> ack, plain aio-pika
    (``broker_roundtrip.raw_roundtrip_rate``).
(b) engine: the full loop with the SQLite store: consume from the shard queues -> inbox check ->
    load the aggregate -> decide -> one transaction (state + inbox + outbox + history) -> publish
    the follow-up with confirms -> mark sent -> ack. The decision is a one-in-one-out stand-in
    (each event updates its cluster and emits one task) so both sides publish one message per
    message consumed; the real state machines cost ~0.1 ms per message on top (see
    tests/unit/statemachines).
(c) the same engine loop with tracing on: every span sampled (ALWAYS_ON) and batch-exported to
    an exporter that drops them (the cost of tracing in our process, not the network's); shown
    as a ratio to (b), which runs with tracing off (no provider: the API's no-op).

Usage: ``.venv/bin/python benchmarks/engine_throughput.py [N] [CLUSTERS] [ROUNDS]``
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

sys.path.insert(0, str(Path(__file__).parent))
from broker_roundtrip import raw_roundtrip_rate
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from engine.bus import Bus
from engine.messages.envelope import Envelope, envelope_for
from engine.messages.spec import ClusterSpec
from engine.processor import Processor
from engine.runtime import tune_gc
from engine.service import EngineService
from engine.settings import Settings
from engine.store import Store
from statemachines import ClusterAggregate, Emit, Outcome, handle

_WINDOW = 200


def one_in_one_out(
    aggregate: ClusterAggregate | None, message_type: str, data: dict[str, Any], *, now: datetime
) -> tuple[ClusterAggregate | None, Outcome]:
    """Creates go through the real machines; every other event: update + one follow-up task."""
    if message_type == "cluster.create" or aggregate is None:
        return handle(aggregate, message_type, data, now=now)
    aggregate.updated_at = now
    task = Emit("pki.ensure", {"cluster_id": aggregate.id, "cloud": "bench"})
    return aggregate, Outcome(emits=[task], changes=[])


async def _seed(store: Store, clusters: list[str]) -> None:
    """Create the clusters straight through the processor (not timed), outbox marked sent."""
    processor = Processor(store, handle, exchange_prefix="bench")
    creates = [
        envelope_for(
            "cluster.create",
            name,
            {"spec": ClusterSpec(name=name, cloud="bench").model_dump(mode="json")},
            source="bench",
        )
        for name in clusters
    ]
    result = await processor.process(creates)
    await store.mark_sent([m.seq for m in result.outbox if m.seq is not None])


def _event(cluster: str) -> Envelope:
    return envelope_for("pki.ready", cluster, {"cluster_id": cluster}, source="bench")


async def _wait_depth(channel: AbstractChannel, queue: str, n: int, within_s: float = 300) -> None:
    """Poll the sink queue until it holds ``n`` messages; fail after ``within_s``.

    On one channel opened before the clock starts: a connection per poll would cost the
    engine's process CPU it otherwise spends on messages.
    """
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        declared = await channel.declare_queue(queue, passive=True)
        if int(declared.declaration_result.message_count or 0) >= n:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{queue} did not reach {n} messages in {within_s} s")


async def engine_rate(settings: Settings, n: int, clusters: int) -> float:
    settings = settings.model_copy(
        update={"topology_prefix": f"bench-{uuid.uuid4().hex[:8]}", "store_url": _tmp_sqlite()}
    )
    names = [f"bench-{i}" for i in range(clusters)]
    store = await Store.open(settings.store_url)
    bus = Bus(settings, name="clusterbus-benchmark-engine")
    await bus.declare()
    await bus.connect()
    engine = EngineService(settings, bus, store, decide=one_in_one_out)
    try:
        await _seed(store, names)
        for start in range(0, n, _WINDOW):
            events = [_event(names[i % clusters]) for i in range(start, min(n, start + _WINDOW))]
            await asyncio.gather(*(bus.publish(e, exchange=None) for e in events))
        sink = bus.names.handler("pki")
        async with await aio_pika.connect(settings.amqp_url.get_secret_value()) as poller:
            channel = await poller.channel()
            started = time.perf_counter()
            await engine.start()
            await _wait_depth(channel, sink, n)
            elapsed = time.perf_counter() - started
    finally:
        await engine.stop()
        await bus.close()
        await bus.delete_topology()
        await store.close()
    return n / elapsed


class _DropExporter(SpanExporter):
    """Counts and drops: the exporter's own cost is not the engine's."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def _tracing_on() -> _DropExporter:
    exporter = _DropExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=65536))
    trace.set_tracer_provider(provider)
    return exporter


def _tmp_sqlite() -> str:
    return f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"


async def _main(n: int, clusters: int, rounds: int) -> None:
    tune_gc()  # as `clusterbus run` does; both sides of the ratio run under it
    settings = Settings()
    ratios, engines = [], []
    # Raw and engine alternate, so a noisy minute on this shared machine hits both sides; the
    # median of the rounds is the figure, the spread shows how much to trust it.
    for r in range(1, rounds + 1):
        raw = await raw_roundtrip_rate(settings, n)
        engine = await engine_rate(settings, n, clusters)
        ratios.append(engine / raw)
        engines.append(engine)
        print(
            f"round {r}: (a) raw {raw:6.0f} msgs/s   (b) engine {engine:6.0f} msgs/s"
            f"   ratio {engine / raw:.2f}"
        )
    engine = statistics.median(engines)
    print(f"(a)/(b) n={n} messages, {clusters} clusters, SQLite store, {rounds} rounds")
    print(
        f"    ratio engine/raw, median    : {statistics.median(ratios):8.2f}"
        f"   (min {min(ratios):.2f}, max {max(ratios):.2f}; target >= 0.50)"
    )
    exporter = _tracing_on()
    traced = await engine_rate(settings, n, clusters)
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    print(f"(c) engine with tracing on     : {traced:8.0f} msgs/s  ({exporter.spans} spans)")
    print(f"    ratio traced/untraced      : {traced / engine:8.2f}")
    print(f"    at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    asyncio.run(_main(*(args + [3000, 50, 5][len(args) :])))
