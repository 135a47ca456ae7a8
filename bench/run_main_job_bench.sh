#!/usr/bin/env bash
# The README's main job end to end, side by side (issue 9: goal 3x or more): stylegan2-train
# (cfg small, Fashion-MNIST, batch 16) against the same model and loop in PyTorch written the
# way stylegan2-ada-pytorch writes it (bench/torch_train_loop.py on Debian's python3-torch),
# same machine, same run, 2 threads each, f32.
#
#   stylegrad  $BUILD/stylegan2-train --kimg K --tick K/2 --metrics 0 --snap 0 --threads 2
#              --tensorboard=0 --cond=0 --outdir <tmp>; s/kimg of its last tick line (the first
#              tick is the warm-up). --cond=0: the main job is class-conditional since issue
#              13, the PyTorch loop is not (the conditional parts, two small mappings and a
#              projection, cost no measurable time: 16-18 s/kimg either way, 1 December 2026)
#   torch_ada  (MAIN reference) /usr/bin/python3 bench/torch_train_loop.py --warmup-kimg K/2
#              --kimg K/2 --modconv ada: the same minibatch indices untimed, then timed, so the
#              timed part has the same lazy R1 / path-length steps as stylegan2-train's last tick
#   torch_act  (second column) the same with --modconv act: a cheaper way to write the
#              modulated convs' demodulation (same numbers); it favours PyTorch
# Waiting threads: each side as its users run it. stylegan2-train with SG_THREAD_WAIT unset, so
# it takes its own default, auto (kernels/cpu/parallel.h: spin while the machine is quiet, sleep
# while it is busy); PyTorch with OMP_WAIT_POLICY and GOMP_SPINCOUNT unset, i.e. libgomp's
# default (spin a while, then sleep). Both get
# OMP_NUM_THREADS=2 and OPENBLAS_NUM_THREADS=2 (bench/measure.sh). The policies in effect are
# printed and written with the table.
# Prints a table (s/kimg each, ratio = torch s/kimg / stylegrad s/kimg, > 1: stylegrad faster)
# and writes it to bench/results/main_job_<date>.txt.
#
# Usage: bench/run_main_job_bench.sh [--kimg K] [--quick]
#   --kimg K   training length of each run in kimg (default 1: two ticks of 0.5)
#   --quick    --kimg 0.25
# SG_BENCH_BUILD_DIR (default build) picks the CMake build directory; QUIET_WAIT_S (default
# 180) how long to wait for a quiet machine (bench/measure.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
KIMG=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) KIMG=0.25 ;;
    --kimg)
      [ $# -ge 2 ] || { echo "run_main_job_bench.sh: --kimg needs a value" >&2; exit 2; }
      KIMG="$2"; shift ;;
    --kimg=*) KIMG="${1#--kimg=}" ;;
    *) echo "run_main_job_bench.sh: unknown option $1 (usage: [--kimg K] [--quick])" >&2; exit 2 ;;
  esac
  shift
done
awk -v k="$KIMG" 'BEGIN { exit !(k + 0 > 0) }' || { echo "run_main_job_bench.sh: --kimg must be > 0, got '$KIMG'" >&2; exit 2; }
HALF="$(awk -v k="$KIMG" 'BEGIN { printf "%g", k / 2 }')"
PY=/usr/bin/python3  # Debian's python3 (python3-torch), not a pyenv/venv python3 on PATH
BUILD="${SG_BENCH_BUILD_DIR:-build}"

# ---- dependencies: PyTorch, an optimised BLAS, the dataset (installs only what is missing)
scripts/install-deps.sh --bench
BLAS_VALUE="$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')"
case "$BLAS_VALUE" in
  *openblas*) ;;
  *) echo "== WARNING: libblas.so.3 is '${BLAS_VALUE:-unset}', not OpenBLAS: torch's matmuls would run on the" \
          "reference BLAS (bench/run_train_bench.sh switches it)" ;;
esac

# ---- build ------------------------------------------------------------------------------
echo "== building stylegan2-train in $BUILD"
cmake -S . -B "$BUILD" >/dev/null
cmake --build "$BUILD" --target stylegan2-train -j2 2>&1 | tail -3

QUIET_WAIT_S="${QUIET_WAIT_S:-180}"
source bench/measure.sh

SG_CMD=("$BUILD/stylegan2-train" --kimg "$KIMG" --tick "$HALF" --metrics 0 --snap 0 --threads 2 --tensorboard=0
  --cond=0 --outdir "$TMP/runs")
TORCH_CMD=("$PY" bench/torch_train_loop.py --warmup-kimg "$HALF" --kimg "$HALF")
UNSET=(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u SG_THREAD_WAIT)

