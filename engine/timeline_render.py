"""Draw a ``Timeline`` as a standalone SVG (hand-written, no dependency) or an HTML page."""

from __future__ import annotations

import itertools
import math
from html import escape

from engine.timeline import Bar, Segment, Timeline

# Colours of the states a bar passes through (machine states, cluster phases, parts).
STATE_COLOURS: dict[str, str] = {
    "provisioning": "#8c6bb1",
    "creating": "#c6dbef",
    "building": "#6baed6",
    "provisioned": "#74c476",
    "joining": "#fd8d3c",
    "accepted": "#d9d9d9",
    "provisioning_network": "#dadaeb",
    "provisioning_security_groups": "#bcbddc",
    "provisioning_endpoint": "#9e9ac8",
    "provisioning_control_plane": "#807dba",
    "provisioning_workers": "#6a51a3",
    "failed": "#de2d26",
}
OTHER_COLOUR = "#bdbdbd"
PHASES = frozenset(s for s in STATE_COLOURS if s == "accepted" or s.startswith("provisioning_"))
DARK_PHASES = frozenset({"provisioning_control_plane", "provisioning_workers"})
CRITICAL = "#d62728"
FONT = "font-family='system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif' font-size='12'"
WIDTH, LABEL_W, RIGHT_W = 960, 170, 80
TOP, ROW_H, BAR_H = 78, 24, 14
CHART_W = WIDTH - LABEL_W - RIGHT_W


def seconds(value: float) -> str:
    """A duration for people: ``0.93 s``, ``12.5 s``, ``4m05s``, ``1h02m``."""
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)}m{int(value % 60):02d}s"
    return f"{int(value // 3600)}h{int(value % 3600 // 60):02d}m"


