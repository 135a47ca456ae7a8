#!/usr/bin/env bash
# The GPU checks, for a machine with an NVIDIA GPU (H100 / H200), the CUDA toolkit with
# compute-sanitizer, and PyTorch 2.x built for CUDA. In order:
#   1. nvidia-smi, toolkit and torch versions
#   2. configure build-gpu ($SG_GPU_BUILD_DIR to change) with -DCMAKE_CUDA_ARCHITECTURES=${SG_CUDA_ARCH:-90}; the CUDA backend
#      must be ON
#   3. build everything (if that fails: sg_cuda_tests and bench_cuda_kernels alone)
#   4. ctest -L cuda --output-on-failure       (the CUDA tests; a skipped one is a failure here)
#   5. ctest --output-on-failure               (the whole suite)
#   6. compute-sanitizer --tool memcheck  on sg_cuda_tests "[sanitize]"   (a representative
#      subset: the conv family, upfirdn2d, bias_act, reductions, fused modconv, allocator,
#      Philox, the R1 step)
#   7. compute-sanitizer --tool racecheck on sg_cuda_tests "[racecheck]"  (the kernels with
#      shared memory: conv, weight grad, upfirdn2d, sum, fused modconv)
#   8. the CUDA benchmark (bench/run_cuda_bench.sh --quick; --full-bench for the full one)
# Every step runs even when an earlier one failed (except those that need the build); the
# summary at the end lists each step, and the script exits 1 if any failed.
# All output is tee'd to $OUT/gpu_checks_<date>_<commit>.log when OUT is set, else to
# bench/results/; the benchmark table is copied next to it.
# Budget: under ~9 minutes on an H100 with 16 cores from a clean build directory.
#
# Usage: scripts/run-gpu-checks.sh [--full-bench] [--no-bench] [--jobs N]
set -uo pipefail
cd "$(dirname "$0")/.."
BENCH=(--quick)
DO_BENCH=1
JOBS="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --full-bench) BENCH=() ;;
    --no-bench) DO_BENCH=0 ;;
    --jobs) JOBS="$2"; shift ;;
    *) echo "run-gpu-checks.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
ARCH="${SG_CUDA_ARCH:-90}"
BUILD="${SG_GPU_BUILD_DIR:-build-gpu}"
STAMP="$(date +%Y-%m-%d_%H%M%S)"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
LOGDIR="${OUT:-bench/results}"
mkdir -p "$LOGDIR"
LOG="$LOGDIR/gpu_checks_${STAMP}_${COMMIT}.log"
exec > >(tee -a "$LOG") 2>&1
T0=$SECONDS

RESULTS=()
FAILED=0
banner() { printf '\n==================== %s  (t=%ds)\n' "$*" $((SECONDS - T0)); }
loud() { printf '\n####################################################################\n#### %s\n####################################################################\n' "$*"; }
# step NAME TIMEOUT_S CMD...: runs CMD with a time limit, records PASS / FAIL (exit code).
step() {
  local name="$1" limit="$2" t=$SECONDS rc
  shift 2
  banner "$name"
  echo "\$ $*"
  timeout -k 10 "$limit" "$@"
  rc=$?
  if [ $rc -eq 0 ]; then
    RESULTS+=("PASS  $name ($((SECONDS - t)) s)")
  else
    [ $rc -eq 124 ] && loud "$name: TIMED OUT after ${limit} s"
    loud "FAILED: $name (exit $rc)"
    RESULTS+=("FAIL  $name (exit $rc$([ $rc -eq 124 ] && echo ', timed out'), $((SECONDS - t)) s)")
    FAILED=1
  fi
  return $rc
}
skip() { RESULTS+=("SKIP  $1 ($2)"); FAILED=1; loud "NOT RUN: $1 ($2)"; }
finish() {
  banner "summary"
  echo "commit ${COMMIT}$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo ' (uncommitted changes)'), $(date -Iseconds), $((SECONDS - T0)) s"
  printf '  %s\n' "${RESULTS[@]}"
  echo "log: $LOG"
  if [ $FAILED -ne 0 ]; then
    loud "GPU CHECKS FAILED"
    exit 1
  fi
  echo "all GPU checks passed"
  exit 0
}

echo "stylegrad GPU checks: commit $COMMIT, $(date -Iseconds), host $(hostname), log $LOG"

# ---- 1. the machine -----------------------------------------------------------------------
banner "nvidia-smi"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi; then
  loud "no GPU: nvidia-smi is missing or failed; this script is for the GPU machine"
  skip "everything" "no GPU"
  finish
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap --format=csv
NVCC="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
SANITIZER="$(command -v compute-sanitizer || echo "$(dirname "$NVCC")/compute-sanitizer")"
"$NVCC" --version | tail -2
"$SANITIZER" --version | head -2 || echo "compute-sanitizer not found at $SANITIZER"
${PYTHON:-python3} -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' ||
  echo "(no torch in ${PYTHON:-python3})"
