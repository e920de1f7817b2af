"""One trace per cluster creation: engine, handlers, OpenStack calls, retries, polls, a restart.

Everything runs in this process (an in-memory span exporter sees every span) against the real
RabbitMQ and the simulator over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest
import yaml
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from tracekit import (
    ancestors,
    by_id,
    captured_logs,
    create,
    fast_settings,
    span_exporter,
    wait_state,
)

from engine.bus import Bus
from engine.handler_service import start_handlers
from engine.metrics import MetricsServer
from engine.secrets import StoreSecrets
from engine.service import EngineService
from engine.settings import Settings
from engine.store import OutboxMessage, Store
from simulator.profile import Delays, ErrorFault, Faults, Profile
from simulator.testing import Sim
from support.waiting import eventually

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.timeout(120),
    # The handlers run in this process: openstacksdk's deprecation notices must not turn into
    # handler errors (in production they are warnings, as in the e2e child processes).
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

FAULTY_OPERATION = "network.networks.create"


def profile(faults: Faults | None = None) -> Profile:
    delays = Delays(
        server_boot=30, server_delete=5, lb_create=30, lb_update=5, lb_delete=10, member_online=10
    )
    return Profile(time_scale=0.01, seed=7, delays=delays, faults=faults or Faults())


@pytest.fixture
def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sim:
    faults = Faults(errors=[ErrorFault(match=FAULTY_OPERATION, rate=1.0)])
    started = Sim.start(profile(faults), tmp_path / "clouds.yaml")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    yield started
    started.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def start_engine(settings: Settings, store: Store) -> tuple[Bus, EngineService]:
    bus = Bus(settings, name=f"{settings.topology_prefix}-engine-{uuid.uuid4().hex[:4]}")
    await bus.connect()
    engine = EngineService(settings, bus, store)
    await engine.start()
    return bus, engine


async def test_one_creation_is_one_trace_across_retries_polls_and_a_restart(
    settings: Settings, bus: Bus, store: Store, sim: Sim
) -> None:
    exporter = span_exporter()
    settings = fast_settings(settings)
    handlers_bus = Bus(settings, name=f"{settings.topology_prefix}-handlers")
    await handlers_bus.connect()
    await start_handlers(settings, handlers_bus, store)
    engine_bus, engine = await start_engine(settings, store)

    # The first engine "crashes" after committing network.ready: its outbox rows stay unsent.
    dropped: list[OutboxMessage] = []
    publish = engine.relay.publish

    async def crash_after_network(messages: Sequence[OutboxMessage]) -> int:
        if dropped or any(m.routing_key == "security_groups.ensure" for m in messages):
            dropped.extend(messages)
            return 0
        return await publish(messages)

    engine.relay.publish = crash_after_network  # type: ignore[method-assign]
    try:
        await create(bus, "traced")
        # One 500 on network create, then the cloud heals: the handler's retry must succeed.
        await eventually(lambda: _errors(sim), within=30, what="an injected 500")
        sim.put_profile(profile())
        await eventually(lambda: _true(bool(dropped)), within=30, what="the engine's 'crash'")
        await engine.stop()
        await engine_bus.close()
        assert await store.unsent_outbox(), "the crash left no unsent outbox rows"

        engine_bus, engine = await start_engine(settings, store)  # sweeps the rows at start
        await wait_state(store, "traced", "ready")
    finally:
        await engine.stop()
        await engine_bus.close()
        await handlers_bus.close()

    spans = list(exporter.get_finished_spans())
    assert_one_trace(spans)
    assert_consumers_follow_producers(spans, settings)
    assert_client_spans_under_tasks(spans)
    assert_retry_and_poll_in_trace(spans)
    assert_replayed_rows_keep_their_parent(spans)


async def _errors(sim: Sim) -> bool:
    return sim.cloud.errors.get(FAULTY_OPERATION, 0) > 0


async def _true(value: bool) -> bool:
    await asyncio.sleep(0)
    return value


def assert_one_trace(spans: list[ReadableSpan]) -> None:
    roots = [s for s in spans if s.parent is None]
    assert [s.name for s in roots] == ["publish " + _commands(spans) + ":cluster.create"], roots
    trace_ids = {s.context.trace_id for s in spans if s.context}
    assert trace_ids == {roots[0].context.trace_id}, f"{len(trace_ids)} traces"


def _commands(spans: list[ReadableSpan]) -> str:
    name = next(s.name for s in spans if s.name.endswith(":cluster.create"))
    return name.split(" ", 1)[1].split(":", 1)[0]


def assert_consumers_follow_producers(spans: list[ReadableSpan], settings: Settings) -> None:
    index = by_id(spans)
    consumers = [s for s in spans if s.kind is SpanKind.CONSUMER]
    engine = [
        s
        for s in consumers
        if str((s.attributes or {}).get("messaging.consumer.group.name", "")).startswith(
            f"{settings.topology_prefix}.engine"
        )
    ]
    assert engine, "no engine consumer span"
    for span in consumers:
        parent = index[span.parent.span_id] if span.parent else None
        assert parent is not None and parent.kind is SpanKind.PRODUCER, span.name
        assert [link.context.span_id for link in span.links] == [parent.context.span_id]
        assert span.attributes["messaging.system"] == "rabbitmq"
        assert span.name == "process " + span.attributes["messaging.destination.name"]


def assert_client_spans_under_tasks(spans: list[ReadableSpan]) -> None:
    index = by_id(spans)
    clients = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert len(clients) > 20, f"only {len(clients)} OpenStack calls traced"
    for span in clients:
        task = next((a for a in ancestors(span, index) if a.name.startswith("task ")), None)
        assert task is not None, f"{span.name} is not under a handler task span"
        assert "{id}" in span.name or span.attributes.get("url.template")
        assert span.attributes.get("openstack.service.type")
    ids = [s.attributes.get("url.template", "") for s in clients]
    assert not any(len(part) >= 32 for t in ids for part in str(t).split("/")), "ids in templates"


def assert_retry_and_poll_in_trace(spans: list[ReadableSpan]) -> None:
    failed = [
        s
        for s in spans
        if s.kind is SpanKind.CLIENT and s.attributes.get("http.response.status_code") == 500
    ]
    assert failed, "the injected 500 is not in the trace"
    retried = [
        s for s in spans if s.name == "task network.ensure" and s.attributes["clusterbus.errors"]
    ]
    assert retried, "the retry after the 500 is not in the trace"
    polls = [s for s in spans if s.name.startswith("task ") and s.attributes["clusterbus.attempt"]]
    assert polls, "no delayed re-poll in the trace"


def assert_replayed_rows_keep_their_parent(spans: list[ReadableSpan]) -> None:
    index = by_id(spans)
    sg = [
        s
        for s in spans
        if s.kind is SpanKind.PRODUCER and s.name.endswith(":security_groups.ensure")
    ]
    assert sg, "the replayed security_groups.ensure was not published"
    parents = {index[s.parent.span_id].name for s in sg if s.parent}
    assert parents == {"apply network.ready"}, parents


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample of ``name`` (all label sets) in Prometheus text."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + "{", name + " "))
    )


async def scrape(port: int) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return await r.text()


async def secret_material(store: Store, settings: Settings, cluster_id: str) -> list[str]:
    """Fragments of the CA key and of the kubeconfig's client key, as they are stored."""
    secrets = StoreSecrets.from_settings(store, settings)
    ca = json.loads(await secrets.get(cluster_id, "ca") or b"{}")
    key_lines = [line for line in ca["tls.key"].splitlines() if not line.startswith("-----")]
    kubeconfig = yaml.safe_load(await secrets.get(cluster_id, "kubeconfig") or b"")
    client_key = kubeconfig["users"][0]["user"]["client-key-data"]
    return [key_lines[1], key_lines[-2], client_key[:40], client_key[-40:]]


