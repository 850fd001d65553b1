#!/usr/bin/env bash
# The GPU items of benchmarks/README.md in one go, most important first, each under its own
# time limit so that one slow item cannot cost the others. Run from the repository root on a
# CUDA machine:
#
#     bash benchmarks/gpu_suite.sh [results dir, default results/bench_gpu] [ITEM ...]
#
# With ITEM names only those run (in the order below). PY names the interpreter (default
# .venv/bin/python). Every item writes NAME.json and NAME.log.
set -u
PY=${PY:-.venv/bin/python}
DEST=$(mkdir -p "${1:-results/bench_gpu}" && cd "${1:-results/bench_gpu}" && pwd)
shift || true
ONLY=" $* "
export PYTHONUNBUFFERED=1

item() {  # item NAME SECONDS SCRIPT ARGS...
    local name=$1 limit=$2 script=$3
    shift 3
    if [ "$ONLY" != "  " ] && [[ "$ONLY" != *" $name "* ]]; then return; fi
    echo "== $name ($(date +%T), limit ${limit}s)"
    timeout "$limit" "$PY" "benchmarks/$script" "$@" --json "$DEST/$name.json" >"$DEST/$name.log" 2>&1
    echo "exit $?"
    tail -n 12 "$DEST/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)"

# DDPM-256 UNet: fraction of bf16 peak as the workflow runs it (autocast, compiled)
item unet256_bf16_compile 150 bench_unet256.py --batch 64 128 --precision bf16 --compile --iters 10
# bf16 + compile against fp32 through the whole DDIM inversion and generation (PSNR), and diffusers' loop
item engine_bf16_compile 90 bench_engine.py --device cuda --precision bf16 --compile --n-images 256 \
    --batch 128 --reference-images 8 --repeats 2
# the same UNet with bf16 weights (GroupNorm in bf16, no autocast casts), then with inductor's autotuning
item unet256_bf16_weights_compile 100 bench_unet256.py --batch 128 --precision bf16 --cast weights --compile
item unet256_bf16_weights_autotune 170 bench_unet256.py --batch 128 --precision bf16 --cast weights --compile \
    --compile-mode max-autotune-no-cudagraphs
item engine_fp32 50 bench_engine.py --device cuda --precision fp32 --n-images 256 --batch 128 --reference-images 8
# the Jacobian rule's cost at 3x256x256 (random weights) and at the demo's 3x32x32
item jacobian_ddpm256 90 bench_jacobian.py --model ddpm256 --device cuda --batch 21 --t 100 500 900
item jacobian_demo32 35 bench_jacobian.py --device cuda --batch 42 --t 100 500 900
item unet256_bf16_eager 45 bench_unet256.py --batch 128 --precision bf16 --iters 10
item power_cuda 35 bench_power.py --n-maps 1000 --device cuda
