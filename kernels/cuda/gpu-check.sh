#!/usr/bin/env bash
# One-shot GPU check of @sparse/kernels-cuda, run from the repository root on a machine with a CUDA
# GPU: builds (when nvcc is there; otherwise uses the carried kernels/cuda/build), runs the standalone
# test program, the Node-side GPU tests, and the benchmarks, and writes everything as JSON into $OUT
# (or ./gpu-results). Downloads nothing. Exits non-zero when any step fails. Sized to finish in well
# under 8 minutes on an H100 (each step has its own timeout; the benchmark repetitions are bounded).
#
#   kernels/cuda/gpu-check.sh            tests + full benchmark
#   GPU_CHECK_QUICK=1 kernels/cuda/gpu-check.sh   tests + the benchmark with fewer repetitions
#   GPU_CHECK_SANITIZE=1 ...                        also the small tests under compute-sanitizer
#                                                   (adds up to 150 s; leave it off for the 8-minute run)
#
# Files written: env.txt (nvidia-smi, versions), build.log, gpu-test.json / gpu-test.log (tests and
# benchmark of the test program), cusparselt.json / cusparselt.log (cuSPARSELt vs ours, when found),
# node-gpu.json / node-gpu.log (Node-side GPU checks), summary.json.
set -u
ROOT=$(pwd)
PKG="$ROOT/kernels/cuda"
if [ ! -f "$PKG/native/kernels.h" ]; then
  echo "gpu-check.sh: run it from the repository root (kernels/cuda/native/kernels.h not found under $ROOT)" >&2
  exit 2
fi
RESULTS="${OUT:-$ROOT/gpu-results}"
mkdir -p "$RESULTS"
START=$(date +%s)
STEPS=()
FAILED=0

# step NAME TIMEOUT_S COMMAND...: runs the command with a timeout, logging to $RESULTS/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  local t0 rc
  t0=$(date +%s)
  echo "== $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" > >(tee "$RESULTS/$name.log") 2>&1
  rc=$?
  local secs=$(( $(date +%s) - t0 ))
  echo "== $name: exit $rc after ${secs}s"
  STEPS+=("{\"name\": \"$name\", \"exit\": $rc, \"seconds\": $secs}")
  [ "$rc" -ne 0 ] && FAILED=1
  return $rc
}

{
  echo "date: $(date -u +%FT%TZ)"
  echo "node: $(node --version 2>&1)"
  echo "nvcc: $(nvcc --version 2>&1 | tail -n 2 | tr '\n' ' ')"
  nvidia-smi 2>&1 || echo "nvidia-smi not available"
} > "$RESULTS/env.txt"
cat "$RESULTS/env.txt"

# 1. Build: with nvcc here, build (or confirm up to date); otherwise the carried binaries must exist.
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ] || [ -n "${SPARSE_NVCC:-}" ]; then
  step build 120 env SPARSE_REQUIRE_CUDA_BUILD=1 node "$PKG/scripts/build-native.mjs"
else
  if [ -x "$PKG/build/gpu_test" ] && [ -f "$PKG/build/Release/sparse_cuda.node" ]; then
    echo "no nvcc here: using the prebuilt kernels/cuda/build" | tee "$RESULTS/build.log"
    STEPS+=("{\"name\": \"build\", \"exit\": 0, \"seconds\": 0, \"note\": \"prebuilt binaries (no nvcc)\"}")
  else
    echo "no nvcc and no prebuilt kernels/cuda/build: nothing to run" | tee "$RESULTS/build.log"
    STEPS+=("{\"name\": \"build\", \"exit\": 1, \"seconds\": 0, \"note\": \"no nvcc, no prebuilt binaries\"}")
    FAILED=1
  fi
fi

