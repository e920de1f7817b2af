"""``cluster watch``: a live rich display driven by notifications, until ready or failed."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from engine.client import ClusterClient

Json = dict[str, Any]
FINAL = ("ready", "failed", "deleted")
# The provisioning phases in order: the bar shows how far along the cluster is.
PHASES = (
    "accepted",
    "provisioning_network",
    "provisioning_security_groups",
    "provisioning_endpoint",
    "provisioning_control_plane",
    "provisioning_workers",
    "ready",
)


def _progress_of(state: str) -> int:
    return PHASES.index(state) if state in PHASES else 0


def _machines_line(snap: Json) -> str:
    parts = []
    for role, counts in sorted(snap.get("machine_counts", {}).items()):
        total = sum(counts.values())
        running = counts.get("running", 0)
        parts.append(f"{role} {running}/{total}")
    return ", ".join(parts) or "no machines yet"


def describe(note: Json) -> str:
    """One line per notification."""
    who = note.get("machine_id") or note["cluster_id"]
    return f"{note['time'][11:19]} {who}: {note.get('from_state') or '-'} -> {note['to_state']}"


async def follow(client: ClusterClient, name: str, within: float, console: Console) -> str | None:
    """Print progress; returns the final state (or the last seen on timeout; None if absent)."""
    notes = await client.subscribe(name)  # bound before reading the store: nothing missed
    try:
        snap = await client.get(name)
        if snap is None:
            return None
        deadline = time.monotonic() + within
        progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
            console=console, transient=True,
        )  # fmt: skip
        with progress:
            bar = progress.add_task(name, total=len(PHASES) - 1)
            while snap["state"] not in FINAL and time.monotonic() < deadline:
                _update(progress, bar, snap)
                try:
                    note = await notes.next(within=min(5.0, deadline - time.monotonic()))
                except TimeoutError:
                    snap = await client.get(name) or snap  # re-read: notifications are hints
                    continue
                progress.console.print(describe(note), highlight=False)
                if note["type"] == "cluster.state_changed":
                    snap = note["snapshot"]
        return _finish(console, snap)
    finally:
        await notes.close()


def _update(progress: Progress, bar: Any, snap: Json) -> None:
    text = f"{snap['cluster_id']} {snap['state']} ({_machines_line(snap)})"
    progress.update(bar, description=text, completed=_progress_of(snap["state"]))


def _finish(console: Console, snap: Json) -> str:
    state: str = snap["state"]
    if state == "ready":
        console.print(f"[green]{snap['cluster_id']} is ready[/]: {snap['endpoint']}")
    elif state == "failed":
        console.print(f"[red]{snap['cluster_id']} failed[/]: {snap.get('failure_reason')}")
    else:
        console.print(f"{snap['cluster_id']} is {state}")
    return state
