#!/usr/bin/env bash
# The dendrax benchmarks on one GPU (H100 or H200) in one run of under 6 minutes:
#   1. nvidia-smi, saved;
#   2. accuracy: the original README's 3 example rows (+ row (i) with resampling off),
#      16 seeds each, 15 epochs, full Fashion-MNIST;
#   3. throughput: dense (shared/own order, bf16/f32) at 1 … 8,192 models, gather (own/shared)
#      up to 512, the one-model loop and the NumPy original; it skips the cells that its
#      time budget cannot hold (each skip is printed and recorded);
#   4. a summary of both.
#
# Needs python3 with jax (CUDA), flax, optax, numpy and matplotlib; no network, and dendrax
# need not be installed (this script puts the repository on PYTHONPATH).
#
#   bash benchmarks/gpu.sh /path/to/fashion-mnist     # the folder with the four .gz files
#   DENDRAX_DATA_DIR=/path/to/fashion-mnist bash benchmarks/gpu.sh
#   GPU_SH_SMOKE=1 bash benchmarks/gpu.sh             # rehearsal on any CPU, ~2 minutes
#
# Results go to $OUT if set, else ./gpu-results: nvidia-smi.txt, gpu.log,
# throughput.json/.md/.png, accuracy.json/.md (7 files).
# Knobs (environment): GPU_SH_BUDGET (seconds for the whole script, default 330),
# GPU_SH_ACC_SEEDS (default 16), GPU_SH_POPULATIONS (default 1,8,64,512,2048,4096,8192),
# GPU_SH_ACC_ARGS / GPU_SH_TP_ARGS (extra flags for accuracy.py / throughput.py, appended
# so they win), PYTHON (default python3).
#
# On a GPU machine without network: copy the four .gz files next to the repository first,
# for example into out/fashion-mnist (git-ignored), then
#   bash benchmarks/gpu.sh out/fashion-mnist
set -euo pipefail
export PYTHONUNBUFFERED=1

START=$SECONDS
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
DEST=${OUT:-./gpu-results}
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"

DATA=${1:-${DENDRAX_DATA_DIR:-}}
SMOKE=${GPU_SH_SMOKE:-0}
BUDGET=${GPU_SH_BUDGET:-330}
SEEDS=${GPU_SH_ACC_SEEDS:-16}
POPULATIONS=${GPU_SH_POPULATIONS:-1,8,64,512,2048,4096,8192}

DATA_ARGS=()
[[ -n "$DATA" ]] && DATA_ARGS+=(--data-dir "$DATA")
if [[ "$SMOKE" == 1 ]]; then
  # Every code path, tiny sizes; the package's sample stands in when no data is given.
  DATA_ARGS+=(--allow-sample --subset 1024 --eval-subset 500)
  ACC_ARGS=(--seeds 2 --epochs 1)
  TP_ARGS=(--populations 1,2 --bf16-min-population 2 --gather-max-population 1 --epochs 1
           --loop-models 2 --numpy-epochs 1 --cell-cap 120)
  ACC_TIMEOUT=200
else
  export JAX_PLATFORMS=${JAX_PLATFORMS:-cuda}  # fail at once, rather than run on the CPU
  ACC_ARGS=(--seeds "$SEEDS" --epochs 15)
  TP_ARGS=(--populations "$POPULATIONS" --lowerings dense,gather --orders shared,own
           --dtypes bfloat16,float32 --bf16-min-population 1 --gather-max-population 512
           --epochs 2 --cell-cap 60 --loop-models 4 --numpy-epochs 2)
  ACC_TIMEOUT=120
fi

# Extra flags from the environment, appended last so that they override the above.
read -r -a EXTRA_ACC <<<"${GPU_SH_ACC_ARGS:-}"
read -r -a EXTRA_TP <<<"${GPU_SH_TP_ARGS:-}"
ACC_ARGS+=("${EXTRA_ACC[@]}")
TP_ARGS+=("${EXTRA_TP[@]}")

say() { echo "[gpu.sh $((SECONDS - START)) s] $*"; }

main() {
  say "repo $REPO, results in $DEST, data ${DATA:-(default places)}, smoke=$SMOKE," \
    "budget ${BUDGET} s"
  FAILED=()

  # 1. The machine.
  if command -v nvidia-smi >/dev/null; then
    { nvidia-smi && nvidia-smi --format=csv \
        --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit; } \
      >"$DEST/nvidia-smi.txt" 2>&1 || echo "(nvidia-smi failed)" >>"$DEST/nvidia-smi.txt"
  else
    echo "no nvidia-smi on this machine" >"$DEST/nvidia-smi.txt"
  fi
  head -n 15 "$DEST/nvidia-smi.txt"
  "$PY" -c 'import sys, jax, flax, optax, numpy, matplotlib as m
print("python", sys.version.split()[0], *(f"{x.__name__} {x.__version__}"
      for x in (jax, flax, optax, numpy, m)))'

  # The data, checked before any JAX work (numpy only, a second or two).
  "$PY" - "${DATA_ARGS[@]}" <<'EOF'
import argparse, sys
from dendrax.data import load_dataset
p = argparse.ArgumentParser()
p.add_argument("--data-dir"); p.add_argument("--allow-sample", action="store_true")
p.add_argument("--subset", type=int); p.add_argument("--eval-subset", type=int)
a = p.parse_args()
ds = load_dataset("fashion-mnist", data_dir=a.data_dir, download=False,
                  sources=("dir", "system") + (("sample",) if a.allow_sample else ()))
print(ds.summary())
EOF

  # 2. Accuracy.
  say "accuracy: ${ACC_ARGS[*]}"
  timeout -k 15 "$ACC_TIMEOUT" "$PY" "$REPO/benchmarks/accuracy.py" --out "$DEST" \
    "${ACC_ARGS[@]}" "${DATA_ARGS[@]}" || FAILED+=("accuracy (exit $?)")

  # 3. Throughput, in the time left (25 s kept for its start-up and the summary).
  LEFT=$((BUDGET - (SECONDS - START) - 25))
  if ((LEFT < 60)); then LEFT=60; fi
  say "throughput: budget ${LEFT} s: ${TP_ARGS[*]}"
  timeout -k 15 $((LEFT + 45)) "$PY" "$REPO/benchmarks/throughput.py" --out "$DEST" \
    --time-budget "$LEFT" "${TP_ARGS[@]}" "${DATA_ARGS[@]}" || FAILED+=("throughput (exit $?)")

  # 4. Summary.
  echo
  echo "================ summary ================"
  [[ -f "$DEST/throughput.md" ]] &&
    sed -n '/^## Model-epochs per second/,/^## Every cell/p' "$DEST/throughput.md" | sed '$d'
  [[ -f "$DEST/accuracy.md" ]] && grep '^|' "$DEST/accuracy.md"
  echo
  ls -l "$DEST"
  say "done in $((SECONDS - START)) s${FAILED:+; FAILED: ${FAILED[*]}}"
  ((${#FAILED[@]} == 0))
}

main 2>&1 | tee -a "$DEST/gpu.log"
exit "${PIPESTATUS[0]}"
