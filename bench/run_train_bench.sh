#!/usr/bin/env bash
# Training-phase benchmark, stylegrad (cfg seed32) vs the seed-002 notebook's PyTorch model
# (Debian's python3-torch on OpenBLAS), batch 32, f32, same machine, same run, 2 threads each.
# Phases: G_forward, D_step, G_step, R1_step, PL_step (see bench/bench_train_phases.cpp).
# Prints a table and writes it to bench/results/train_phases_<date>.txt.
#
# Usage: bench/run_train_bench.sh [--quick]
#   ratio = torch_ms / stylegrad_ms  (> 1: stylegrad faster)
# SG_BENCH_BUILD_DIR (default build) picks the CMake build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=()
for a in "$@"; do
  case "$a" in
    --quick) QUICK=(--quick) ;;
    *) echo "run_train_bench.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PY=/usr/bin/python3  # Debian's python3 (python3-torch), not a pyenv/venv python3 on PATH
BUILD="${SG_BENCH_BUILD_DIR:-build}"

# ---- dependencies: an optimised BLAS and PyTorch -------------------------------------
missing=()
for p in libopenblas0-pthread python3-torch; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (scripts/install-deps.sh --bench)"
  scripts/install-deps.sh --bench
else
  echo "== libopenblas0-pthread and python3-torch already installed"
fi

# ---- BLAS: make sure libblas.so.3 is OpenBLAS, not the reference BLAS ------------------
ALT=libblas.so.3-x86_64-linux-gnu
OPENBLAS=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
blas_value() { update-alternatives --query "$ALT" 2>/dev/null | sed -n 's/^Value: //p'; }
BLAS_NOTE=""
cur="$(blas_value)"
case "$cur" in
  *openblas*) BLAS_NOTE="libblas.so.3 already OpenBLAS ($cur); nothing changed" ;;
  *)
    if [ -e "$OPENBLAS" ]; then
      $SUDO update-alternatives --set "$ALT" "$OPENBLAS" >/dev/null
      BLAS_NOTE="libblas.so.3 was '${cur:-unset}' (reference BLAS); switched to $OPENBLAS with update-alternatives --set"
    else
      BLAS_NOTE="WARNING: libblas.so.3 is '${cur:-unset}' and $OPENBLAS is missing: torch matmuls run on the reference BLAS"
    fi ;;
esac
echo "== BLAS: $BLAS_NOTE"

# ---- build ------------------------------------------------------------------------------
echo "== building bench_train_phases in $BUILD"
cmake -S . -B "$BUILD" >/dev/null
cmake --build "$BUILD" --target bench_train_phases -j2 2>&1 | tail -3

QUIET_WAIT_S=180
source bench/measure.sh