echo "== stylegrad: ${SG_CMD[*]}"
run_measured "$TMP/sg.txt" "${UNSET[@]}" "${SG_CMD[@]}"
echo "   ($(cat "$TMP/sg.txt.load"))"
for mc in ada act; do
  echo "== torch --modconv $mc: ${TORCH_CMD[*]} --modconv $mc"
  run_measured "$TMP/torch_$mc.txt" "${UNSET[@]}" "${TORCH_CMD[@]}" --modconv "$mc"
  echo "   ($(cat "$TMP/torch_$mc.txt.load"))"
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- results ------------------------------------------------------------------------------
# stylegrad: the last tick line, "tick N kimg K sec/kimg S ..."; its kimg minus the previous
# tick's is what was timed.
sg_field() { awk -v key="$1" '/^tick / { for (i = 1; i < NF; ++i) if ($i == key) v[++n] = $(i + 1) }
  END { if (n) print v[n] - (key == "kimg" && n > 1 ? v[n - 1] : 0) }' "$TMP/sg.txt"; }
SG_S="$(sg_field sec/kimg)"
SG_KIMG="$(sg_field kimg)"
[ -n "$SG_S" ] || { echo "run_main_job_bench.sh: no tick line in stylegan2-train's output" >&2; exit 1; }
tv() { sed -n "s/^result impl=torch .*\<$2=\([^ ]*\).*/\1/p" "$TMP/torch_$1.txt"; }
for mc in ada act; do
  [ -n "$(tv "$mc" s_per_kimg)" ] || { echo "run_main_job_bench.sh: no result line from torch --modconv $mc" >&2; exit 1; }
done
ratio() { awk -v t="$1" -v s="$SG_S" 'BEGIN { printf "%.2f", t / s }'; }
SG_START="$(grep -m1 '^stylegan2-train: .*SG_THREAD_WAIT' "$TMP/sg.txt" || true)"
SG_POLICY="$(sed -n 's/.*(SG_THREAD_WAIT \(.*\))$/\1/p' <<<"$SG_START")"
TORCH_POLICY="$(sed -n 's/^# threads: .*OpenMP wait policy //p' "$TMP/torch_ada.txt")"

STAMP="$(date +%Y-%m-%d_%H%M%S)"
mkdir -p bench/results
OUTF="bench/results/main_job_${STAMP}.txt"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo ' (working tree has uncommitted changes)' || true)"
CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
{
  echo "Main job end to end: stylegan2-train (cfg small, Fashion-MNIST 32x32x1, batch 16) vs the same model and"
  echo "loop in PyTorch written the way stylegan2-ada-pytorch writes it (bench/torch_train_loop.py), f32, CPU"
  echo "date:     $(date -Iseconds)"
  echo "commit:   ${COMMIT}${DIRTY}"
  echo "cpu:      ${CPU} ($(nproc) cores)"
  echo "threads:  OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2; stylegrad --threads 2; torch $(sed -n 's/^# threads: \(torch.get_num_threads()=[0-9]*\).*/\1/p' "$TMP/torch_ada.txt")"
  echo "wait:     stylegrad: SG_THREAD_WAIT ${SG_POLICY:-?} (its default: SG_THREAD_WAIT unset);"
  echo "          torch: ${TORCH_POLICY:-?} (as a PyTorch user runs it: the same environment)"
  echo "torch:    $(sed -n 's/^# torch \([0-9][^ ]*\).*/\1/p' "$TMP/torch_ada.txt") ($PY); libblas.so.3 = ${BLAS_VALUE:-unset}"
  echo "models:   stylegrad: ${SG_START#stylegan2-train: }"
  echo "          torch: $(sed -n 's/^# torch train loop: //p' "$TMP/torch_ada.txt")"
  echo "params:   $(sed -n 's/^params impl=torch //p' "$TMP/torch_ada.txt")"
  echo "commands: ${UNSET[*]} ${SG_CMD[*]/$TMP/<tmp>}"
  echo "          ${UNSET[*]} ${TORCH_CMD[*]} --modconv ada|act"
  echo "machine:  $QUIET; loadavg at end $LOAD_END"
  echo "          during stylegrad: $(cat "$TMP/sg.txt.load")"
  for mc in ada act; do echo "          during torch_$mc: $(cat "$TMP/torch_$mc.txt.load")"; done
  echo "timed:    stylegrad: its last tick, ${SG_KIMG} kimg; torch: $(tv ada minibatches) minibatches = $(tv ada kimg) kimg after"
  echo "          $HALF kimg untimed (the same minibatch indices)"
  echo "ratio = torch s/kimg / stylegrad s/kimg (> 1: stylegrad faster); torch_ada is the main reference"
  echo
  printf '%-28s %10s %8s\n' "run" "s/kimg" "ratio"
  printf '%-28s %10.2f %8s\n' "stylegrad" "$SG_S" "1.00"
  printf '%-28s %10.2f %8s\n' "torch_ada (main reference)" "$(tv ada s_per_kimg)" "$(ratio "$(tv ada s_per_kimg)")"
  printf '%-28s %10.2f %8s\n' "torch_act (cheaper dcoefs)" "$(tv act s_per_kimg)" "$(ratio "$(tv act s_per_kimg)")"
  echo
  echo "torch time by phase (timed part, seconds/count):"
  for mc in ada act; do echo "  torch_$mc: $(sed -n 's/^# timed part by phase (seconds\/count): //p' "$TMP/torch_$mc.txt")"; done
  echo
  echo "---- raw output ----"
  echo "# ---- stylegrad"; cat "$TMP/sg.txt"
  for mc in ada act; do echo "# ---- torch --modconv $mc"; cat "$TMP/torch_$mc.txt"; done
} > "$OUTF"
echo
sed '/^---- raw output/,$d' "$OUTF"
echo "== written to $OUTF"
