"""A leaderboard as GitHub markdown: deterministic for the same inputs (stable order, fixed formatting, no
timestamps), so published leaderboards diff cleanly."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .model import Leaderboard
from .text import (
    EXCLUDED_HEADER,
    LEGEND,
    cost_rows,
    describe,
    excluded_cells,
    provenance_lines,
    summary,
    table_cells,
    table_header,
)


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return [_md_row(header), "|" + "---|" * len(header), *(_md_row(r) for r in rows)]


def to_markdown(lb: Leaderboard) -> str:
    """GitHub markdown: a ranked summary, a section per metric table, cost, not-included runs, notes, provenance."""
    out = [f"# Leaderboard: {lb.scenario}", "", describe(lb), "", LEGEND, ""]
    out += ["## Summary (ranked by Last)", ""] + _md_table(*summary(lb)) + [""]
    for table in lb.tables:
        out += [f"## {table.title}", ""]
        out += _md_table(table_header(table), (table_cells(table, row) for row in table.rows))
        out.append("")
    out += ["## Cost", ""] + _md_table(*cost_rows(lb)) + [""]
    if lb.excluded:
        out += ["## Not included (not finished)", ""]
        out += _md_table(EXCLUDED_HEADER, map(excluded_cells, lb.excluded)) + [""]
    if lb.notes:
        out += ["## Notes", ""] + [f"- {n}" for n in lb.notes] + [""]
    out += ["## Provenance", ""] + [f"- {line}" for line in provenance_lines(lb)]
    return "\n".join(out) + "\n"
