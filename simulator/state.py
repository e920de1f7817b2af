"""``--state FILE``: keep the cloud's resources across restarts (JSON, written atomically).

Pending state changes are stored as seconds remaining, since the monotonic clock they were
scheduled on does not survive the process.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from simulator.core import PENDING_KEY, Cloud, Record
from simulator.http import CLOUD_KEY

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
AUTOSAVE_SECONDS = 5.0


def dump(cloud: Cloud) -> dict[str, Any]:
    """The cloud as JSON-ready data."""
    now = cloud.clock.now()
    resources: dict[str, dict[str, Record]] = {}
    for kind, table in cloud.resources.items():
        resources[kind] = {}
        for rid, record in table.items():
            copy = dict(record)
            if PENDING_KEY in copy:
                copy[PENDING_KEY] = [
                    [max(0.0, due - now), changes] for due, changes in record[PENDING_KEY]
                ]
            resources[kind][rid] = copy
    return {
        "version": FORMAT_VERSION,
        "serial": cloud.serial(),
        "resources": resources,
        "calls": dict(cloud.calls),
        "errors": dict(cloud.errors),
    }


def restore(cloud: Cloud, data: dict[str, Any]) -> None:
    """Replace the cloud's resources and counters with ``data`` (from ``dump``)."""
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"unsupported state format {data.get('version')!r}")
    now = cloud.clock.now()
    cloud.resources.clear()
    for kind, table in data["resources"].items():
        for rid, record in table.items():
            if PENDING_KEY in record:
                record[PENDING_KEY] = [
                    [now + left, changes] for left, changes in record[PENDING_KEY]
                ]
            cloud.table(kind)[rid] = record
    cloud.calls = Counter(data.get("calls", {}))
    cloud.errors = Counter(data.get("errors", {}))
    cloud._serial = itertools.count(int(data.get("serial", 0)) + 1)


def save(cloud: Cloud, path: Path) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dump(cloud), sort_keys=True))
    os.replace(tmp, path)


def load(cloud: Cloud, path: Path) -> bool:
    """Load ``path`` into the cloud if it exists; True when something was loaded."""
    if not path.exists():
        return False
    restore(cloud, json.loads(path.read_text()))
    return True


def persistence(
    path: Path, interval: float = AUTOSAVE_SECONDS
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context: load on start, save every ``interval`` s and on shutdown."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        cloud = app[CLOUD_KEY]
        if load(cloud, path):
            log.info("simulator state loaded from %s", path)
        task = asyncio.create_task(_autosave(cloud, path, interval))
        yield
        task.cancel()
        save(cloud, path)

    return context


async def _autosave(cloud: Cloud, path: Path, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            save(cloud, path)
        except OSError:
            log.exception("could not save simulator state to %s", path)
