"""Per-task checkpoints that carry their run's identity and the finished task's results record.

The checkpoint of task t is written (atomically) *before* the results file that lists task t, and it holds
that task's results record. So after a kill at any instant the two differ by at most one task, and
``--resume`` can always continue: a checkpoint one task ahead replays its record into the results file
(docs/crash-consistency.md).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch

from . import faults
from .config import OPERATIONAL_KEYS, same_config
from .errors import UserError

FORMAT = 2


def run_identity(cfg) -> dict:
    """What makes a checkpoint this run's: method, scenario, seed, backbone and every hyper-parameter."""
    d = cfg.to_dict()
    return {k: d[k] for k in ("method", "scenario", "seed", "backbone", "pretrained", "params")}


def save(path: Path, *, task: int, identity: dict, model: dict, method: dict, record: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "task": task, "identity": identity, "model": model, "method": method,
                "record": record}, tmp)
    faults.point("checkpoint", task)
    os.replace(tmp, path)


def load(path: Path, device, identity: dict, operational: frozenset[str] = OPERATIONAL_KEYS) -> dict | None:
    """The checkpoint at ``path``, None when there is none; a one-line UserError when it is unreadable or
    belongs to another run (one that differs in more than its ``operational`` keys)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        raise UserError(f"cannot resume: checkpoint {path} is unreadable ({type(e).__name__}); delete it and "
                        "re-run without --resume") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"cannot resume: {path} is not a checkpoint of this cl-bench version; delete it and "
                        "re-run without --resume")
    diff = same_config(state["identity"], identity, operational)
    if diff:
        raise UserError(f"cannot resume: checkpoint {path} was written by another run (differs in "
                        f"{', '.join(diff)}); use that run's options, or delete it and re-run without --resume")
    return state


def remove_stale_temporaries(results_path: Path) -> None:
    """Temporaries a killed write left beside this run's results (its own names only: another run in the
    same folder may be writing its own)."""
    for tmp in results_path.parent.glob(results_path.name + "*.tmp"):
        tmp.unlink(missing_ok=True)
    for tmp in results_path.parent.glob(results_path.stem + ".ckpt.pt*.tmp"):
        tmp.unlink(missing_ok=True)
