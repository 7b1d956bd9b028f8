#!/usr/bin/env bash
# The one command to run first on a GPU (docs/gpu.md): what only a GPU can show about gpunet's CUDA kernels, the
# cheapest and most telling first, in at most 10 minutes, everything written to one folder.
#
#     bash tools/on_a_gpu.sh [FOLDER]        # FOLDER: default $OUT (the device tool's), else gpu-run-<UTC time>
#
# Run it from the checkout with CuPy installed (pip install -e '.[test,cuda12]', or cuda13). Where the
# project's pure-Python dependencies are not installed, put their wheels in .whl/: they go to /tmp/site.
# Each step has its own time limit and writes its own file; summary.txt gets one line per step and its exit status.
set -u
out=${1:-${OUT:-gpu-run-$(date -u +%Y%m%dT%H%M%SZ)}}
mkdir -p "$out" || exit 2
cd "$(dirname "$0")/.." || exit 2
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-deps --target /tmp/site .whl/*.whl > "$out/install.txt" 2>&1
    export PYTHONPATH=/tmp/site:$PWD
fi
step() {  # step NAME SECONDS COMMAND...: run it with a time limit, its output in NAME.txt
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    echo "$name rc=$? $((SECONDS - start))s" | tee -a "$out/summary.txt"
}
step gpu 10 nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv
# 1-2. Versions, the device's limits (the watchdog's cudaDevAttrKernelExecTimeout too), each instantiation's
# attributes, and the opt-in edge: a launch with exactly the opt-in, then 1 KiB less (does static shared count?).
step attributes 50 python3 tools/gpu_attributes.py
# 3. The self-check gpunet runs before it uses the kernel, with timings of the book's network and wider ones.
step check 140 python3 -m gpunet.kernels.cuda.check --device 0 --time 784,100,10/10/float32 \
    --time 784,30,10/10/float64 --json "$out/check.json"
# 4. The suite's GPU cases.
step pytest-gpu 140 python3 -m pytest -m gpu -p no:benchmark -p no:xdist -q -x tests/kernels/test_cuda_kernel.py \
    tests/kernels/test_score.py
# 5. The sanitizers a CPU cannot stand in for: out-of-bounds accesses, __syncthreads() misuse, shared-memory races.
for tool in memcheck synccheck racecheck; do
    step "sanitizer-$tool" 60 compute-sanitizer --tool "$tool" --error-exitcode 9 \
        python3 -m gpunet.kernels.cuda.check --device 0 --no-timing
done
echo "written to $out"
