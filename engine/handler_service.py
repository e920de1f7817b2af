"""The handlers role: consume tasks, call the handler for the task type, publish what it says.

The dispatch table is ``handlers.TASK_HANDLERS`` (task type -> handler). Around each call this
module applies the one retry policy of the system:

    Reply.later          re-publish the task (attempt + 1) through a delay queue: a poll
    TransientError       re-publish after a backoff, up to ``settings.delivery_limit`` times,
                         then give up like a terminal error
    TerminalError        publish the part's ``*.failed`` event with OpenStack's own message
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import Span

from engine.bus import Bus
from engine.bus.delivery import H_ATTEMPT, Delivery, RawMessage
from engine.bus.telemetry import mark_error
from engine.logs import bound
from engine.messages.envelope import Envelope
from engine.messages.errors import UnknownMessageType
from engine.metrics import HANDLER_DURATION, RETRIES
from engine.settings import Settings
from handlers.base import Deps, Handler, Reply, TerminalError, TransientError, backoff_ms
from handlers.errors import classify

log = logging.getLogger(__name__)
tracer = trace.get_tracer("clusterbus.handlers")

# The event that reports a task's terminal failure to the engine; anything else: task.failed.
FAILURE_EVENT = {
    "network.ensure": "network.failed",
    "security_groups.ensure": "security_groups.failed",
    "loadbalancer.ensure": "loadbalancer.failed",
    "server.create": "server.failed",
    "server.poll": "server.failed",
    "floatingip.ensure": "server.failed",
    "member.ensure": "server.failed",
    "member.poll": "server.failed",
}


class HandlerRunner:
    """Runs one task delivery through its handler and publishes the outcome."""

    def __init__(
        self, bus: Bus, table: dict[str, Handler], deps: Deps, *, source: str, error_limit: int
    ) -> None:
        self._bus = bus
        self._table = table
        self._deps = deps
        self._source = source
        self._error_limit = error_limit
        self._one_at_a_time = KeyedLocks()

    async def on_task(self, delivery: Delivery) -> None:
        task = delivery.envelope
        handler = self._table.get(task.type)
        if handler is None:
            raise UnknownMessageType(f"no handler for task type {task.type!r}")
        # The same task may arrive twice (an outbox row re-sent after a crash, a re-emitted
        # task): run in parallel, both copies would look for the resource, find none and
        # create two. One after the other, the second finds what the first made.
        async with self._one_at_a_time.hold(task_key(task)):
            await self._run(delivery, handler)

    async def _run(self, delivery: Delivery, handler: Handler) -> None:
        task = delivery.envelope
        started = time.perf_counter()
        outcome = "failed"
        with (
            tracer.start_as_current_span(
                f"task {task.type}",
                context=delivery.trace_context,
                attributes=_task_attributes(task, delivery.attempt),
                record_exception=False,
            ) as span,
            bound(cluster_id=task.subject, message_id=task.id, task=task.type),
        ):
            try:
                try:
                    reply = await handler(dict(task.data), self._deps)
                except Exception as exc:  # every handler error is classified, never fatal here
                    outcome = await self._failed(delivery, classify(exc), span)
                    return
                outcome = await self._publish_reply(task, reply)
            finally:
                span.set_attribute("clusterbus.outcome", outcome)
                HANDLER_DURATION.labels(task=task.type, outcome=outcome).observe(
                    time.perf_counter() - started
                )

    async def _publish_reply(self, task: Envelope, reply: Reply) -> str:
        for event in reply.events:
            await self._bus.publish(
                task.caused(event.type, event.data, source=self._source), exchange=None
            )
        if reply.retry_after_ms is not None:
            data = {**(reply.retry_data or task.data)}
            data["attempt"] = int(data.get("attempt", 0)) + 1
            again = task.caused(task.type, data, source=self._source)
            await self._bus.publish_delayed(again, target="tasks", delay_ms=reply.retry_after_ms)
            RETRIES.labels(reason="poll", type=task.type).inc()
        log.info(
            "task handled",
            extra={"events": [e.type for e in reply.events], "later_ms": reply.retry_after_ms},
        )
        return "later" if reply.retry_after_ms is not None else "done"

    async def _failed(
        self, delivery: Delivery, error: TransientError | TerminalError, span: Span
    ) -> str:
        task = delivery.envelope
        errors = delivery.attempt
        mark_error(span, type(error.__cause__ or error).__name__)
        if isinstance(error, TransientError) and errors < self._error_limit:
            log.warning(
                "task failed, will retry", extra={"error": str(error), "errors": errors + 1}
            )
            await self._retry_after_error(task, errors + 1)
            RETRIES.labels(reason="transient_error", type=task.type).inc()
            return "retry"
        reason = str(error) or type(error).__name__
        log.warning("task failed for good", extra={"reason": reason})
        await self._bus.publish(
            task.caused(*self._failure_event(task, reason), source=self._source), exchange=None
        )
        return "failed"

    async def _retry_after_error(self, task: Envelope, errors: int) -> None:
        again = task.caused(task.type, dict(task.data), source=self._source)
        properties = again.amqp_properties()
        properties["headers"][H_ATTEMPT] = errors
        raw = RawMessage(again.type, again.body(), properties)
        await self._bus.publish_delayed(raw, target="tasks", delay_ms=backoff_ms(errors - 1))

    @staticmethod
    def _failure_event(task: Envelope, reason: str) -> tuple[str, dict[str, Any]]:
        data: dict[str, Any] = {"cluster_id": task.subject, "reason": reason}
        machine_id = task.data.get("machine_id")
        event = FAILURE_EVENT.get(task.type, "task.failed")
        if event == "task.failed":
            data["task_type"] = task.type
        if machine_id:
            data["machine_id"] = machine_id
        return event, data


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def task_key(task: Envelope) -> str:
    """What makes two deliveries the same task: its type and data (the poll counter aside)."""
    data = {k: v for k, v in task.data.items() if k != "attempt"}
    return f"{task.type} {orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()}"


def attempt_of(data: dict[str, Any]) -> int:
    value = data.get("attempt", 0)
    return value if isinstance(value, int) else 0


def _task_attributes(task: Envelope, attempt: int) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "cluster.id": task.subject,
        "clusterbus.task": task.type,
        "messaging.message.id": task.id,
        "clusterbus.attempt": attempt_of(task.data),
        "clusterbus.errors": attempt,
    }
    machine_id = task.data.get("machine_id")
    if isinstance(machine_id, str):
        attributes["machine.id"] = machine_id
    return attributes


async def start_handlers(settings: Settings, bus: Bus, store: Any) -> HandlerRunner:
    """Consume every handler queue with one shared runner."""
    from engine.cloudpool import ThreadedCloudPool
    from engine.secrets import StoreSecrets
    from handlers import TASK_HANDLERS

    deps = Deps(clouds=ThreadedCloudPool(), secrets=StoreSecrets.from_settings(store, settings))
    runner = HandlerRunner(
        bus,
        TASK_HANDLERS,
        deps,
        source=f"{settings.source}/handlers",
        error_limit=settings.delivery_limit,
    )
    for queue in bus.names.handler_queues():
        await bus.consume(queue, runner.on_task, prefetch=settings.prefetch)
    return runner
