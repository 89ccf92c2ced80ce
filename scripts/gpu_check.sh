#!/usr/bin/env bash
# The GPU check, for a lent CUDA machine (no network there, about 15 minutes of device time in all,
# start-up included; this script takes at most about 8). Run from the repository root through the
# device tool, for instance:
#
#   run(command="bash scripts/gpu_check.sh", timeout_s=560, carry=[".gpu_wheels"])
#
# It uses the machine's own python3 (which holds torch and Triton) with this checkout on PYTHONPATH:
# no virtual environment, no build, nothing fetched. Wheels of packages the image lacks (the peers
# and tomli-w) travel in .gpu_wheels/ when it exists, made here beforehand with
#
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .gpu_wheels \
#       tomli-w snntorch==1.0.0 spikingjelly==2.0.0 norse==1.1.0
#
# and ignored by git (echo /.gpu_wheels/ >> .git/info/exclude), then named in `carry`. Steps, each
# under `timeout`, in priority order: versions; the tests that need CUDA (Triton kernels compiled,
# every mixer on the device, the bench's GPU path); then `neurotoken bench --device cuda` case by
# case (LIF, scan, selective scan, block-sparse attention, bit-packed AND scores, event-linear, SNN step). Everything lands in $OUT (or
# ./gpu_check_out): gpu_check.log and one bench_<case>.json per case.
set -u
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
start=$SECONDS
step() { echo; echo "=== $1 (at ${SECONDS}s)"; }

step "versions"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv || true
$PY -c "import sys, torch, triton; print('python', sys.version.split()[0], '| torch', torch.__version__,
'| cuda', torch.version.cuda, '| triton', triton.__version__, '|', torch.cuda.get_device_name())"

if compgen -G ".gpu_wheels/*.whl" > /dev/null; then
    step "installing the carried wheels (no index, no dependencies)"
    timeout 60 $PY -m pip install -q --no-deps --no-index .gpu_wheels/*.whl || echo "wheel install failed"
fi
$PY - <<'PY'
import importlib.util
for name in ("numba", "hypothesis", "pytest", "tomli_w", "snntorch", "spikingjelly", "norse"):
    print(f"{name}: {'present' if importlib.util.find_spec(name) else 'MISSING'}")
PY

step "tests that need CUDA (compiled Triton kernels, mixers on the device, the bench's GPU path)"
XDIST=$($PY -c "import xdist" 2>/dev/null && echo "-n 8")
timeout 150 $PY -m pytest -q -m "not slow" -p no:cacheprovider $XDIST \
    tests/kernels/test_triton_*.py tests/test_device.py \
    tests/test_bench.py::test_quick_gpu_run_times_every_gpu_case_with_peak_memory
echo "tests exit status $?"

step "neurotoken bench --device cuda, case by case"
budget() { # seconds for a case, at most $1, so that the whole script stays within 480 s
    local left=$((480 - (SECONDS - start)))
    echo $(( left < $1 ? (left > 0 ? left : 1) : $1 ))
}
for spec in lif:60 scan:70 selective-scan:60 blocksparse:100 attention:30 event-linear:50 snn-step:50; do
    case_=${spec%%:*}
    limit=$(budget "${spec##*:}")
    step "bench $case_ (timeout ${limit}s)"
    dir=$(mktemp -d)
    timeout "$limit" $PY -m neurotoken bench --device cuda --case "$case_" --repeats 5 --out "$dir"
    echo "bench $case_ exit status $?"
    for f in "$dir"/*/results.json; do [ -e "$f" ] && cp "$f" "$OUT/bench_$case_.json"; done
done
step "done in ${SECONDS}s"
