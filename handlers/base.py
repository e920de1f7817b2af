"""What every handler shares: its reply, the two kinds of failure, and its dependencies.

A handler is ``async def handler(task: dict, deps: Deps) -> Reply``. It finds what exists (by
recorded ID, deterministic name and ownership tag), creates what is missing, and answers with the
completion events to publish, every new ID in them at once. Slow OpenStack work is never waited
for in a handler: it answers ``Reply.later(...)`` and the runner re-publishes the task through a
delay queue (the broker is the timer).

Errors:
    TransientError   retry the task with backoff (5xx, connection errors, 409 on a busy resource)
    TerminalError    give up: publish the part's ``*.failed`` event with OpenStack's own message
Any openstacksdk exception escaping a handler is classified by ``classify`` the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

OWNER_TAG = "clusterbus"


def cluster_tag(cluster_id: str) -> str:
    """The ownership tag every resource of one cluster carries."""
    return f"clusterbus-cluster={cluster_id}"


def owned_tags(cluster_id: str) -> list[str]:
    return [OWNER_TAG, cluster_tag(cluster_id)]


def is_ours(resource: Any, cluster_id: str) -> bool:
    """True when the resource carries this cluster's ownership tag (never delete otherwise)."""
    tags = getattr(resource, "tags", None) or []
    return cluster_tag(cluster_id) in tags


class TransientError(Exception):
    """Worth retrying later: the cloud is busy, slow or briefly broken."""


class TerminalError(Exception):
    """Retrying will not help (quota, not found, invalid request); ``str(exc)`` is the reason."""


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """Events to publish now, and optionally the task again after a delay (``later``)."""

    events: tuple[Event, ...] = ()
    retry_after_ms: int | None = None
    retry_data: dict[str, Any] | None = None  # the task to re-publish (e.g. with learned IDs)

    @classmethod
    def done(cls, *events: Event) -> Reply:
        return cls(events=events)

    @classmethod
    def later(cls, task: dict[str, Any], delay_ms: int, *events: Event, **learned: Any) -> Reply:
        """Poll again after ``delay_ms``; ``events`` (e.g. IDs just learned) go out now."""
        return cls(events=events, retry_after_ms=delay_ms, retry_data={**task, **learned})


class SecretStore(Protocol):
    """Encrypted per-cluster secrets (implemented by the engine's store)."""

    async def get(self, cluster_id: str, name: str) -> bytes | None: ...
    async def put_if_absent(self, cluster_id: str, name: str, value: bytes) -> bytes: ...
    async def delete_all(self, cluster_id: str) -> None: ...


class CloudPool(Protocol):
    """Runs synchronous openstacksdk work for one cloud in a bounded thread pool."""

    async def run(self, cloud: str, fn: Callable[..., T], *args: Any) -> T: ...


@dataclass
class Deps:
    """Everything a handler may use; built once by the runner, faked in unit tests."""

    clouds: CloudPool
    secrets: SecretStore
    settings: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[dict[str, Any], Deps], Awaitable[Reply]]


def backoff_ms(attempt: int, *, base_ms: int = 1000, cap_ms: int = 30_000) -> int:
    """Exponential backoff for polls and retries: 1 s, 2 s, 4 s ... capped."""
    return int(min(cap_ms, base_ms * (2 ** max(0, attempt))))
