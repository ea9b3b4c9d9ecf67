"""The tables http_bench.py prints, and the section of docs/benchmarks.md it replaces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import Backlog, WrkResult

BEGIN = "<!-- bench:begin (written by bench/http_bench.py; edit the prose outside) -->"
END = "<!-- bench:end -->"


@dataclass(frozen=True)
class E2E:
    samples: list[Backlog]  # the first at the start of the load, the last at its end
    accepted_msg_s: float

    @property
    def delivered_msg_s(self) -> float:
        first, last = self.samples[0], self.samples[-1]
        return (last.delivered - first.delivered) / max(last.at - first.at, 1e-9)

    def marks(self) -> tuple[Backlog, Backlog, Backlog]:
        """Backlog early (the first sample under load), in the middle and at the end."""
        under_load = self.samples[1:] or self.samples
        middle = min(under_load, key=lambda s: abs(s.at - under_load[-1].at / 2))
        return under_load[0], middle, under_load[-1]

    @property
    def growth_msg_s(self) -> float:
        """How fast the backlog grew over the second half (negative: it shrank)."""
        _, middle, end = self.marks()
        return (end.pending - middle.pending) / max(end.at - middle.at, 1e-9)


@dataclass(frozen=True)
class Row:
    scenario: str
    label: str
    server: str
    numbers: int  # per request; 0 for answers that carry no message
    result: WrkResult
    peak_rss: int  # bytes
    e2e: E2E | None = None

    @property
    def req_s(self) -> float:
        """Accepted answers per second (answers that were not `0` do not count)."""
        return self.result.accepted / self.result.duration if self.result.duration else 0.0


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def markdown(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A Markdown table: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * w if i < left else "-" * (w - 1) + ":" for i, w in enumerate(widths)]
    return "\n".join([line(header), "|" + "|".join(f" {r} " for r in rule) + "|", *map(line, rows)])


def _ratio(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


MAIN_HEADER = [
    "scenario",
    "server",
    "req/s",
    "msg/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "peak RSS MB",
    "ratio to hello",
]


def main_table(rows: list[Row], hello: dict[str, float]) -> str:
    cells = []
    for row in rows:
        base = hello.get(row.server)
        cells.append(
            [
                row.label,
                row.server,
                _fmt(row.req_s),
                _fmt(row.req_s * row.numbers) if row.numbers else "-",
                f"{row.result.p50_ms:.1f}",
                f"{row.result.p99_ms:.1f}",
                str(row.result.errors),
                f"{row.peak_rss / 2**20:.0f}",
                _ratio(row.req_s / base) if base else "-",
            ]
        )
    return markdown(MAIN_HEADER, cells, left=2)


def e2e_table(rows: list[Row]) -> str:
    header = [
        "server",
        "accepted msg/s",
        "delivered msg/s",
        "backlog, not final: early / mid / end",
    ]
    header.append("backlog growth, 2nd half")
    cells = []
    for row in rows:
        if row.e2e is None:
            continue
        marks = " / ".join(f"{m.pending:,} at {m.at:.0f} s" for m in row.e2e.marks())
        growth = row.e2e.growth_msg_s
        cells.append(
            [
                row.server,
                _fmt(row.e2e.accepted_msg_s),
                _fmt(row.e2e.delivered_msg_s),
                marks,
                f"{growth:+,.0f} msg/s" + (" (grows)" if _grows(row.e2e) else " (steady)"),
            ]
        )
    return markdown(header, cells)


def error_notes(rows: list[Row]) -> list[str]:
    notes = []
    for row in rows:
        r = row.result
        if r.errors:
            total = r.requests + r.socket_errors
            notes.append(
                f"- {row.label} on {row.server}: {r.errors} errors of {total}"
                f" ({r.wrong} answers other than success, {r.socket_errors} without an answer)"
                + (f"; first: `{r.sample}`" if r.sample else "")
            )
    return notes


def report(intro: list[str], rows: list[Row], hello: dict[str, float], notes: list[str]) -> str:
    parts = ["\n".join(intro), main_table(rows, hello)]
    if any(row.e2e for row in rows):
        parts.append("End-to-end, accepted to `delivered` through the simulator:")
        parts.append(e2e_table(rows))
    all_notes = error_notes(rows) + [f"- {n}" for n in notes]
    if all_notes:
        parts.append("\n".join(all_notes))
    return "\n\n".join(parts) + "\n"


DOC_TEMPLATE = """\
# Benchmarks

Written by `make bench` (`bench/http_bench.py`, described in `bench/README.md`): it serves a
raw ASGI hello app and a real `smsgate serve` process on each HTTP server stack, drives them
with `wrk` over loopback, and replaces the section between the markers below with its latest
table. Edit the prose outside the markers; the table is rewritten on every run.

How to read it:

- **req/s** counts accepted answers only (`0`, or `0\\n<sent>,<balance>` for `/query`);
  **msg/s** is accepted requests times the numbers per request.
- **p50/p99** are wrk's latency percentiles over all answers.
- **errors** are answers other than success plus requests that got no answer; a run with
  errors says so under the table, with the first wrong answer.
- **peak RSS** is the highest summed resident memory of the server process and its workers,
  sampled from `/proc` during the load.
- **ratio to hello** is req/s over the hello app's req/s on the same server stack: the share of
  the server's bare throughput left once smsgate does its work.
- The end-to-end table shows whether delivery keeps up with accepting: messages still not in a
  final state, read from the database during the load. A backlog that grows in the second half
  by more than 2 % of the accepted rate means the dispatcher and simulator fall behind.

wrk, the servers and the database share the machine's cores; check the header for the
machine, its load average before the run, and the duration of each measurement (short runs
are smoke tests, not results).

{begin}
{end}
"""


def write_doc(path: Path, section: str) -> None:
    """Replace the text between the markers of ``path`` (created from a template)."""
    text = path.read_text() if path.exists() else DOC_TEMPLATE.format(begin=BEGIN, end=END)
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{BEGIN}\n{section}{END}{tail}")


# The backlog always moves by a dispatch round or so (claims of hundreds, receipts due in
# the simulator's delay): growth under 2 % of the accepted rate is noise, not falling behind.
STEADY_SHARE = 0.02


def _grows(e2e: E2E) -> bool:
    return e2e.growth_msg_s > STEADY_SHARE * e2e.accepted_msg_s
