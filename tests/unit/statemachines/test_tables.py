"""The transition tables: every state reachable, diagrams up to date, API surface sound."""

from __future__ import annotations

from collections import deque
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from statemachines import MESSAGE_TYPES, ClusterState, MachineState
from statemachines.cluster import CLUSTER, CLUSTER_TRANSITIONS
from statemachines.diagrams import embed, render_mermaid
from statemachines.machine import MACHINE, MACHINE_TRANSITIONS

ROOT = Path(__file__).resolve().parents[3]


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def reachable(initial: Enum, table: list[dict[str, Any]]) -> set[Enum]:
    seen, todo = {initial}, deque([initial])
    while todo:
        state = todo.popleft()
        for row in table:
            if (
                state in _list(row["source"])
                and row["dest"] is not None
                and row["dest"] not in seen
            ):
                seen.add(row["dest"])
                todo.append(row["dest"])
    return seen


@pytest.mark.parametrize(
    ("states", "initial", "table"),
    [
        (ClusterState, ClusterState.ACCEPTED, CLUSTER_TRANSITIONS),
        (MachineState, MachineState.PENDING, MACHINE_TRANSITIONS),
    ],
)
def test_every_state_is_reachable_from_the_initial_one(
    states: type[Enum], initial: Enum, table: list[dict[str, Any]]
) -> None:
    assert reachable(initial, table) == set(states)


def test_only_deleted_is_final_and_every_live_state_can_be_deleted() -> None:
    for state in ClusterState:
        outgoing = [row for row in CLUSTER_TRANSITIONS if state in _list(row["source"])]
        assert bool(outgoing) == (state is not ClusterState.DELETED), state
    deletable = set(
        _list(next(r for r in CLUSTER_TRANSITIONS if r["trigger"] == "delete")["source"])
    )
    deleting = {s for s in ClusterState if s.value.startswith("deleting")} | {ClusterState.DELETED}
    assert deletable == set(ClusterState) - deleting


def test_machines_are_built_without_auto_transitions() -> None:
    for machine in (CLUSTER, MACHINE):
        assert not machine.auto_transitions
        assert not [name for name in machine.events if name.startswith("to_")]


def test_committed_diagrams_are_current() -> None:
    for name, text in render_mermaid().items():
        path = ROOT / "docs" / "diagrams" / name
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run `python -m statemachines.diagrams`"
        )


def test_lifecycle_doc_embeds_the_current_diagrams() -> None:
    doc = (ROOT / "docs" / "lifecycle.md").read_text(encoding="utf-8")
    assert "<!-- diagram:cluster.mmd -->" in doc and "<!-- diagram:machine.mmd -->" in doc
    assert embed(doc) == doc, "docs/lifecycle.md is stale: run `python -m statemachines.diagrams`"


def test_diagram_draws_every_row() -> None:
    text = render_mermaid()["machine.mmd"]
    assert "joining --> running: member_online" in text
    assert "pending --> creating: create [may_create]" in text


def test_message_types_cover_the_catalog() -> None:
    commands = {"cluster.create", "cluster.delete", "cluster.scale", "cluster.retry"}
    events = {
        f"{part}.{what}"
        for part, whats in {
            "network": ("ready", "failed", "deleted"),
            "security_groups": ("ready", "failed", "deleted"),
            "loadbalancer": ("created", "ready", "failed", "deleted"),
            "server": ("building", "active", "failed", "deleted"),
            "member": ("added", "online", "deleted"),
            "pki": ("ready", "deleted"),
            "floatingip": ("ready",),
        }.items()
        for what in whats
    }
    assert commands | events | {"task.failed", "cluster.reconcile"} == MESSAGE_TYPES
