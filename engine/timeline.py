"""The Gantt chart of one cluster's provisioning, built from its history rows (pure, no I/O).

Every part (PKI, network, security groups, API endpoint) and every machine becomes a bar; the
critical path is the chain of bars that decided when the cluster became ready. The chain is found
through message ids: a bar that starts on the message that ended another bar depends on it (the
history records, for each transition, the id of the message that caused it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from engine.store.rows import HistoryEntry

Kind = Literal["cluster", "part", "machine"]
Outcome = Literal["done", "open", "failed"]
# Two transitions caused by one message carry one timestamp; this absorbs clock rounding only.
EPSILON_S = 1e-3
READY = "ready"
FAILED = "failed"
RUNNING = "running"


@dataclass(frozen=True)
class PartRule:
    """A part's bar: from the cluster transition into ``starts_in`` to the ``ends_on`` event."""

    key: str
    label: str
    starts_in: str
    ends_on: str


# PKI and the network both start on cluster.create (pki.ensure and network.ensure in parallel).
PARTS: tuple[PartRule, ...] = (
    PartRule("pki", "PKI", "provisioning_network", "pki.ready"),
    PartRule("network", "network", "provisioning_network", "network.ready"),
    PartRule(
        "security_groups",
        "security groups",
        "provisioning_security_groups",
        "security_groups.ready",
    ),
    PartRule("loadbalancer", "API endpoint (LB)", "provisioning_endpoint", "loadbalancer.ready"),
)


@dataclass(frozen=True)
class Segment:
    """A stretch of one bar spent in one state; times in seconds since the timeline's origin."""

    state: str
    start: float
    end: float


@dataclass(frozen=True)
class Bar:
    """One row of the chart."""

    key: str
    label: str
    kind: Kind
    start: float
    end: float
    segments: tuple[Segment, ...]
    start_message: str
    end_message: str | None
    outcome: Outcome
    critical: bool = False

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Timeline:
    """The chart of one cluster: ``bars[0]`` is the cluster's own phases."""

    cluster_id: str
    origin: datetime
    state: str
    ready_after: float | None
    total: float
    bars: tuple[Bar, ...]

    @property
    def critical_path(self) -> list[Bar]:
        """The critical bars in time order."""
        return sorted((b for b in self.bars if b.critical), key=lambda b: (b.start, b.end))


class EmptyHistory(ValueError):
    """The cluster has no recorded transition."""


def build(cluster_id: str, history: Sequence[HistoryEntry]) -> Timeline:
    """The provisioning timeline: from the first row to the first ``ready`` (or the last row)."""
    rows = _window([h for h in history if not h.ignored and h.at is not None])
    if not rows:
        raise EmptyHistory(f"no history for cluster {cluster_id}")
    origin = _at(rows[0])
    clock = {id(row): (_at(row) - origin).total_seconds() for row in rows}
    cluster_rows = [r for r in rows if r.machine_id is None]
    ready = next((r for r in cluster_rows if r.to_state == READY and r.from_state != READY), None)
    total = clock[id(rows[-1])]
    state = _last_state(cluster_rows)
    bars = [_cluster_bar(cluster_rows, clock, total, state)]
    bars += [b for rule in PARTS if (b := _part_bar(rule, cluster_rows, clock, total, state))]
    bars += sorted(_machine_bars(cluster_id, rows, clock, total), key=lambda b: (b.start, b.key))
    marked = mark_critical(bars, ready.message_id if ready else None)
    ready_after = clock[id(ready)] if ready else None
    return Timeline(cluster_id, origin, state, ready_after, total, tuple(marked))


def _at(row: HistoryEntry) -> datetime:
    assert row.at is not None  # filtered in build()
    return row.at


def _window(rows: list[HistoryEntry]) -> list[HistoryEntry]:
    """Rows of the provisioning: up to the first ready, and never past a delete request."""
    kept: list[HistoryEntry] = []
    for row in rows:
        if row.machine_id is None and row.trigger == "cluster.delete":
            break
        kept.append(row)
        if row.machine_id is None and row.to_state == READY and row.from_state != READY:
            break
    return kept


def _last_state(cluster_rows: Sequence[HistoryEntry]) -> str:
    return cluster_rows[-1].to_state if cluster_rows else "unknown"


