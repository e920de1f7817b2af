"""``clusterbus cluster timeline NAME``: where the time of a cluster's provisioning went."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from engine import timeline_render as render
from engine.cli.common import console, fail, run_plain
from engine.settings import load_settings
from engine.store import Store
from engine.store.rows import HistoryEntry
from engine.timeline import Bar, EmptyHistory, Timeline, build

FULL, OPEN = "█", "░"
MARKS = {"done": "", "open": " …", "failed": " ✗"}


async def read_history(name: str) -> list[HistoryEntry]:
    """The cluster's history rows, straight from the store (no broker needed)."""
    store = await Store.open(load_settings().store_url)
    try:
        return await store.history(name)
    finally:
        await store.close()


def bar_cells(bar: Bar, total: float, width: int) -> Text:
    """``width`` character cells; each cell drawn in the colour of the state at its middle."""
    text = Text()
    span = max(total, 1e-9)
    first = min(int(bar.start / span * width), width - 1)
    last = max(first + 1, min(width, round(bar.end / span * width)))
    text.append(" " * first)
    for cell in range(first, last):
        middle = min(max((cell + 0.5) * span / width, bar.start), bar.end)
        state = _state_at(bar, middle)
        colour = render.STATE_COLOURS.get(state, render.OTHER_COLOUR)
        text.append(OPEN if bar.outcome == "open" else FULL, style=colour)
    text.append(" " * (width - last))
    return text


def _state_at(bar: Bar, at: float) -> str:
    for seg in bar.segments:
        if seg.start <= at <= seg.end:
            return seg.state
    return "failed" if bar.outcome == "failed" else bar.segments[-1].state if bar.segments else ""


def terminal(timeline: Timeline, width: int = 60) -> Group:
    """The chart for a terminal: one row per bar, critical ones marked with ▶ in red."""
    table = Table("", "PART", "START", "TOOK", f"0 … {render.seconds(timeline.total)}", box=None)
    for bar in timeline.bars:
        style = "bold red" if bar.critical else ""
        took = render.seconds(bar.duration) + MARKS[bar.outcome]
        table.add_row(
            Text("▶" if bar.critical else "", style="red"),
            Text(bar.label, style=style),
            render.seconds(bar.start),
            Text(took, style=style),
            bar_cells(bar, timeline.total, width),
        )
    legend = Text("  ")
    for state in ("provisioning", "creating", "building", "provisioned", "joining"):
        legend.append(FULL, style=render.STATE_COLOURS[state]).append(f" {state}  ")
    return Group(
        Text(render.headline(timeline), style="bold"),
        Text(f"critical path: {render.path_line(timeline)}", style="red"),
        table,
        legend,
    )


def timeline(
    name: str,
    svg: Annotated[Path | None, typer.Option("--svg", help="also write an SVG picture")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="also write an HTML page")] = None,
    width: Annotated[int, typer.Option(help="bar width in characters")] = 60,
) -> None:
    """A Gantt chart of the cluster's provisioning from its history, critical path marked."""
    history = run_plain(lambda: read_history(name))
    try:
        chart = build(name, history)
    except EmptyHistory:
        raise fail(f"no cluster named {name} (no history recorded)") from None
    console.print(terminal(chart, max(width, 10)))
    for path, draw in ((svg, render.svg), (html, render.html)):
        if path is not None:
            path.write_text(draw(chart), encoding="utf-8")
            console.print(f"wrote {path}")
