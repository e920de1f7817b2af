"""OpenTelemetry set-up from the standard ``OTEL_*`` variables only, once per process.

Nothing is configured (the API stays a cheap no-op) unless an exporter is asked for:
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, or
``OTEL_TRACES_EXPORTER`` names ``otlp`` or ``console``. ``OTEL_SDK_DISABLED=true`` wins over
everything. Service name, resource attributes, sampler and batch sizes are read by the SDK itself
(``Resource.create()``, argument-less exporters), so every documented ``OTEL_*`` knob works.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

log = logging.getLogger(__name__)

_configured: TracerProvider | None = None


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def wanted_exporters() -> list[str]:
    """The exporters the environment asks for ([] = tracing stays off)."""
    if _env("OTEL_SDK_DISABLED").lower() == "true":
        return []
    names = [n.strip().lower() for n in _env("OTEL_TRACES_EXPORTER").split(",") if n.strip()]
    if names:
        return [n for n in names if n != "none"]
    endpoint = _env("OTEL_EXPORTER_OTLP_ENDPOINT") or _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return ["otlp"] if endpoint else []


def _otlp_exporter() -> SpanExporter:
    """http/protobuf (the default of the spec) or grpc, per OTEL_EXPORTER_OTLP_*PROTOCOL."""
    protocol = (
        _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _env("OTEL_EXPORTER_OTLP_PROTOCOL")
    ).lower() or "http/protobuf"
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError as exc:  # grpcio is heavy: an optional extra
            raise RuntimeError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc"
            ) from exc
        exporter: SpanExporter = GrpcExporter()
        return exporter
    if protocol != "http/protobuf":
        raise RuntimeError(f"unsupported OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r}")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _exporter(name: str) -> SpanExporter:
    if name == "otlp":
        return _otlp_exporter()
    if name == "console":
        return ConsoleSpanExporter()
    raise RuntimeError(f"unsupported OTEL_TRACES_EXPORTER {name!r}")


def setup_tracing() -> TracerProvider | None:
    """Install a TracerProvider with batch export if the environment asks for one; idempotent."""
    global _configured
    if _configured is not None:
        return _configured
    names = wanted_exporters()
    if not names:
        return None
    # The sampler (OTEL_TRACES_SAMPLER[_ARG]) is read by TracerProvider when none is given.
    provider = TracerProvider(resource=Resource.create())
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    _configured = provider
    log.info("tracing enabled", extra={"exporters": names})
    return provider


def shutdown_tracing() -> None:
    """Flush and stop the exporters (also registered at exit by the SDK)."""
    if _configured is not None:
        _configured.shutdown()
