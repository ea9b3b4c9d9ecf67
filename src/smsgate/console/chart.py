"""The dashboard's 30-day chart as inline SVG: one stacked bar per day, by state.

Drawn on the server, so it needs no script and no chart library; each bar has a
``<title>`` (a tooltip, and what a screen reader announces), and a table beside the
chart carries the same numbers.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from smsgate.core.reports import DaySummary

# Stack order and colours; any other state is drawn as "other".
STATES = ("delivered", "submitted", "accepted", "undelivered", "failed", "expired", "unknown")
WIDTH, HEIGHT, PAD = 600, 180, 20


def daily_bars(days: list[DaySummary], label: str) -> Markup:
    top = max((d.total for d in days), default=0) or 1
    step = (WIDTH - 2 * PAD) / max(len(days), 1)
    bar = max(step * 0.7, 1.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + PAD}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="none">',
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH - PAD}" y2="{HEIGHT}"/>',
    ]
    for i, day in enumerate(days):
        x = PAD + i * step + (step - bar) / 2
        y = float(HEIGHT)
        tip = f"{day.day.isoformat()}: {day.total} " + ", ".join(
            f"{state} {n}" for state, n in sorted(day.states.items())
        )
        parts.append(f"<g><title>{escape(tip)}</title>")
        for state in STATES:
            n = day.states.get(state, 0)
            if not n:
                continue
            h = (HEIGHT - PAD) * n / top
            y -= h
            parts.append(
                f'<rect class="s-{state}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}"/>'
            )
        parts.append("</g>")
        last = len(days) - 1
        if i == last or (i % 7 == 0 and last - i >= 4):  # labels never overlap
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{HEIGHT + 14}" text-anchor="middle">'
                f"{day.day.strftime('%m-%d')}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
