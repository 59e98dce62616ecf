"""`cl-bench data fetch`: download each dataset from the first source of its chain that works, unpack it into
a staging folder, let `check_data` accept it there, and only then move it under the data root
(docs/data-fetch.md). A dataset that no source delivers gets one line with its manual recipe."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from cl_bench.errors import UserError

from .check import CheckRow, check_data
from .download import DownloadError, download
from .sources import BASES, SOURCES, DatasetSources, HubSource, UrlSource
from .unpack import InstallError, run_steps

FETCH_DIR = ".cl-bench-fetch"  # under the data root (same filesystem, so moving a finished tree is a rename)


class SourceSkipped(Exception):
    """The source cannot be tried here (an optional package is missing)."""


@dataclass(frozen=True)
class FetchResult:
    dataset: str
    status: Literal["present", "fetched", "failed", "blocked"]
    source: str = ""  # the source that delivered it
    message: str = ""  # why it failed, with the manual recipe


def downloads_dir(root: Path) -> Path:
    return Path(root) / FETCH_DIR / "downloads"


def fetch(names: Iterable[str], root: str | Path, *, sources: Mapping[str, DatasetSources] | None = None,
          bases: Mapping[str, str] | None = None, console=None, keep_downloads: bool = False) -> list[FetchResult]:
    """Fetch every named dataset that `check_data` does not already find under ``root``.

    ``sources`` replaces the chain table (default `sources.SOURCES`), ``bases`` replaces base URLs of
    `sources.BASES` (a mirror, or a test server). Datasets already found are left alone; a dataset folder
    that exists but fails the check is never overwritten.
    """
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    table = {k.lower(): v for k, v in (sources or SOURCES).items()}
    urls = {**BASES, **(bases or {})}
    log = _logger(console)
    results = []
    with _progress(console) as progress:
        for name in names:
            row = check_data([name], root)[0]
            if row.status == "found":
                results.append(FetchResult(row.dataset, "present"))
                log(f"{row.dataset}: already under {row.path}")
                continue
            if row.status == "wrong layout":
                results.append(FetchResult(row.dataset, "blocked", message=(
                    f"{row.path} exists but data check rejects it ({row.message}); move it away and re-run")))
                continue
            chain = table.get(row.dataset.lower())
            if chain is None:
                raise UserError(f"no download sources known for {row.dataset}")
            results.append(_fetch_one(row, chain, root, urls, progress, log, keep_downloads))
    return results


def _fetch_one(row: CheckRow, chain: DatasetSources, root: Path, urls, progress, log, keep: bool) -> FetchResult:
    base_dir = Path(row.path).name
    stage = root / FETCH_DIR / "staging" / row.dataset
    reasons = []
    for source in chain.chain:
        files: dict[str, Path] = {}
        shutil.rmtree(stage, ignore_errors=True)
        tree = stage / "tree"
        tree.mkdir(parents=True)
        try:
            files = _download_source(source, root, urls, progress, log)
            log(f"{row.dataset}: unpacking")
            run_steps(source.steps, files, tree)
            staged = check_data([row.dataset], tree)[0]
            if staged.status != "found":
                raise InstallError(f"the unpacked files fail data check ({staged.status}: {staged.message})")
            os.replace(tree / base_dir, root / base_dir)  # the one step that makes the dataset visible
        except (DownloadError, InstallError, SourceSkipped) as err:
            if isinstance(err, InstallError):  # a file no checksum vouches for may be the broken part: re-download
                for path in _unchecked(source, files):
                    path.unlink(missing_ok=True)
            reasons.append(f"{source.describe()}: {err}")
            log(f"{row.dataset}: {source.describe()} failed: {err}")
            continue
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        if not keep:
            for path in files.values():
                path.unlink(missing_ok=True)
        log(f"{row.dataset}: fetched from {source.describe()}")
        return FetchResult(row.dataset, "fetched", source.describe())
    recipe = chain.manual.format(root=root)
    why = "; ".join(reasons) or "no source"
    return FetchResult(row.dataset, "failed", message=(
        f"not fetched ({why}). Manual: {recipe} (expected layout {root / row.layout})"))


def _unchecked(source, files: dict[str, Path]) -> list[Path]:
    """Downloaded files of ``source`` that had no checksum to verify them by."""
    if isinstance(source, UrlSource):
        return [files[f.name] for f in source.files if f.name in files and not (f.md5 or f.sha256)]
    return []  # Hub data files are LFS files, whose listing carries a SHA-256


def _download_source(source, root: Path, urls, progress, log) -> dict[str, Path]:
    if isinstance(source, UrlSource):
        out = {}
        for f in source.files:
            url = f"{urls[f.base or source.base].rstrip('/')}/{f.path}"
            out[f.name] = download(url, downloads_dir(root) / f.name, md5=f.md5, sha256=f.sha256, size=f.size,
                                   progress=progress, log=log)
        return out
    if isinstance(source, HubSource):
        return _download_hub(source, root, urls[source.base].rstrip("/"), progress, log)
    raise TypeError(f"unknown source {source!r}")


def _download_hub(source: HubSource, root: Path, endpoint: str, progress, log) -> dict[str, Path]:
    for module in ("huggingface_hub", *source.needs):
        if importlib.util.find_spec(module) is None:
            raise SourceSkipped(f"needs the {module} package (pip install {module})")
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=endpoint).dataset_info(source.repo, revision=source.revision, files_metadata=True)
    except Exception as err:  # huggingface_hub raises its own, httpx's or requests' errors depending on version
        raise DownloadError(f"cannot list {source.repo} on {endpoint} ({' '.join(str(err).split())[:200]})") from None
    siblings = info.siblings or []
    out = {}
    for pattern in source.patterns:
        chosen = [s for s in siblings if fnmatchcase(s.rfilename, pattern)]
        if not chosen:
            raise DownloadError(f"{source.repo}@{source.revision} has no file matching {pattern}")
        for s in chosen:
            url = f"{endpoint}/datasets/{source.repo}/resolve/{quote(source.revision, safe='')}/{quote(s.rfilename)}"
            dest = downloads_dir(root) / "hf" / source.repo / s.rfilename
            sha = s.lfs.sha256 if s.lfs is not None else None
            out[s.rfilename] = download(url, dest, sha256=sha, md5=source.md5.get(s.rfilename), size=s.size,
                                        progress=progress, log=log)
    return out


def _logger(console):
    if console is None:
        return lambda msg: None
    return lambda msg: console.print(msg, soft_wrap=True, highlight=False, markup=False)


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _progress(console):
    if console is None:
        return _NoProgress()
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=console, transient=True)


# --- --preprocess: the uint8 pixel cache of the scenario's images ------------------------------------------


def _image_files(name: str, root: Path, splits: tuple[str, ...]) -> int:
    """Images stored as files (the ones the pixel cache holds; CIFAR100 and MNIST are arrays) in ``splits``."""
    from ._common import ImageFileDataset
    from .cil_datasets import load_cil_split
    from .mtil_datasets import MTIL_DATASETS, get_spec, load_mtil_full, load_mtil_split

    if name in MTIL_DATASETS and get_spec(name).random_split:
        full = load_mtil_full(name, root)
        return len(full) if isinstance(full, ImageFileDataset) else 0
    load = load_mtil_split if name in MTIL_DATASETS else load_cil_split
    return sum(len(d) for d in (load(name, root, s) for s in splits) if isinstance(d, ImageFileDataset))


def build_pixel_cache(scenario_name: str, root: str | Path, *, backbone: str | None = None,
                      pretrained: str | None = None, overrides: Mapping | None = None, console=None) -> int:
    """Build the scenario's preprocessed-image cache now (instead of at the first run) by building the scenario
    with caching on; prints the size it will take first. Returns the bytes of cache files the scenario uses."""
    from cl_bench import registry
    from cl_bench.backbone import load_backbone
    from cl_bench.benchmarks.pixel_cache import CachedImageDataset, preprocessed_dir

    log = _logger(console)
    scenario = registry.get_scenario(scenario_name)
    names = list(scenario.data.datasets) if scenario.data is not None else None
    if names is None:
        raise UserError(f"scenario {scenario.name} reads no data from disk; --preprocess needs mtil, mtil-order2, "
                        "mtil-fewshot, cil-cifar100 or cil-tinyimagenet")
    params = {**scenario.defaults, **(overrides or {}), "data_root": str(root), "cache_preprocessed": True}
    names = list(params.get("tasks") or names)
    model = load_backbone(backbone or scenario.default_backbone, pretrained or scenario.default_pretrained)
    size = model.image_size
    splits = ("train", "test") if params.get("train_transform", "test") == "test" else ("test",)
    images = sum(_image_files(n, Path(root), splits) for n in names)
    folder = preprocessed_dir()
    free = shutil.disk_usage(_existing_parent(folder)).free
    log(f"pixel cache: up to {images:,} images at {size}x{size} px = {images * size * size * 3 / 2**30:.2f} GiB "
        f"in {folder} ({free / 2**30:.1f} GiB free)")
    built = scenario.build(params, model, 0)
    paths = {d.path for t in built.tasks for d in (t.train, t.test) if isinstance(d, CachedImageDataset)}
    total = sum(p.stat().st_size for p in paths)
    log(f"pixel cache built: {len(paths)} files, {total / 2**30:.2f} GiB")
    return total


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
