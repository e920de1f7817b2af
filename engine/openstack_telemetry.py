"""A CLIENT span and call metrics for every OpenStack HTTP request of an openstacksdk Connection.

Hooked on the keystoneauth Session of the Connection (every proxy, the token request and version
discovery go through ``Session.request``), so it sees the service type the SDK asked for. URLs
are recorded as templates (ids replaced, no query string): low-cardinality labels, and nothing
that came from a user's input or a token. Headers and bodies are never recorded.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from engine.metrics import OPENSTACK_CALLS, OPENSTACK_ERRORS

tracer = trace.get_tracer("clusterbus.openstack")

_ID = re.compile(
    r"^(?:[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}|\d+)$"
)
_MARK = "_clusterbus_instrumented"


def url_template(url: str) -> str:
    """The path of ``url`` with every id-like segment replaced by ``{id}``."""
    path = urlsplit(url).path or "/"
    return "/".join("{id}" if _ID.match(part) else part for part in path.split("/"))


def _service_type(url: str, kwargs: dict[str, Any]) -> str:
    endpoint_filter = kwargs.get("endpoint_filter") or {}
    service = endpoint_filter.get("service_type") or kwargs.get("microversion_service_type")
    if service:
        return str(service)
    # Requests without a filter: the token request and version discovery of the auth plugin.
    return "identity" if "/auth/tokens" in url else "discovery"


def instrument_connection(connection: Any) -> None:
    """Wrap the Connection's keystoneauth Session.request once (fakes without one are skipped)."""
    session = getattr(connection, "session", None)
    request = getattr(session, "request", None)
    if session is None or request is None or getattr(session, _MARK, False):
        return
    session.request = _traced(request)
    setattr(session, _MARK, True)


def _traced(request: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(request)
    def traced(url: str, method: str, *args: Any, **kwargs: Any) -> Any:
        service = _service_type(url, kwargs)
        with tracer.start_as_current_span(
            f"{method.upper()} {service}",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method.upper(), "openstack.service.type": service},
            record_exception=False,
        ) as span:
            response = None
            try:
                response = request(url, method, *args, **kwargs)
                return response
            except Exception as exc:
                response = getattr(exc, "response", None)
                span.set_attribute("error.type", type(exc).__name__)
                raise
            finally:
                _record(span, service, method.upper(), url, response)

    return traced


def _record(span: Any, service: str, method: str, url: str, response: Any) -> None:
    status = getattr(response, "status_code", None)
    template = url_template(getattr(response, "url", None) or url)
    operation = f"{method} {template}"
    status_label = str(status) if status is not None else "error"
    OPENSTACK_CALLS.labels(service, operation, status_label).inc()
    if status is None or status >= 400:
        OPENSTACK_ERRORS.labels(service, operation, status_label).inc()
    if span.is_recording():
        span.update_name(f"{method} {template}")
        span.set_attribute("url.template", template)
        host = urlsplit(getattr(response, "url", None) or url).hostname
        if host:
            span.set_attribute("server.address", host)
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
                span.set_status(StatusCode.ERROR)
