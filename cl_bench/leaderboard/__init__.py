"""Leaderboards: results files of one scenario -> tables of mean ± std over seeds, beside the papers' numbers.

``load_runs`` (runs.py) reads results files, ``build_leaderboard`` (build.py) turns them into a
``Leaderboard`` of plain data (model.py), and ``to_markdown`` (markdown.py), ``to_csv`` (csv_export.py) and
cl_bench/render.py's ``print_leaderboard`` format it.
"""

from .build import build_leaderboard
from .csv_export import CSV_COLUMNS, to_csv
from .markdown import to_markdown
from .model import Cell, Cost, Delta, Excluded, Leaderboard, Provenance, Row, Table
from .runs import PATH_KEY, load_runs
from .text import format_cell, format_delta, summary

__all__ = [
    "CSV_COLUMNS", "PATH_KEY", "Cell", "Cost", "Delta", "Excluded", "Leaderboard", "Provenance", "Row", "Table",
    "build_leaderboard", "format_cell", "format_delta", "load_runs", "summary", "to_csv", "to_markdown",
]
