"""Rendering for the cluster commands: rich tables and the OpenSSH config (pure functions)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from statemachines.model import ClusterAggregate
from statemachines.states import Role

Json = dict[str, Any]
SSH_USER = "ubuntu"

STATE_STYLE = {"ready": "green", "failed": "red", "deleted": "dim", "running": "green"}
STATUS_STYLE = {"True": "green", "False": "red", "Unknown": "yellow"}


def _styled(value: str | None, styles: dict[str, str]) -> str:
    text = value or "-"
    style = styles.get(text)
    return f"[{style}]{text}[/]" if style else text


def cluster_table(rows: list[Json]) -> Table:
    table = Table("NAME", "STATE", "ENDPOINT", "CREATED", "REASON", box=None)
    for row in rows:
        table.add_row(
            row["cluster_id"],
            _styled(row["state"], STATE_STYLE),
            row["endpoint"] or "-",
            (row["created_at"] or "-")[:19],
            row["failure_reason"] or "",
        )
    return table


def print_snapshot(console: Console, snap: Json) -> None:
    """The ``cluster get`` table view."""
    console.print(f"[bold]{snap['cluster_id']}[/]  {_styled(snap['state'], STATE_STYLE)}")
    console.print(f"endpoint: {snap['endpoint'] or '-'}", highlight=False)
    if snap.get("failure_reason"):
        console.print(f"[red]failure:[/] {snap['failure_reason']}", highlight=False)
    conditions = Table("CONDITION", "STATUS", "REASON", "MESSAGE", "SINCE", box=None)
    for name, cond in snap["conditions"].items():
        conditions.add_row(
            name,
            _styled(cond["status"], STATUS_STYLE),
            cond["reason"],
            cond["message"],
            (cond["last_transition"] or "")[:19],
        )
    console.print(conditions)
    machines = Table("MACHINE", "ROLE", "STATE", "ADDRESS", "FAILURE", box=None)
    for m in snap["machines"]:
        machines.add_row(
            m["id"], m["role"], _styled(m["state"], STATE_STYLE), m["address"] or "-",
            m["failure"] or "",
        )  # fmt: skip
    console.print(machines)
    timings = Table("STATE", "ENTERED", box=None)
    for state, at in sorted(snap.get("timings", {}).items(), key=lambda item: item[1]):
        timings.add_row(state, at[:19])
    console.print(timings)


def ssh_config(agg: ClusterAggregate) -> str:
    """Host entries per machine (fixed address) with ProxyJump through the bastion's FIP."""
    bastion = next((m for m in agg.machines.values() if m.role is Role.BASTION), None)
    if bastion is None:
        raise ValueError(f"cluster {agg.id} has no bastion")
    if not bastion.floating_ip:
        raise ValueError(f"the bastion of {agg.id} has no floating IP yet ({bastion.state.value})")
    blocks = [_host(bastion.id, bastion.floating_ip, None)]
    for m in agg.machines.values():
        if m.role is not Role.BASTION and m.address:
            blocks.append(_host(m.id, m.address, bastion.id))
    return "\n".join(blocks)


def _host(alias: str, address: str, jump: str | None) -> str:
    lines = [f"Host {alias}", f"  HostName {address}", f"  User {SSH_USER}"]
    if jump:
        lines.append(f"  ProxyJump {jump}")
    return "\n".join(lines) + "\n"
