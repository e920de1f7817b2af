"""Shared state and plumbing of the simulated cloud: resources, clock, quotas, faults, errors.

Every service module (keystone, nova, neutron, octavia, glance) keeps its resources in one
``Cloud`` object and registers named aiohttp routes through ``setup(app, cloud)``. A route's
name is its *operation key* (``"compute.servers.create"``): call counts, latency and injected
faults are all keyed by it.

Asynchronous states (BUILD -> ACTIVE, PENDING_CREATE -> ACTIVE, deleting -> gone) are modelled
lazily: ``Cloud.schedule`` records "at time T set these fields"; ``Cloud.settle`` applies what is
due, and runs before every request, so no timers exist and state can be saved to a file.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]

# A record's private bookkeeping keys start with "_" and are never rendered to clients.
PROJECT_KEY = "_project_id"
PENDING_KEY = "_pending"  # list of [due_monotonic, changes] pairs, oldest first
GONE = "_gone"  # a change that removes the record when it falls due


class ApiError(Exception):
    """An OpenStack-shaped HTTP error; ``render`` gives the service's JSON body."""

    def __init__(self, status: int, message: str, *, kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind or _DEFAULT_KINDS.get(status, "HTTPError")


_DEFAULT_KINDS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "OverLimit",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


def not_found(kind: str, resource_id: str) -> ApiError:
    return ApiError(404, f"{kind} {resource_id} could not be found.")


@dataclass
class Clock:
    """Real monotonic time plus the profile's time scale (0.01 makes 60 s take 0.6 s)."""

    scale: float = 1.0

    def now(self) -> float:
        return time.monotonic()

    def real_seconds(self, cloud_seconds: float) -> float:
        """How long ``cloud_seconds`` of simulated cloud time last on the wall clock."""
        return max(0.0, cloud_seconds * self.scale)


@dataclass
class Cloud:
    """All resources of all projects, keyed by kind then id, plus counters and the profile.

    ``profile`` is the parsed YAML profile (see simulator.profile); service modules read their
    delays and faults through it. ``calls`` counts requests per operation key.
    """

    profile: Any
    clock: Clock = field(default_factory=Clock)
    resources: dict[str, dict[str, Record]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    # kind -> callbacks run when a scheduled GONE removes a record of that kind (not saved:
    # service modules register them in setup, so a loaded state file gets them again)
    on_gone: dict[str, list[Callable[[Cloud, Record], None]]] = field(default_factory=dict)
    _serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # ---- identity of new things -------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    def serial(self) -> int:
        """A process-wide increasing number (for MAC addresses, names, ordering)."""
        return next(self._serial)

    # ---- the resource store -----------------------------------------------------------
    def table(self, kind: str) -> dict[str, Record]:
        return self.resources.setdefault(kind, {})

    def add(self, kind: str, record: Record, project_id: str | None) -> Record:
        """Store a new record (it must have an ``id``) owned by ``project_id``."""
        record[PROJECT_KEY] = project_id
        self.table(kind)[record["id"]] = record
        return record

    def get(self, kind: str, resource_id: str, project_id: str | None = None) -> Record:
        """The record, or a 404 ApiError; records of other projects are invisible."""
        record = self.table(kind).get(resource_id)
        if record is None or not _visible(record, project_id):
            raise not_found(kind, resource_id)
        return record

    def find(self, kind: str, resource_id: str, project_id: str | None = None) -> Record | None:
        try:
            return self.get(kind, resource_id, project_id)
        except ApiError:
            return None

    def list(
        self,
        kind: str,
        project_id: str | None = None,
        where: Callable[[Record], bool] | None = None,
    ) -> list[Record]:
        """Records of ``kind`` visible to ``project_id`` (None: all), filtered by ``where``."""
        return [
            r
            for r in self.table(kind).values()
            if _visible(r, project_id) and (where is None or where(r))
        ]

    def remove(self, kind: str, resource_id: str) -> Record | None:
        return self.table(kind).pop(resource_id, None)

    def count(
        self, kind: str, project_id: str, where: Callable[[Record], bool] | None = None
    ) -> int:
        return len(self.list(kind, project_id, where))

    # ---- time ---------------------------------------------------------------------------
    def schedule(self, record: Record, cloud_seconds: float, changes: Record) -> None:
        """After ``cloud_seconds`` of simulated time, apply ``changes`` to ``record``.

        ``{GONE: True}`` removes the record. Changes queue behind earlier ones.
        """
        pending: list[list[Any]] = record.setdefault(PENDING_KEY, [])
        start = pending[-1][0] if pending else self.clock.now()
        pending.append([start + self.clock.real_seconds(cloud_seconds), changes])

    def cancel_pending(self, record: Record) -> None:
        record.pop(PENDING_KEY, None)

    def when_gone(self, kind: str, callback: Callable[[Cloud, Record], None]) -> None:
        """Run ``callback(cloud, record)`` whenever a scheduled GONE removes a ``kind`` record.

        Idempotent, because ``setup`` runs again on every reseed.
        """
        callbacks = self.on_gone.setdefault(kind, [])
        if callback not in callbacks:
            callbacks.append(callback)

    def settle(self) -> None:
        """Apply every scheduled change that is due, in time order."""
        now = self.clock.now()
        # list() copies: a when_gone callback may remove records or add a new kind
        for kind, table in list(self.resources.items()):
            for resource_id in list(table):
                record = table.get(resource_id)
                if record is None:
                    continue
                pending = record.get(PENDING_KEY)
                while pending and pending[0][0] <= now:
                    _, changes = pending.pop(0)
                    if changes.get(GONE):
                        self.remove(kind, resource_id)
                        for callback in self.on_gone.get(kind, []):
                            callback(self, record)
                        break
                    record.update(changes)
                if pending == []:
                    record.pop(PENDING_KEY, None)


def _visible(record: Record, project_id: str | None) -> bool:
    owner = record.get(PROJECT_KEY)
    return project_id is None or owner is None or owner == project_id


def public(record: Record) -> Record:
    """The record as a client sees it: without the private ``_*`` keys."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
