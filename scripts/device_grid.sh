#!/usr/bin/env bash
# Device (GPU) helper: install the carried wheels and cl-bench, then run a grid of runs in parallel.
# Usage: bash scripts/device_grid.sh GRIDFILE JOBS   (GRIDFILE: one `cl-bench run` argument list per line)
# Results come back as $OUT/runs.tar.gz (line i writes under runs/i/ with its arguments in runs/i/args).
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . || exit 1
export PYTHONPATH=/tmp/site CL_BENCH_CACHE=$PWD/.devcache
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
grid=$1; jobs=${2:-8}; runs=/tmp/runs
mkdir -p $runs
t0=$(date +%s)
nl -ba -w1 -s' ' "$grid" | xargs -P "$jobs" -L 1 bash -c 'i=$1; shift; mkdir -p '$runs'/$i; echo "$@" > '$runs'/$i/args;
  python3 -m cl_bench run --quiet --out '$runs'/$i "$@" > '$runs'/$i/log 2>&1 || echo "FAILED $i: $*"' _
echo "grid wall time: $(( $(date +%s) - t0 )) s"
tar czf "$OUT/runs.tar.gz" -C $runs .
