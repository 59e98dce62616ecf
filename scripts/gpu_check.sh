#!/usr/bin/env bash
# One-shot GPU check (docs/bench.md), offline, within 8 minutes on one GPU:
#   1. `cl-bench bench` of finetune, lora and keeplora on ViT-B-16 with random weights (bf16, batch 64);
#   2. a 2-task MTIL run (keeplora, ViT-B-16, random weights) on the tests' miniature EuroSAT and MNIST;
#   3. one summary table, also written to $OUT/summary.json.
# GPU_CHECK_CPU=1: the same on CPU in a reduced mode (tiny backbone, a few steps), to test the script.
# Environment: PYTHON (default: ./.venv/bin/python if present, else python), OUT (default /tmp/gpu_check).
# Where open_clip/avalanche are not installed (the lent GPU machine), carry their wheels in .whl/ as
# scripts/device_grid.sh describes: they are installed to /tmp/site first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
OUT=${OUT:-/tmp/gpu_check}
CPU=${GPU_CHECK_CPU:-0}
mkdir -p "$OUT/bench" "$OUT/logs"
rm -rf "$OUT/runs" "$OUT/data" "$OUT/bench"/*.json
export CL_BENCH_CACHE=${CL_BENCH_CACHE:-$OUT/cache}
T0=$(date +%s)

if ! "$PY" -c "import open_clip, avalanche" 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  else
    echo "open_clip / avalanche are missing: pip install -e . (or carry their wheels in .whl/)" >&2; exit 1
  fi
fi
# This checkout's code and its method/scenario registrations, whether or not (or whatever) is pip-installed.
"$PY" scripts/gpu_check.py entry-points "$OUT/ep"
export PYTHONPATH=$PWD:$OUT/ep${PYTHONPATH:+:$PYTHONPATH}
CLB=("$PY" -m cl_bench)

if [ "$CPU" = 1 ]; then
  DEVICE=cpu; BACKBONE=tiny; BENCH=(--precision auto --batch-size 16 --steps 3 --warmup 1)
  RUN=(--set "epochs=[1,1]" --set iterations=3 --set batch_size=8 --set eval_batch_size=64)
else
  DEVICE=cuda; BACKBONE=ViT-B-16; BENCH=(--precision bf16 --batch-size 64 --steps 30 --warmup 10)
  RUN=(--set "epochs=[1,1]" --set iterations=20 --set batch_size=16 --set eval_batch_size=128)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$PY" -c "import torch, open_clip; print('torch', torch.__version__, '| open_clip', open_clip.__version__, '| cuda',
torch.cuda.is_available() and torch.cuda.get_device_name())"

step() {  # step NAME CMD...: run, keep the log, stop the script on failure with the log's end
  local name=$1; shift
  echo "== $name"
  if ! "$@" > "$OUT/logs/$name.log" 2>&1; then
    tail -30 "$OUT/logs/$name.log"; echo "FAILED: $name (log: $OUT/logs/$name.log)" >&2; exit 1
  fi
  tail -n 12 "$OUT/logs/$name.log"
}

for m in finetune lora keeplora; do
  step "bench-$m" "${CLB[@]}" bench --backbone "$BACKBONE" --pretrained none --method "$m" --device "$DEVICE" \
    "${BENCH[@]}" --out "$OUT/bench/$m.json"
done

step data "$PY" scripts/gpu_check.py data "$OUT/data" EuroSAT MNIST
t=$(date +%s)
step mtil "${CLB[@]}" run --method keeplora --scenario mtil --backbone "$BACKBONE" --pretrained none \
  --data-root "$OUT/data" --set "tasks=[EuroSAT,MNIST]" "${RUN[@]}" --device "$DEVICE" --quiet --out "$OUT/runs"
echo $(( $(date +%s) - t )) > "$OUT/mtil_seconds"

optional() {  # optional NAME CMD...: like step, but a failure is reported and the script goes on
  local name=$1; shift
  echo "== $name (optional)"
  if "$@" > "$OUT/logs/$name.log" 2>&1; then tail -n 12 "$OUT/logs/$name.log"
  else tail -20 "$OUT/logs/$name.log"; echo "optional step failed: $name"; fi
}
if [ "$CPU" != 1 ]; then  # the other numeric paths on the GPU: fp16 with its GradScaler, and torch.compile
  optional bench-lora-fp16 "${CLB[@]}" bench --backbone "$BACKBONE" --pretrained none --method lora \
    --device "$DEVICE" --precision fp16 --batch-size 64 --steps 30 --warmup 10 --out "$OUT/bench/lora-fp16.json"
  optional bench-lora-compile "${CLB[@]}" bench --backbone "$BACKBONE" --pretrained none --method lora \
    --device "$DEVICE" --precision bf16 --compile --batch-size 64 --steps 30 --warmup 10 \
    --out "$OUT/bench/lora-compile.json"
fi

"$PY" scripts/gpu_check.py summary "$OUT"
echo "gpu_check: $(( $(date +%s) - T0 )) s in all; outputs under $OUT"
