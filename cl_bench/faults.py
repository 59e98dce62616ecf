"""Named kill points for crash-consistency tests (docs/crash-consistency.md).

``CL_BENCH_KILL_AT=phase:task`` makes the run kill itself when it reaches that phase of that task, with
``CL_BENCH_KILL_SIGNAL`` (KILL, the default, or INT for a Ctrl-C). Unset, every point is a no-op.
Phases: ``train`` (mid-training), ``eval`` (mid-evaluation), ``checkpoint`` (checkpoint written to its
temporary name, not yet renamed), ``commit`` (checkpoint in place, results not yet written), ``results``
(results written), ``final`` (last results written, leftover checkpoint not yet removed).
"""

from __future__ import annotations

import os
import signal

PHASES = ("train", "eval", "checkpoint", "commit", "results", "final")


def point(phase: str, task: int) -> None:
    if os.environ.get("CL_BENCH_KILL_AT") == f"{phase}:{task}":
        sig = getattr(signal, "SIG" + os.environ.get("CL_BENCH_KILL_SIGNAL", "KILL"))
        os.kill(os.getpid(), sig)
