"""The provisioning timeline from synthetic history rows: bars, critical path, rendering."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from engine import timeline_render as render
from engine.cli.timeline import terminal
from engine.store.rows import HistoryEntry
from engine.timeline import EmptyHistory, Timeline, build

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
Change = tuple[str | None, str, str]  # (machine id or None, from state, to state)


class History:
    """Rows as the processor writes them: every change of one message shares its id and time."""

    def __init__(self) -> None:
        self.rows: list[HistoryEntry] = []
        self._n = 0

    def message(self, at: float, trigger: str, *changes: Change, ignored: bool = False) -> str:
        self._n += 1
        mid = f"m{self._n}"
        for machine, old, new in changes:
            self.rows.append(
                HistoryEntry(
                    "c",
                    machine,
                    old,
                    new,
                    trigger,
                    mid,
                    ignored=ignored,
                    at=T0 + timedelta(seconds=at),
                )
            )
        return mid

    def cluster(self, at: float, trigger: str, old: str, new: str, *more: Change) -> str:
        return self.message(at, trigger, (None, old, new), *more)


def machine_run(h: History, machine: str, at: float, *, cp: bool, end_trigger: str) -> None:
    """creating (given) -> building -> provisioned -> (joining) -> running."""
    h.message(at + 1, "server.building", (machine, "creating", "building"))
    if cp:
        h.message(
            at + 5,
            "server.active",
            (machine, "building", "provisioned"),
            (machine, "provisioned", "joining"),
        )
        h.message(at + 7, end_trigger, (machine, "joining", "running"))
    else:
        h.message(
            at + 5,
            "server.active",
            (machine, "building", "provisioned"),
            (machine, "provisioned", "running"),
        )


def standard(*, pki_at: float = 2.0, worker_slow: float = 0.0) -> History:
    """network 0-4, SGs 4-5, LB 5-10, cp-0 10-17, cp-1 and md-0 from 17; ready at the last."""
    h, prov = History(), "provisioning_"
    h.cluster(0, "cluster.create", "accepted", prov + "network")
    h.cluster(4, "network.ready", prov + "network", prov + "security_groups")
    h.cluster(
        5,
        "security_groups.ready",
        prov + "security_groups",
        prov + "endpoint",
        ("c-bastion", "pending", "creating"),
    )
    machine_run(h, "c-bastion", 5, cp=False, end_trigger="")
    h.message(6, "cluster.reconcile", (None, prov + "endpoint", prov + "endpoint"), ignored=True)
    pki = (None, prov + "endpoint", prov + "endpoint")
    if pki_at < 10:
        h.message(pki_at, "pki.ready", pki)
        h.cluster(
            10,
            "loadbalancer.ready",
            prov + "endpoint",
            prov + "control_plane",
            ("c-control-plane-0", "pending", "creating"),
        )
        cp0 = 10.0
    else:
        h.message(10, "loadbalancer.ready", pki)
        h.cluster(
            pki_at,
            "pki.ready",
            prov + "endpoint",
            prov + "control_plane",
            ("c-control-plane-0", "pending", "creating"),
        )
        cp0 = pki_at
    h.rows.sort(key=lambda r: r.at or T0)
    machine_run(h, "c-control-plane-0", cp0, cp=True, end_trigger="member.online")
    start = cp0 + 7
    h.rows[-1:] = []  # cp-0 running and the next machines start on one message
    h.message(
        start,
        "member.online",
        ("c-control-plane-0", "joining", "running"),
        (None, prov + "control_plane", prov + "workers"),
        ("c-control-plane-1", "pending", "creating"),
        ("c-md-0", "pending", "creating"),
    )
    machine_run(h, "c-control-plane-1", start, cp=True, end_trigger="member.online")
    h.rows[-1:] = []
    md_done = start + 5 + worker_slow
    cp1_done = start + 7
    if md_done > cp1_done:
        h.message(cp1_done, "member.online", ("c-control-plane-1", "joining", "running"))
    h.message(start + 1, "server.building", ("c-md-0", "creating", "building"))
    last: list[Change] = [
        ("c-md-0", "building", "provisioned"),
        ("c-md-0", "provisioned", "running"),
    ]
    if md_done <= cp1_done:
        h.message(md_done, "server.active", *last)
        last = [("c-control-plane-1", "joining", "running")]
    h.message(max(md_done, cp1_done), "x.final", *last, (None, prov + "workers", "ready"))
    h.rows.sort(key=lambda r: r.at or T0)
    return h


def labels(timeline: Timeline) -> list[str]:
    return [bar.label for bar in timeline.critical_path]


def test_every_part_and_machine_is_a_bar_with_its_states() -> None:
    chart = build("c", standard().rows)
    bars = {bar.label: bar for bar in chart.bars}
    assert list(bars)[:5] == ["cluster", "PKI", "network", "security groups", "API endpoint (LB)"]
    assert {"bastion", "control-plane-0", "control-plane-1", "md-0"} <= set(bars)
    assert (bars["network"].start, bars["network"].end) == (0.0, 4.0)
    assert (bars["API endpoint (LB)"].start, bars["API endpoint (LB)"].end) == (5.0, 10.0)
    assert [s.state for s in bars["control-plane-0"].segments] == [
        "creating",
        "building",
        "joining",
    ]
    assert chart.ready_after == 24.0 and chart.state == "ready"
    assert all(bar.outcome == "done" for bar in chart.bars)


def test_critical_path_follows_the_messages_that_started_each_bar() -> None:
    chart = build("c", standard().rows)
    assert labels(chart) == [
        "network",
        "security groups",
        "API endpoint (LB)",
        "control-plane-0",
        "control-plane-1",
    ]


def test_a_late_pki_is_on_the_critical_path_instead_of_the_network() -> None:
    chart = build("c", standard(pki_at=12.0).rows)
    assert labels(chart) == ["PKI", "control-plane-0", "control-plane-1"]


def test_a_slow_worker_ends_the_critical_path() -> None:
    chart = build("c", standard(worker_slow=10.0).rows)
    assert labels(chart)[-2:] == ["control-plane-0", "md-0"]


def test_a_failed_cluster_shows_failed_and_unfinished_bars() -> None:
    h, prov = History(), "provisioning_"
    h.cluster(0, "cluster.create", "accepted", prov + "network")
    h.cluster(3, "network.failed", prov + "network", "failed")
    chart = build("c", h.rows)
    bars = {bar.label: bar for bar in chart.bars}
    assert chart.ready_after is None and chart.state == "failed"
    assert bars["network"].outcome == "failed" and bars["PKI"].outcome == "failed"
    assert bars["network"].end == 3.0
    assert "security groups" not in bars


def test_rows_after_ready_or_a_delete_are_not_part_of_the_provisioning() -> None:
    h = standard()
    h.message(40, "cluster.scale", (None, "ready", "scaling"), ("c-md-1", "pending", "creating"))
    chart = build("c", h.rows)
    assert "md-1" not in [bar.label for bar in chart.bars] and chart.total == 24.0
    deleted = History()
    deleted.cluster(0, "cluster.create", "accepted", "provisioning_network")
    deleted.cluster(2, "cluster.delete", "provisioning_network", "deleting_machines")
    assert build("c", deleted.rows).total == 0.0


def test_no_history_is_an_error() -> None:
    with pytest.raises(EmptyHistory):
        build("c", [])


def test_svg_is_standalone_xml_with_every_bar_and_the_critical_path() -> None:
    picture = render.svg(build("c", standard().rows))
    root = ET.fromstring(picture)
    assert root.tag.endswith("svg")
    text = " ".join(t for t in root.itertext())
    for label in ("PKI", "network", "bastion", "control-plane-1", "md-0", "ready after 24.0 s"):
        assert label in text
    assert picture.count(f"stroke='{render.CRITICAL}' stroke-width='2'") == 5 + 1  # + legend


def test_html_page_embeds_the_chart_and_a_table() -> None:
    page = render.html(build("c", standard().rows))
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert page.count("<tr class=critical>") == 5


def test_terminal_marks_the_critical_bars() -> None:
    console = Console(record=True, width=140)
    console.print(terminal(build("c", standard().rows), width=40))
    out = console.export_text()
    assert "critical path: network → security groups" in out
    assert sum(1 for line in out.splitlines() if line.lstrip().startswith("▶")) == 5


@pytest.mark.parametrize(
    ("value", "shown"), [(0.5, "0.50 s"), (12.34, "12.3 s"), (245, "4m05s"), (3720, "1h02m")]
)
def test_durations_read_naturally(value: float, shown: str) -> None:
    assert render.seconds(value) == shown


@pytest.mark.parametrize(
    ("total", "step"), [(3.38, 0.5), (4.4, 1.0), (24, 5.0), (600, 100.0), (0, 1.0)]
)
def test_axis_steps_are_round(total: float, step: float) -> None:
    assert render.tick_step(total) == step
