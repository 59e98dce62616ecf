#!/usr/bin/env bash
# Device (GPU) helper: install the carried wheels and cl-bench, then run a grid of runs in parallel.
# Usage: bash scripts/device_grid.sh GRIDFILE JOBS   (GRIDFILE: one `cl-bench run` argument list per line)
# Results come back as $OUT/runs.tar.gz (line i writes under runs/i/ with its arguments in runs/i/args).
# The device image has torch but not avalanche/open_clip. Before the call, here:
#   - download cp312 wheels (see the device tool's README) into .whl/: avalanche-lib==0.6.0 open_clip_torch==3.3.0
#     ftfy wcwidth dill gdown pytorchcv qpsolvers wandb sentry-sdk gitpython gitdb smmap setproctitle
#     beautifulsoup4 soupsieve, plus `pip wheel --no-deps -w .whl gputil` (it has no wheel on PyPI);
#   - copy the cached tiny backbone ($CL_BENCH_CACHE/backbones/tiny-*) into .devcache/backbones/;
#   - carry [".whl", ".devcache", <the folder holding GRIDFILE>] (all git-ignored via .git/info/exclude).
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
