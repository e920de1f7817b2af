"""Mermaid state diagrams rendered from the transition tables; ``python -m statemachines.diagrams``.

Rewrites docs/diagrams/cluster.mmd and machine.mmd, and the copies embedded in docs/lifecycle.md
between ``<!-- diagram:NAME -->`` and ``<!-- /diagram:NAME -->`` (run from the repository root).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Any

from statemachines.cluster import CLUSTER_TRANSITIONS
from statemachines.machine import MACHINE_TRANSITIONS
from statemachines.states import ClusterState, MachineState

DIAGRAM_DIR = Path("docs/diagrams")
LIFECYCLE_DOC = Path("docs/lifecycle.md")


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [str(item.value) if isinstance(item, Enum) else str(item) for item in items]


def _label(row: dict[str, Any]) -> str:
    guards = _names(row.get("conditions"))
    trigger = str(row["trigger"])
    return trigger + (f" [{', '.join(guards)}]" if guards else "")


def render(title: str, states: Iterable[Enum], initial: Enum, table: list[dict[str, Any]]) -> str:
    """One ``stateDiagram-v2``: an arrow per (row, source); internal rows loop on their source."""
    lines = ["---", f"title: {title}", "---", "stateDiagram-v2", f"    [*] --> {initial.value}"]
    for row in table:
        for source in _names(row["source"]):
            dest = _names(row["dest"])
            target = dest[0] if dest else source
            lines.append(f"    {source} --> {target}: {_label(row)}")
    finals = [s.value for s in states if s.value in ("deleted",)]
    lines += [f"    {state} --> [*]" for state in finals]
    return "\n".join(lines) + "\n"


def render_mermaid() -> dict[str, str]:
    """File name -> mermaid text, for both machines."""
    return {
        "cluster.mmd": render("Cluster", ClusterState, ClusterState.ACCEPTED, CLUSTER_TRANSITIONS),
        "machine.mmd": render("Machine", MachineState, MachineState.PENDING, MACHINE_TRANSITIONS),
    }


def embed(markdown: str) -> str:
    """``markdown`` with every embedded diagram replaced by the current rendering."""
    for name, text in render_mermaid().items():
        block = f"<!-- diagram:{name} -->\n```mermaid\n{text}```\n<!-- /diagram:{name} -->"
        pattern = re.compile(
            rf"<!-- diagram:{re.escape(name)} -->.*?<!-- /diagram:{re.escape(name)} -->", re.S
        )
        markdown = pattern.sub(block.replace("\\", "\\\\"), markdown)
    return markdown


def write(directory: Path = DIAGRAM_DIR, doc: Path = LIFECYCLE_DOC) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_mermaid().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if doc.exists():
        doc.write_text(embed(doc.read_text(encoding="utf-8")), encoding="utf-8")
        written.append(doc)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else DIAGRAM_DIR):
        print(path)
