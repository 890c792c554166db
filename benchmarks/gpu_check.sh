#!/usr/bin/env bash
# One prepared GPU check for skhftt, under 8 minutes on one GPU.
#
# Run from the repository root on a CUDA machine whose python3 has torch,
# transformers and sentence-transformers (the device image has them); missing
# pure-Python packages can be carried as wheels in .whl/ (installed first).
# Prints, each on CUDA:
#   1. the gpu-marked tests (fail, not skip, when no GPU is seen);
#   2. images/s of the full-size random-weight ViT-B/32 pipeline (fp16
#      autocast) against the forward pass alone;
#   3. one ImageNet-scale training epoch on realistic embeddings, trained on
#      the GPU (the per-step comparisons of bench_training stay on the CPU);
#   4. scoring 10M precomputed embeddings against a 1,010-column head: the
#      numpy streaming path, on the machine's CPU cores (it has no GPU path).
# Everything it writes goes to ${OUT:-/tmp/skhftt-gpu} (log.txt has all of it).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/skhftt-gpu}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python=${PYTHON:-python3}
started=$SECONDS
status=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, record failures
    local name=$1 limit=$2; shift 2
    echo; echo "=== $name (limit ${limit}s)"
    local began=$SECONDS
    timeout "$limit" "$@" || { echo "!!! $name failed (exit $?)"; status=1; }
    echo "=== $name: $((SECONDS - began)) s"
}

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    $python -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$python - <<'PY' || exit 1
import importlib, sys
import torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
missing = [m for m in ("sklearn", "scipy", "sentence_transformers", "transformers",
                       "safetensors", "filelock", "pyarrow", "PIL", "pytest", "psutil")
           if importlib.util.find_spec(m) is None]
if missing or not torch.cuda.is_available():
    sys.exit(f"ERROR: missing {missing} or no CUDA; carry wheels in .whl/ (see docs/scale.md)")
PY

step "gpu tests" 120 env SKHFTT_REQUIRE_GPU=1 $python -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider
step "pipeline ViT-B/32" 150 $python benchmarks/bench_encode.py --device cuda \
    --precision fp16 --n-images 2048 --batch-size 256 --round-size 512
step "training epoch" 150 $python benchmarks/bench_training.py --device cuda
step "scoring 10M embeddings (CPU)" 150 $python benchmarks/bench_scoring.py \
    --n 10000000 --shard-rows 1000000 --repeats 1 --no-dask
echo; echo "=== gpu_check total: $((SECONDS - started)) s, status $status"
exit $status