# 2. The standalone test program: every kernel against a CPU reference, then the benchmark.
if [ -x "$PKG/build/gpu_test" ]; then
  BENCH=--bench
  [ "${GPU_CHECK_QUICK:-0}" = 1 ] && BENCH=--quick-bench
  step gpu-test 200 "$PKG/build/gpu_test" $BENCH --budget 150 --json "$RESULTS/gpu-test.json"
fi

# 2b. Optional (GPU_CHECK_SANITIZE=1): the small tests under compute-sanitizer's memcheck, which
#     catches out-of-bounds and misaligned accesses that results alone can miss.
if [ "${GPU_CHECK_SANITIZE:-0}" = 1 ] && [ -x "$PKG/build/gpu_test" ]; then
  SANITIZER=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  if [ -x "$SANITIZER" ]; then
    step sanitize 150 "$SANITIZER" --tool memcheck --error-exitcode 3 "$PKG/build/gpu_test" --small
  else
    echo "GPU_CHECK_SANITIZE=1 but compute-sanitizer not found" | tee "$RESULTS/sanitize.log"
  fi
fi

# 2c. Informational: cuSPARSELt's 2:4 GEMM against ours, when libcusparseLt is here (a pip install
#     of nvidia-cusparselt counts; SPARSE_CUSPARSELT_LIB names the file). Its exit status is recorded
#     but does not fail the run: cuSPARSELt is a comparison, not part of the package.
if [ -x "$PKG/build/cusparselt_bench" ]; then
  if [ -z "${SPARSE_CUSPARSELT_LIB:-}" ] && command -v python3 >/dev/null 2>&1; then
    SPARSE_CUSPARSELT_LIB=$(python3 -c "
import glob, os, site, sys
dirs = site.getsitepackages() + [site.getusersitepackages()]
for d in dirs:
    for f in sorted(glob.glob(os.path.join(d, 'nvidia', 'cusparselt', 'lib', 'libcusparseLt.so*'))):
        print(f); sys.exit(0)
" 2>/dev/null)
    export SPARSE_CUSPARSELT_LIB
  fi
  SAVED=$FAILED
  step cusparselt 60 "$PKG/build/cusparselt_bench" --json "$RESULTS/cusparselt.json"
  FAILED=$SAVED
fi

# 3. The Node-side GPU tests: vitest when the workspace is installed, else the standalone bundle.
VITEST=""
for c in "$ROOT/node_modules/.bin/vitest" "$PKG/node_modules/.bin/vitest"; do
  [ -x "$c" ] && VITEST=$c && break
done
if [ -n "$VITEST" ] && [ -d "$ROOT/packages/tensor/dist" ]; then
  step node-gpu 100 bash -c "cd '$PKG' && SPARSE_REQUIRE_CUDA=1 '$VITEST' run --reporter=default --reporter=json --outputFile='$RESULTS/node-gpu.json'"
elif [ -f "$PKG/build/gpu-node-check.mjs" ]; then
  step node-gpu 100 node "$PKG/build/gpu-node-check.mjs" "$RESULTS/node-gpu.json"
else
  echo "no vitest (node_modules) and no build/gpu-node-check.mjs bundle: the Node-side GPU tests cannot run" | tee "$RESULTS/node-gpu.log"
  STEPS+=("{\"name\": \"node-gpu\", \"exit\": 1, \"seconds\": 0, \"note\": \"neither vitest nor the bundle\"}")
  FAILED=1
fi

TOTAL=$(( $(date +%s) - START ))
{
  echo "{"
  echo "  \"ok\": $([ $FAILED -eq 0 ] && echo true || echo false),"
  echo "  \"seconds\": $TOTAL,"
  echo "  \"steps\": ["
  for i in "${!STEPS[@]}"; do
    sep=","
    [ "$i" -eq $(( ${#STEPS[@]} - 1 )) ] && sep=""
    echo "    ${STEPS[$i]}$sep"
  done
  echo "  ]"
  echo "}"
} > "$RESULTS/summary.json"
cat "$RESULTS/summary.json"
exit $FAILED
