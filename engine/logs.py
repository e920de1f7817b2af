"""Structured logs: one JSON object per line on stderr, with context fields bound per message."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_EMPTY: dict[str, Any] = {}
# Never mutated: bound() always sets a new dict.
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "log_context",
    default=_EMPTY,
)


class JsonFormatter(logging.Formatter):
    """Renders a record, its ``extra`` fields and the bound context as one JSON line."""

    _skip = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **_context.get(),
        }
        entry.update(_trace_ids())
        entry.update({k: v for k, v in record.__dict__.items() if k not in self._skip})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _trace_ids() -> dict[str, str]:
    """trace_id and span_id of the current span, as the W3C/OTLP hex strings (or nothing)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add fields (cluster id, message id, ...) to every log line inside the block."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def configure(level: str = "INFO", *, json_format: bool = True) -> None:
    """Install the handler on the root logger once; quiet the chatty libraries."""
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in (
        "aiormq",
        "aio_pika",
        "keystoneauth",
        "openstack",
        "urllib3",
        "stevedore",
        "transitions",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
