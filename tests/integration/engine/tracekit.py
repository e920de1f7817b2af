"""In-process engine + handlers + simulator with an in-memory span exporter (tracing tests)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from engine.bus import Bus
from engine.logs import JsonFormatter
from engine.messages.envelope import envelope_for
from engine.messages.spec import ClusterSpec
from engine.settings import Settings
from engine.store import Store
from support.waiting import eventually

_exporter: InMemorySpanExporter | None = None


def span_exporter() -> InMemorySpanExporter:
    """The process's in-memory exporter (a TracerProvider can be installed only once)."""
    global _exporter
    if _exporter is None:
        _exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    _exporter.clear()
    return _exporter


def small_spec(name: str) -> dict[str, Any]:
    """1 control-plane node, no workers, no bastion: the quickest real creation."""
    spec = ClusterSpec.model_validate(
        {
            "name": name,
            "cloud": "clusterbus-sim",
            "control_plane": {"replicas": 1, "flavor": "m1.medium"},
            "worker_pools": [],
            "bastion": {"enabled": False},
        }
    )
    return spec.model_dump(mode="json")


async def create(bus: Bus, name: str) -> None:
    command = envelope_for("cluster.create", name, {"spec": small_spec(name)}, source="tests")
    await bus.publish(command, exchange=None)


async def wait_state(store: Store, cluster_id: str, wanted: str, within: float = 60) -> None:
    async def reached() -> bool:
        loaded = await store.load(cluster_id)
        if loaded and loaded[0].state == "failed":
            raise AssertionError(f"{cluster_id} failed: {loaded[0].doc.get('failure_reason')}")
        return loaded is not None and loaded[0].state == wanted

    await eventually(reached, within=within, interval=0.1, what=f"{cluster_id} {wanted}")


def fast_settings(base: Settings) -> Settings:
    return base.model_copy(update={"delay_levels_ms": (50, 100, 200), "delivery_limit": 20})


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line of the process, JSON-formatted as in production, into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans if s.context is not None}


def ancestors(span: ReadableSpan, index: dict[int, ReadableSpan]) -> Iterator[ReadableSpan]:
    parent = span.parent
    while parent is not None and parent.span_id in index:
        found = index[parent.span_id]
        yield found
        parent = found.parent