def exported_text(spans: list[ReadableSpan]) -> str:
    parts: list[str] = []
    for s in spans:
        parts.append(s.name)
        parts.extend(f"{k}={v}" for k, v in (s.attributes or {}).items())
        for event in s.events:
            parts.append(event.name)
            parts.extend(f"{k}={v}" for k, v in (event.attributes or {}).items())
        parts.append(str(s.status.description))
    return "\n".join(parts)


async def test_metrics_count_every_openstack_call_and_nothing_secret_is_exported(
    settings: Settings, bus: Bus, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = span_exporter()
    sim = Sim.start(profile(), tmp_path / "clouds.yaml")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    settings = fast_settings(settings).model_copy(update={"metrics_refresh_s": 0.2})
    port = free_port()
    server = MetricsServer(port, "127.0.0.1")
    await server.start()
    before = metric_sum(await scrape(port), "clusterbus_openstack_calls_total")
    await start_handlers(settings, bus, store)
    engine_bus, engine = await start_engine(settings, store)
    try:
        with captured_logs() as logs:
            await create(bus, "metered")
            await wait_state(store, "metered", "ready")
            material = await secret_material(store, settings, "metered")

            async def gauges_refreshed() -> str:
                text = await scrape(port)
                return text if 'clusterbus_clusters{state="ready"}' in text else ""

            text = await eventually(gauges_refreshed, within=10, what="the store gauges")
            recorded = sim.inspect("calls")["total"]
    finally:
        await engine.stop()
        await engine_bus.close()
        await server.stop()
        sim.stop()

    assert metric_sum(text, "clusterbus_openstack_calls_total") - before == recorded
    for name in (
        "clusterbus_transitions_total",
        "clusterbus_handler_duration_seconds_count",
        "clusterbus_retries_total",
        "clusterbus_cluster_time_to_ready_seconds_count",
    ):
        assert metric_sum(text, name) > 0, name
    assert "clusterbus_outbox_unsent " in text and "clusterbus_machines{" in text

    everything = exported_text(list(exporter.get_finished_spans())) + logs.getvalue()
    assert '"trace_id"' in logs.getvalue() and '"event": "transition"' in logs.getvalue()
    for fragment in material:
        assert fragment not in everything, "secret material was exported"