echo "== stylegrad"
run_measured "$TMP/sg.txt" "$BUILD/bench_train_phases" "${QUICK[@]}"
echo "   ($(cat "$TMP/sg.txt.load"))"
# torch twice: OPENBLAS_NUM_THREADS=2 and 1 (OpenBLAS's own spinning pthreads can compete
# with torch's 2 OpenMP threads on 2 cores). The table takes torch's faster configuration
# per phase, so it never flatters us.
echo "== torch, OPENBLAS_NUM_THREADS=2"
run_measured "$TMP/torch.txt" "$PY" bench/torch_train_phases.py "${QUICK[@]}"
echo "   ($(cat "$TMP/torch.txt.load"))"
echo "== torch, OPENBLAS_NUM_THREADS=1"
OPENBLAS_NUM_THREADS=1 run_measured "$TMP/torch1.txt" "$PY" bench/torch_train_phases.py "${QUICK[@]}"
echo "   ($(cat "$TMP/torch1.txt.load"))"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- table --------------------------------------------------------------------------------
STAMP="$(date +%Y-%m-%d_%H%M%S)"
mkdir -p bench/results
OUTF="bench/results/train_phases_${STAMP}.txt"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo ' (working tree has uncommitted changes)' || true)"
CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
TORCH_BLAS="$(grep -E '^# loaded: .*(blas|dnnl)' "$TMP/torch.txt" | sed 's/^# loaded: //; s/ ->.*//' | xargs -n1 basename | sort -u | tr '\n' ' ')"
{
  echo "Training-phase benchmark: stylegrad (cfg seed32) vs the seed-002 notebook's PyTorch model, f32, batch 32"
  echo "date:     $(date -Iseconds)"
  echo "commit:   ${COMMIT}${DIRTY}"
  echo "cpu:      ${CPU} ($(nproc) cores)"
  echo "threads:  OMP_NUM_THREADS=2; $(sed -n 's/^# stylegrad.*omp_get_max_threads()=\([0-9]*\).*/stylegrad omp_get_max_threads()=\1/p' "$TMP/sg.txt"); $(sed -n 's/^# torch.get_num_threads()=\([0-9]*\).*/torch.get_num_threads()=\1/p' "$TMP/torch.txt")"
  echo "torch:    $(sed -n 's/^# torch \([0-9][^ ]*\).*/\1/p' "$TMP/torch.txt") ($PY); libs loaded: $TORCH_BLAS"
  echo "blas:     $BLAS_NOTE"
  echo "models:   $(sed -n 's/^# stylegrad bench_train_phases: //p' "$TMP/sg.txt")"
  echo "          torch: $(sed -n 's/^# torch train phases: //p' "$TMP/torch.txt")"
  echo "machine:  $QUIET; loadavg at end $LOAD_END"
  echo "          during stylegrad: $(cat "$TMP/sg.txt.load")"
  echo "          during torch ob2: $(cat "$TMP/torch.txt.load")"
  echo "          during torch ob1: $(cat "$TMP/torch1.txt.load")"
  echo "phases:   G_forward = mapping + synthesis, no grad; D_step = G(no grad) + D(fake), D(real), softplus losses,"
  echo "          grads wrt D, Adam; G_step = G + D, softplus(-logits), grads wrt G, Adam; R1_step = D(reals),"
  echo "          grad wrt reals (create_graph), sum of squares, grads wrt D, Adam; PL_step = G on 16, grad of"
  echo "          sum(img*noise) wrt w (create_graph), penalty, grads wrt G, Adam"
  echo "torch column: the faster of OPENBLAS_NUM_THREADS=2 and =1 (OMP_NUM_THREADS=2 for both); th_ob = which"
  echo "ratio = torch_ms / stylegrad_ms (> 1: stylegrad faster)"
  echo
  awk '
    { delete f; for (i = 1; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] } }
    /^phase=/ && f["impl"] == "stylegrad" { order[++n] = f["phase"]; s[f["phase"]] = f["ms"] }
    /^phase=/ && f["impl"] == "torch" {
      ob = (FILENAME ~ /torch1/) ? 1 : 2; p = f["phase"]
      if (!(p in t) || f["ms"] + 0 < t[p] + 0) { t[p] = f["ms"]; o[p] = ob }
    }
    END {
      printf "%-10s %14s %10s %22s %6s\n", "phase", "stylegrad_ms", "torch_ms", "ratio torch/stylegrad", "th_ob"
      for (i = 1; i <= n; ++i) {
        p = order[i]
        r = (p in t && s[p] > 0) ? sprintf("%.2f", t[p] / s[p]) : "n/a"
        printf "%-10s %14.1f %10s %22s %6s\n", p, s[p], (p in t ? sprintf("%.1f", t[p]) : "n/a"), r, o[p]
      }
    }' "$TMP/sg.txt" "$TMP/torch.txt" "$TMP/torch1.txt"
  echo
  echo "sub-step medians (ms; torch from the OPENBLAS_NUM_THREADS=1 run):"
  for ph in $(sed -n 's/^phase=\([^ ]*\) .*/\1/p' "$TMP/sg.txt"); do
    grep -h "^# breakdown phase=$ph " "$TMP/sg.txt" "$TMP/torch1.txt" | sed 's/^# breakdown /  /'
  done
  echo
  echo "---- raw output ----"
  cat "$TMP/sg.txt"
  echo "# ---- torch, OPENBLAS_NUM_THREADS=2"; cat "$TMP/torch.txt"
  echo "# ---- torch, OPENBLAS_NUM_THREADS=1"; grep '^phase=\|^# breakdown' "$TMP/torch1.txt"
} > "$OUTF"
echo
sed '/^---- raw output/,$d' "$OUTF"
echo "== written to $OUTF"
