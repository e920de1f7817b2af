"""With only OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME set, both roles export their spans.

A tiny OTLP/HTTP receiver (aiohttp + opentelemetry-proto) stands in for the collector.
"""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from tracekit import small_spec

from engine.bus import Bus
from engine.messages.envelope import envelope_for
from engine.settings import Settings
from support.engine import wait_engine_ready
from support.processes import ClusterbusProcess
from support.waiting import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(90)]


class Receiver:
    """Collects span names per service.name from OTLP/HTTP protobuf exports."""

    def __init__(self) -> None:
        self.spans: dict[str, list[str]] = defaultdict(list)

    async def traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "")
            for scope in resource_spans.scope_spans:
                self.spans[service].extend(span.name for span in scope.spans)
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    sink = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", sink.traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield sink, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_engine_and_handlers_export_spans_under_their_service_names(
    settings: Settings, bus: Bus, tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    sink, endpoint = receiver
    procs = [
        ClusterbusProcess(
            settings,
            role,
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_SERVICE_NAME=f"clusterbus-{role}-test",
        ).start()
        for role in ("engine", "handlers")
    ]
    try:
        await wait_engine_ready(bus)
        # No cloud is configured: the handler's network.ensure fails, which is traced too.
        command = envelope_for("cluster.create", "otlp", {"spec": small_spec("otlp")}, source="t")
        await bus.publish(command, exchange=None)

        async def handled() -> bool:
            return bool(sink.spans.get("clusterbus-handlers-test"))

        # The batch exporter sends within OTEL_BSP_SCHEDULE_DELAY (5 s by default).
        async def exported() -> bool:
            return "apply cluster.create" in sink.spans.get("clusterbus-engine-test", [])

        await eventually(exported, within=30, what="engine spans at the receiver")
        await eventually(handled, within=30, what="handler spans at the receiver")
    finally:
        for proc in procs:
            proc.stop()
    handler_spans = sink.spans["clusterbus-handlers-test"]
    assert any(name.startswith("task network.ensure") for name in handler_spans), handler_spans
    assert any(name.startswith("process ") for name in handler_spans)
    assert set(sink.spans) == {"clusterbus-engine-test", "clusterbus-handlers-test"}
