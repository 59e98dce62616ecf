#!/usr/bin/env bash
# Device helper: a grid of `cl-bench run`s on the lent machine's CPU cores (one thread each), in parallel with
# whatever else the call runs (scripts/gpu_check.sh on its GPU), stopped at a deadline.
# Usage: bash scripts/device_grid.sh GRIDFILE JOBS SECONDS
#   GRIDFILE: one `cl-bench run` argument list per line; line i writes under $RUNS/i with its arguments in
#   $RUNS/i/args. Runs still going at the deadline are interrupted (their results say so); the results come
#   back as $OUT/runs.tar.gz.
# The machine has torch but not avalanche/open_clip: carry their wheels in .whl/ (see scripts/gpu_check.sh),
# and the tiny backbone cache ($CL_BENCH_CACHE/backbones/tiny-*) in .devcache/backbones/ (both git-ignored).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
grid=$1; jobs=${2:-8}; seconds=${3:-480}; RUNS=${RUNS:-/tmp/runs}
if ! python3 -c "import open_clip, avalanche" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 scripts/gpu_check.py entry-points /tmp/ep
export PYTHONPATH=$PWD:/tmp/ep${PYTHONPATH:+:$PYTHONPATH} CL_BENCH_CACHE=${CL_BENCH_CACHE:-$PWD/.devcache}
mkdir -p "$RUNS"
t0=$(date +%s)
nl -ba -w1 -s' ' "$grid" | timeout -s INT "$seconds" xargs -P "$jobs" -L 1 bash -c 'i=$1; shift; mkdir -p '"$RUNS"'/$i;
  echo "$@" > '"$RUNS"'/$i/args; python3 -m cl_bench run --quiet --device cpu --out '"$RUNS"'/$i "$@" \
  > '"$RUNS"'/$i/log 2>&1 || echo "FAILED $i: $*"' _
echo "grid: $(( $(date +%s) - t0 )) s; finished: $(grep -l '"status": "finished"' -r "$RUNS" --include=seed*.json | wc -l)"
tar czf "$OUT/runs.tar.gz" -C "$RUNS" .