echo "nproc $(nproc), jobs $JOBS"

# ---- 2, 3. configure and build ---------------------------------------------------------------
banner "configure $BUILD (CUDA architectures $ARCH)"
CONFLOG="$(mktemp)"
if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
      -DCMAKE_CUDA_COMPILER="$NVCC" > "$CONFLOG" 2>&1; then
  cat "$CONFLOG"
  RESULTS+=("FAIL  configure"); FAILED=1
  finish
fi
grep -E 'stylegrad|CUDA' "$CONFLOG"
if grep -q 'stylegrad: CUDA backend ON' "$CONFLOG"; then
  RESULTS+=("PASS  configure (CUDA backend ON)")
else
  loud "FAILED: the CUDA backend is OFF in $BUILD (no CUDA compiler found)"
  RESULTS+=("FAIL  configure (CUDA backend OFF)"); FAILED=1
  finish
fi
rm -f "$CONFLOG"
# One parallel build of everything (kernels/cuda/conv.cu is the long pole); if that fails, the
# CUDA targets alone, so the CUDA checks still run.
if ! step "build everything" 480 cmake --build "$BUILD" -j"$JOBS"; then
  step "build sg_cuda_tests, bench_cuda_kernels alone" 300 \
    cmake --build "$BUILD" -j"$JOBS" --target sg_cuda_tests bench_cuda_kernels || finish
fi
TESTS="$BUILD/tests/sg_cuda_tests"

# ---- 4, 5. ctest ---------------------------------------------------------------------------
banner "does sg_cuda_tests see the GPU?"
"$TESTS" "cuda: to_device round trip is exact and differentiable" > /tmp/sg_gpu_probe.$$ 2>&1
PROBE=$?
cat /tmp/sg_gpu_probe.$$; rm -f /tmp/sg_gpu_probe.$$
if [ $PROBE -eq 77 ]; then
  loud "FAILED: sg_cuda_tests skips (no CUDA device visible to it) on a machine where nvidia-smi sees a GPU"
  RESULTS+=("FAIL  sg_cuda_tests sees no CUDA device"); FAILED=1
fi
# A skipped CUDA test on this machine is a failure: ctest counts skips as passes.
ctest_no_skips() {
  local out rc
  out="$(mktemp)"
  (cd "$BUILD" && ctest "$@") 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  if grep -q '\*\*\*Skipped' "$out"; then
    loud "$(grep -c '\*\*\*Skipped' "$out") test(s) SKIPPED on the GPU machine"
    [ $rc -eq 0 ] && rc=1
  fi
  rm -f "$out"
  return $rc
}
export -f ctest_no_skips loud
export BUILD
step "ctest -L cuda" 240 bash -c 'ctest_no_skips "$@"' _ -L cuda --output-on-failure -j "$(( JOBS < 8 ? JOBS : 8 ))"
step "ctest (whole suite)" 300 bash -c 'ctest_no_skips "$@"' _ --output-on-failure -j "$JOBS"

# ---- 6, 7. compute-sanitizer -----------------------------------------------------------------
if [ -x "$SANITIZER" ] || command -v "$SANITIZER" >/dev/null 2>&1; then
  # memcheck without leak checking: the caching allocator keeps its blocks until exit by design.
  step "compute-sanitizer memcheck [sanitize]" 240 \
    "$SANITIZER" --tool memcheck --error-exitcode 99 "$TESTS" "[sanitize]" --durations yes
  step "compute-sanitizer racecheck [racecheck]" 180 \
    "$SANITIZER" --tool racecheck --racecheck-report hazard --error-exitcode 99 "$TESTS" "[racecheck]" --durations yes
else
  skip "compute-sanitizer" "not found at $SANITIZER"
fi

# ---- 8. benchmark ------------------------------------------------------------------------------
if [ $DO_BENCH -eq 1 ]; then
  step "CUDA kernel benchmark" 300 bench/run_cuda_bench.sh "${BENCH[@]}" --build-dir "$BUILD"
  latest="$(find bench/results -name 'cuda_kernels_*.txt' -newer "$LOG" 2>/dev/null | sort | tail -1)"
  if [ -n "$latest" ] && [ -n "${OUT:-}" ]; then cp "$latest" "$OUT/"; echo "copied $latest to $OUT/"; fi
else
  RESULTS+=("SKIP  CUDA kernel benchmark (--no-bench)")
fi

finish
