"""openstacksdk is synchronous: run it in a bounded thread pool, with a per-cloud limit.

One ``openstack.connection.Connection`` per cloud name (clouds.yaml entry), created lazily and
reused so the Keystone token and discovered endpoints are shared by every handler call.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import openstack
from openstack.connection import Connection

from engine.openstack_telemetry import instrument_connection

T = TypeVar("T")


class ThreadedCloudPool:
    """Implements handlers.base.CloudPool; ``fn`` receives the cloud's Connection first."""

    def __init__(
        self,
        *,
        max_threads: int = 16,
        per_cloud: int = 8,
        connect: Callable[[str], Connection] | None = None,
    ) -> None:
        self._executor = ThreadPoolExecutor(max_threads, thread_name_prefix="openstack")
        self._per_cloud = per_cloud
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._connections: dict[str, Connection] = {}
        self._lock = threading.Lock()
        self._connect = connect or _connect

    def connection(self, cloud: str) -> Connection:
        with self._lock:
            if cloud not in self._connections:
                connection = self._connect(cloud)
                instrument_connection(connection)
                self._connections[cloud] = connection
            return self._connections[cloud]

    async def run(self, cloud: str, fn: Callable[..., T], *args: Any) -> T:
        limit = self._limits.setdefault(cloud, asyncio.Semaphore(self._per_cloud))
        async with limit:
            loop = asyncio.get_running_loop()
            # The worker thread runs in a copy of this task's context: the current span (the
            # handler's task span) becomes the parent of the HTTP calls' CLIENT spans.
            context = contextvars.copy_context()
            return await loop.run_in_executor(
                self._executor, context.run, self._call, cloud, fn, args
            )

    def _call(self, cloud: str, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        return fn(self.connection(cloud), *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


def _connect(cloud: str) -> Connection:
    # Retries are ours (broker delay queues), not the SDK's: fail fast, classify, re-publish.
    return openstack.connect(cloud=cloud, connect_retries=0, status_code_retries=0)