def _segments(
    changes: Iterable[tuple[float, str]], end: float, stop_states: frozenset[str]
) -> tuple[Segment, ...]:
    """Consecutive (time, new state) changes as segments; a stop state closes the bar."""
    out: list[Segment] = []
    current: tuple[float, str] | None = None
    for at, state in changes:
        if current is not None and state != current[1] and at > current[0]:
            out.append(Segment(current[1], current[0], at))
        if current is None or state != current[1]:
            current = (at, state)
        if state in stop_states:
            return tuple(out)
    if current is not None and end > current[0]:
        out.append(Segment(current[1], current[0], end))
    return tuple(out)


def _cluster_bar(
    rows: Sequence[HistoryEntry], clock: dict[int, float], total: float, state: str
) -> Bar:
    changes = [(clock[id(r)], r.to_state) for r in rows if r.to_state != r.from_state]
    segments = _segments(changes, total, frozenset({READY}))
    end = segments[-1].end if segments else total
    outcome: Outcome = "done" if state == READY else "failed" if state == FAILED else "open"
    first = rows[0].message_id if rows else ""
    last = rows[-1].message_id if state == READY else None
    return Bar("cluster", "cluster", "cluster", 0.0, end, segments, first, last, outcome)


def _part_bar(
    rule: PartRule, rows: Sequence[HistoryEntry], clock: dict[int, float], total: float, state: str
) -> Bar | None:
    start = next((r for r in rows if r.to_state == rule.starts_in != r.from_state), None)
    if start is None:
        return None
    begin = clock[id(start)]
    end_row = next((r for r in rows if r.trigger == rule.ends_on and clock[id(r)] >= begin), None)
    end = clock[id(end_row)] if end_row else total
    outcome: Outcome = "done" if end_row else "failed" if state == FAILED else "open"
    segment = Segment("provisioning", begin, end)
    end_message = end_row.message_id if end_row else None
    return Bar(rule.key, rule.label, "part", begin, end, (segment,), start.message_id,
               end_message, outcome)  # fmt: skip


def _machine_bars(
    cluster_id: str, rows: Sequence[HistoryEntry], clock: dict[int, float], total: float
) -> list[Bar]:
    by_machine: dict[str, list[HistoryEntry]] = {}
    for row in rows:
        if row.machine_id is not None and row.to_state != "pending":
            by_machine.setdefault(row.machine_id, []).append(row)
    return [_machine_bar(cluster_id, mid, own, clock, total) for mid, own in by_machine.items()]


def _machine_bar(
    cluster_id: str,
    machine_id: str,
    rows: list[HistoryEntry],
    clock: dict[int, float],
    total: float,
) -> Bar:
    changes = [(clock[id(r)], r.to_state) for r in rows]
    segments = _segments(changes, total, frozenset({RUNNING, FAILED, "deleted"}))
    end_row = next((r for r in rows if r.to_state in (RUNNING, FAILED)), None)
    outcome: Outcome = "open"
    if end_row is not None:
        outcome = "done" if end_row.to_state == RUNNING else "failed"
    end = clock[id(end_row)] if end_row else total
    label = machine_id.removeprefix(f"{cluster_id}-")
    end_message = end_row.message_id if end_row else None
    return Bar(machine_id, label, "machine", changes[0][0], end, segments, rows[0].message_id,
               end_message, outcome)  # fmt: skip


def mark_critical(bars: Sequence[Bar], ready_message: str | None) -> list[Bar]:
    """``bars`` with ``critical`` set on the chain that ends the provisioning."""
    work = [b for b in bars if b.kind != "cluster"]
    if not work:
        return list(bars)
    tail = _tail(work, ready_message)
    chain: set[str] = set()
    bar: Bar | None = tail
    while bar is not None and bar.key not in chain:
        chain.add(bar.key)
        bar = _predecessor(bar, work)
    return [replace(b, critical=b.key in chain) for b in bars]


def _tail(work: Sequence[Bar], ready_message: str | None) -> Bar:
    """The bar whose end made the cluster ready, else the one that ended last."""
    enders = [b for b in work if ready_message is not None and b.end_message == ready_message]
    return max(enders or work, key=lambda b: (b.end, b.start))


def _predecessor(bar: Bar, work: Sequence[Bar]) -> Bar | None:
    """The bar whose last event started ``bar``; else the last one to end before it started."""
    before = [b for b in work if b.key != bar.key and b.end <= bar.start + EPSILON_S]
    by_message = [b for b in before if b.end_message == bar.start_message]
    if by_message:
        return max(by_message, key=lambda b: (b.end, b.start))
    # Nothing ended on the starting message: the start was the cluster's own first step.
    ended = [b for b in before if b.end > EPSILON_S and b.end_message is not None]
    if bar.start <= EPSILON_S or not ended:
        return None
    return max(ended, key=lambda b: (b.end, b.start))
