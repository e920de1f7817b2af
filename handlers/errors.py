"""Classify openstacksdk errors as transient (retry) or terminal (fail with OpenStack's message)."""

from __future__ import annotations

import requests.exceptions
from keystoneauth1 import exceptions as ksa_exceptions
from openstack import exceptions as os_exceptions

from handlers.base import TerminalError, TransientError

_TRANSIENT_STATUS = {408, 409, 429, 500, 502, 503, 504}


def openstack_message(exc: BaseException) -> str:
    """OpenStack's own error text (what the user should read), without the SDK's decoration."""
    details = getattr(exc, "details", None)
    if isinstance(details, str) and details.strip():
        return details.strip()
    message = getattr(exc, "message", None)
    return str(message or exc).strip()


def classify(exc: BaseException) -> TransientError | TerminalError:
    """Map any exception from a handler to one of our two failure kinds."""
    if isinstance(exc, TransientError | TerminalError):
        return exc
    if isinstance(exc, os_exceptions.HttpException):
        status = exc.status_code or 0
        # Quota over-limit answers 409 in Neutron ("OverQuota") and 403/413 in Nova/Octavia:
        # retrying cannot help, unlike a 409 from a busy load balancer.
        if status == 409 and "quota" in openstack_message(exc).lower():
            return TerminalError(openstack_message(exc))
        if status in _TRANSIENT_STATUS or status == 0:
            return TransientError(openstack_message(exc))
        return TerminalError(openstack_message(exc))
    if isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | ksa_exceptions.ConnectionError
        | ksa_exceptions.ConnectFailure
        | ConnectionError
        | TimeoutError,
    ):
        return TransientError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, os_exceptions.SDKException):
        return TerminalError(openstack_message(exc))
    return TransientError(f"{type(exc).__name__}: {exc}")
