"""Temporaries that a killed write left behind: ``<name>.<pid>.tmp`` files or folders (and their ``.sum``
companions) whose writing process is gone. Live writers' temporaries are left alone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def remove_stale_temporaries(path: Path) -> None:
    for tmp in path.parent.glob(f"{path.name}.*.tmp*"):
        pid = tmp.name[len(path.name) + 1:].split(".")[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