def tick_step(total: float, most: int = 8) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving at most ``most`` ticks."""
    if total <= 0:
        return 1.0
    raw = total / most
    power = 10 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def headline(timeline: Timeline) -> str:
    """One line: the cluster, its state and how long it took."""
    if timeline.ready_after is not None:
        return f"cluster {timeline.cluster_id}: ready after {seconds(timeline.ready_after)}"
    return f"cluster {timeline.cluster_id}: {timeline.state} after {seconds(timeline.total)}"


def path_line(timeline: Timeline) -> str:
    """The critical path as ``network → security groups → …``."""
    return " → ".join(bar.label for bar in timeline.critical_path)


def svg(timeline: Timeline) -> str:
    """The whole chart as one standalone SVG document."""
    scale = CHART_W / max(timeline.total, 1e-9)
    height = TOP + ROW_H * len(timeline.bars) + 56
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}' {FONT}>",
        f"<title>{escape(headline(timeline))}</title>",
        f"<rect width='{WIDTH}' height='{height}' fill='#ffffff'/>",
        f"<text x='12' y='24' font-size='16' font-weight='bold'>{escape(headline(timeline))}"
        "</text>",
        f"<text x='12' y='44' fill='{CRITICAL}'>critical path: {escape(path_line(timeline))}"
        "</text>",
        *_axis(timeline, scale, height),
        *_connectors(timeline, scale),
    ]
    for row, bar in enumerate(timeline.bars):
        parts.extend(_row(bar, TOP + row * ROW_H, scale))
    parts.extend(_legend(timeline, height - 22))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _x(at: float, scale: float) -> float:
    return round(LABEL_W + at * scale, 1)


def _axis(timeline: Timeline, scale: float, height: float) -> list[str]:
    step = tick_step(timeline.total)
    out = []
    for i in range(int(timeline.total / step + 1e-9) + 1):
        x = _x(i * step, scale)
        out.append(f"<line x1='{x}' y1='{TOP - 14}' x2='{x}' y2='{height - 44}' stroke='#eeeeee'/>")
        out.append(f"<text x='{x}' y='{TOP - 18}' text-anchor='middle' fill='#636363'>"
                   f"{escape(seconds(i * step))}</text>")  # fmt: skip
    return out


def _row(bar: Bar, top: float, scale: float) -> list[str]:
    mid, y = top + ROW_H / 2, top + (ROW_H - BAR_H) / 2
    weight = " font-weight='bold'" if bar.critical else ""
    colour = CRITICAL if bar.critical else "#252525"
    out = [f"<text x='{LABEL_W - 8}' y='{mid + 4}' text-anchor='end' fill='{colour}'{weight}>"
           f"{escape(bar.label)}</text>"]  # fmt: skip
    for seg in bar.segments:
        width = max((seg.end - seg.start) * scale, 1.0)
        fill = STATE_COLOURS.get(seg.state, OTHER_COLOUR)
        tip = f"{bar.label}: {seg.state} {seconds(seg.end - seg.start)}"
        out.append(
            f"<rect x='{_x(seg.start, scale)}' y='{y}' width='{width:.1f}' height='{BAR_H}' "
            f"fill='{fill}'><title>{escape(tip)}</title></rect>"
        )
        out.append(_phase_label(bar, seg, _x(seg.start, scale), width, y))
    out.append(_outline(bar, y, scale))
    out.append(f"<text x='{_x(bar.end, scale) + 6}' y='{mid + 4}' fill='#636363'>"
               f"{escape(_duration_label(bar))}</text>")  # fmt: skip
    return out


def _outline(bar: Bar, y: float, scale: float) -> str:
    width = max(bar.duration * scale, 1.0)
    stroke, dash = ("#969696", "")
    if bar.critical:
        stroke = CRITICAL
    if bar.outcome == "open":
        dash = " stroke-dasharray='4 3'"
    elif bar.outcome == "failed":
        stroke = STATE_COLOURS["failed"]
    size = 2 if bar.critical or bar.outcome == "failed" else 0.6
    return (f"<rect x='{_x(bar.start, scale)}' y='{y}' width='{width:.1f}' height='{BAR_H}' "
            f"fill='none' stroke='{stroke}' stroke-width='{size}'{dash}/>")  # fmt: skip


def _duration_label(bar: Bar) -> str:
    suffix = {"done": "", "open": " (unfinished)", "failed": " (failed)"}[bar.outcome]
    return seconds(bar.duration) + suffix


def _connectors(timeline: Timeline, scale: float) -> list[str]:
    """Dashed red links from each critical bar's end to the next one's start."""
    rows = {bar.key: i for i, bar in enumerate(timeline.bars)}
    chain = timeline.critical_path
    out = []
    for before, after in itertools.pairwise(chain):
        y1 = TOP + rows[before.key] * ROW_H + ROW_H / 2
        y2 = TOP + rows[after.key] * ROW_H + ROW_H / 2
        x1, x2 = _x(before.end, scale), _x(after.start, scale)
        out.append(f"<path d='M{x1},{y1} L{x1},{y2} L{x2},{y2}' fill='none' stroke='{CRITICAL}' "
                   "stroke-width='1' stroke-dasharray='3 2'/>")  # fmt: skip
    return out


def _legend(timeline: Timeline, y: float) -> list[str]:
    """Swatches of the states the part and machine bars use (phases are labelled in place)."""
    used = {seg.state for b in timeline.bars if b.kind != "cluster" for seg in b.segments}
    out, x = [], 12.0
    for state in (s for s in STATE_COLOURS if s in used and s not in PHASES):
        out.append(f"<rect x='{x}' y='{y - 10}' width='12' height='12' "
                   f"fill='{STATE_COLOURS[state]}'/>")  # fmt: skip
        out.append(f"<text x='{x + 16}' y='{y}' fill='#636363'>{escape(state)}</text>")
        x += 28 + 7 * len(state)
    out.append(f"<rect x='{x}' y='{y - 10}' width='24' height='12' fill='none' "
               f"stroke='{CRITICAL}' stroke-width='2'/>")  # fmt: skip
    out.append(f"<text x='{x + 30}' y='{y}' fill='{CRITICAL}'>critical path</text>")
    return out


def _phase_label(bar: Bar, seg: Segment, x: float, width: float, y: float) -> str:
    """The cluster phase's name inside its segment, when it fits."""
    if bar.kind != "cluster":
        return ""
    label = seg.state.removeprefix("provisioning_").replace("_", " ")
    if width < 7 * len(label) + 8:
        return ""
    colour = "#ffffff" if seg.state in DARK_PHASES else "#252525"
    return (f"<text x='{x + width / 2:.1f}' y='{y + BAR_H - 3}' text-anchor='middle' "
            f"font-size='11' fill='{colour}'>{escape(label)}</text>")  # fmt: skip


def html(timeline: Timeline) -> str:
    """A standalone page: the SVG chart and a table of every bar."""
    rows = "\n".join(
        f"<tr{' class=critical' if b.critical else ''}><td>{escape(b.label)}</td>"
        f"<td>{seconds(b.start)}</td><td>{seconds(b.end)}</td><td>{seconds(b.duration)}</td>"
        f"<td>{b.outcome}</td><td>{'yes' if b.critical else ''}</td></tr>"
        for b in timeline.bars
    )
    title = escape(headline(timeline))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #252525; }}
table {{ border-collapse: collapse; margin-top: 1.5em; }}
td, th {{ padding: 2px 12px; text-align: left; border-bottom: 1px solid #eee; }}
tr.critical td {{ color: {CRITICAL}; font-weight: bold; }}
</style></head>
<body>
<h1>{title}</h1>
<p>Critical path: {escape(path_line(timeline))}. Started {timeline.origin.isoformat()}.</p>
{svg(timeline)}
<table><thead><tr><th>part</th><th>start</th><th>end</th><th>took</th><th>outcome</th>
<th>critical</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""
