"""``cl-bench data fetch`` and ``cl-bench data index``: argument parsing and output (the work is in fetch.py and
split_index.py)."""

from __future__ import annotations

import os
from pathlib import Path

from cl_bench.errors import UserError


def add_parsers(dsub) -> None:
    f = dsub.add_parser("fetch", help="download, verify and unpack the datasets of a scenario, then check them")
    which = f.add_mutually_exclusive_group(required=True)
    which.add_argument("--scenario", help="every dataset of this scenario, e.g. mtil or cil-cifar100")
    which.add_argument("--dataset", nargs="+", metavar="NAME", help="these datasets, e.g. DTD EuroSAT")
    f.add_argument("--data-root", default=None, metavar="DIR", help="where the datasets go (default: "
                   "$CL_BENCH_DATA; created if absent)")
    f.add_argument("--mirror", action="append", default=[], metavar="KEY=URL",
                   help="replace a base URL of the source table (keys in docs/data-fetch.md), repeatable")
    f.add_argument("--keep-downloads", action="store_true", help="keep the archives after unpacking them")
    f.add_argument("--preprocess", action="store_true", help="then build the scenario's uint8 pixel cache")
    f.add_argument("--backbone", default=None, help="backbone whose image size the pixel cache uses "
                   "(default: the scenario's)")
    f.add_argument("--pretrained", default=None, help="its pretrained tag or weights file (default: the scenario's)")

    i = dsub.add_parser("index", help="write the split index of Caltech101, EuroSAT or SUN397 from a complete copy")
    i.add_argument("--dataset", required=True, help="Caltech101, EuroSAT or SUN397")
    i.add_argument("--data-root", default=None, metavar="DIR", help="folder holding the dataset")
    i.add_argument("--out", default=None, metavar="DIR", help="folder for <Dataset>.json (default: the one "
                   "shipped in the package, for maintainers)")


def _root(value: str | None) -> Path:
    raw = value or os.environ.get("CL_BENCH_DATA", "")
    if not raw:
        raise UserError("no data root: pass --data-root DIR or set CL_BENCH_DATA=DIR")
    return Path(raw).expanduser()


def _mirrors(items: list[str]) -> dict[str, str]:
    from .sources import BASES

    out = {}
    for item in items:
        key, sep, url = item.partition("=")
        if not sep or key not in BASES or not url:
            raise UserError(f"--mirror {item!r}: use KEY=URL with KEY one of {', '.join(BASES)}")
        out[key] = url
    return out


def _dataset_names(args) -> list[str]:
    from .sources import SOURCES

    if args.scenario:
        from cl_bench import registry  # imports every method plugin: only when a scenario is named

        scenario = registry.get_scenario(args.scenario)
        names = getattr(scenario.build, "datasets", None)
        if names is None:
            raise UserError(f"scenario {scenario.name} reads no data from disk; nothing to fetch (try mtil, "
                            "mtil-order2, mtil-fewshot, cil-cifar100 or cil-tinyimagenet)")
        return list(names)
    known = {k.lower(): k for k in SOURCES}
    unknown = [n for n in args.dataset if n.lower() not in known]
    if unknown:
        raise UserError(f"unknown dataset {unknown[0]!r}; choose from {', '.join(SOURCES)}")
    return list(dict.fromkeys(known[n.lower()] for n in args.dataset))


def cmd_fetch(args, console) -> int:
    from rich.markup import escape

    from .check import check_data
    from .fetch import build_pixel_cache, fetch

    if args.preprocess and not args.scenario:
        raise UserError("--preprocess builds a scenario's pixel cache: give --scenario instead of --dataset")
    names, root, bases = _dataset_names(args), _root(args.data_root), _mirrors(args.mirror)
    results = fetch(names, root, bases=bases, console=console, keep_downloads=args.keep_downloads)
    for r in results:  # one line per dataset that did not arrive: the manual recipe and where it goes
        if r.status in ("failed", "blocked"):
            console.print(f"[red]{escape(r.dataset)}[/red]: {escape(r.message)}", soft_wrap=True, highlight=False)
    rows = check_data(names, root)
    bad = [r for r in rows if r.status != "found"]
    console.print(f"data check: {len(rows) - len(bad)} of {len(rows)} datasets found under {root}"
                  + (f"; missing or wrong: {', '.join(r.dataset for r in bad)}" if bad else ""),
                  soft_wrap=True, highlight=False, markup=False)
    if bad:
        return 1
    if args.preprocess:
        build_pixel_cache(args.scenario, root, backbone=args.backbone, pretrained=args.pretrained, console=console)
    return 0


def cmd_index(args, console) -> int:
    from .split_index import write_index

    path = write_index(args.dataset, _root(args.data_root), args.out)
    console.print(f"wrote {path}", soft_wrap=True, highlight=False)
    return 0


DATA_COMMANDS = {"fetch": cmd_fetch, "index": cmd_index}
