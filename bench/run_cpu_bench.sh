#!/usr/bin/env bash
# CPU conv benchmark, stylegrad (bench/bench_cpu_conv.cpp) vs PyTorch (bench/torch_cpu_conv.py on
# Debian's python3-torch, OpenBLAS + oneDNN), same machine, same run, both on 2 threads.
# Prints a table and writes it to bench/results/cpu_conv_<date>.txt.
#   conv rows:    torch = F.conv2d, as before
#   modconv rows: (stylegrad's fused and act paths, one row each) torch = the MAIN reference,
#                 PyTorch's modulate-activations path that stylegan2-ada-pytorch trains with:
#                 conv(x * styles, weight) * dcoefs, one shared-weight conv,
#                 dcoefs = rsqrt(styles^2 @ sum_k(weight^2)^T + eps); the second torch
#                 column (torch_grouped) is the notebook's grouped conv (groups = N).
#
# Usage: bench/run_cpu_bench.sh [--quick]
#   ratio = torch_ms / stylegrad_ms  (> 1: stylegrad faster)
# SG_BENCH_BUILD_DIR (default build) picks the CMake build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=()
for a in "$@"; do
  case "$a" in
    --quick) QUICK=(--quick) ;;
    *) echo "run_cpu_bench.sh: unknown option $a" >&2; exit 2 ;;
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
echo "== building bench_cpu_conv in $BUILD"
cmake -S . -B "$BUILD" >/dev/null
cmake --build "$BUILD" --target bench_cpu_conv -j2 2>&1 | tail -3

QUIET_WAIT_S=120
source bench/measure.sh

echo "== stylegrad"
run_measured "$TMP/sg.txt" "$BUILD/bench_cpu_conv" "${QUICK[@]}"
echo "   ($(cat "$TMP/sg.txt.load"))"
# torch twice: OPENBLAS_NUM_THREADS=2 (as asked) and 1. With 2, OpenBLAS's own pthreads
# (which spin after each call) compete with torch's 2 OpenMP threads on 2 cores, and
# the cases that go through slow_conv_transpose2d (im2col + OpenBLAS) run up to 10x slower.
# The table takes torch's faster configuration per case, so it never flatters us.
echo "== torch, OPENBLAS_NUM_THREADS=2"
run_measured "$TMP/torch.txt" "$PY" bench/torch_cpu_conv.py "${QUICK[@]}"
echo "   ($(cat "$TMP/torch.txt.load"))"
echo "== torch, OPENBLAS_NUM_THREADS=1"
OPENBLAS_NUM_THREADS=1 run_measured "$TMP/torch1.txt" "$PY" bench/torch_cpu_conv.py "${QUICK[@]}"
echo "   ($(cat "$TMP/torch1.txt.load"))"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- table --------------------------------------------------------------------------------
STAMP="$(date +%Y-%m-%d_%H%M%S)"
mkdir -p bench/results
OUTF="bench/results/cpu_conv_${STAMP}.txt"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo ' (working tree has uncommitted changes)' || true)"
CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
TORCH_BLAS="$(grep -E '^# loaded: .*(blas|dnnl)' "$TMP/torch.txt" | sed 's/^# loaded: //; s/ ->.*//' | xargs -n1 basename | sort -u | tr '\n' ' ')"
TORCH_CONV="$(sed -n 's/^# conv ops used (modconv act[^:]*: //p' "$TMP/torch.txt")"
TORCH_CONV_G="$(sed -n 's/^# conv ops used (modconv grouped[^:]*: //p' "$TMP/torch.txt")"
{
  echo "CPU conv benchmark: stylegrad vs PyTorch, f32, forward and forward+backward"
  echo "main reference: torch_* = F.conv2d for the conv rows; for the modconv rows PyTorch's modulate-activations"
  echo "          path (what stylegan2-ada-pytorch trains with: conv(x * styles, weight) * dcoefs, one shared-weight"
  echo "          conv, dcoefs = rsqrt(styles^2 @ sum_k(weight^2)^T + 1e-8)), against both of stylegrad's paths;"
  echo "          second column: tgrp_* = the notebook's grouped conv (weights modulated per sample, groups = N)"
  echo "date:     $(date -Iseconds)"
  echo "commit:   ${COMMIT}${DIRTY}"
  echo "cpu:      ${CPU} ($(nproc) cores)"
  echo "threads:  OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2; $(sed -n 's/^# stylegrad.*threads=\([0-9]*\).*/stylegrad threads=\1/p' "$TMP/sg.txt"); $(sed -n 's/^# torch.get_num_threads()=\([0-9]*\).*/torch.get_num_threads()=\1/p' "$TMP/torch.txt")"
  echo "torch:    $(sed -n 's/^# torch \([^ ]*\).*/\1/p' "$TMP/torch.txt") ($PY); libs loaded: $TORCH_BLAS"
  echo "          conv ops, modconv act: $TORCH_CONV"
  echo "          conv ops, modconv grouped: $TORCH_CONV_G"
  echo "blas:     $BLAS_NOTE"
  echo "stylegrad GEMM: kernels/cpu/gemm_avx2.cpp (AVX2 + FMA; Eigen without them), Winograd for 3x3 stride 1, -O3 -march=native"
  echo "command:  $BUILD/bench_cpu_conv ${QUICK[*]}; $PY bench/torch_cpu_conv.py ${QUICK[*]}"
  echo "machine:  $QUIET; loadavg at end $LOAD_END"
  echo "          during stylegrad: $(cat "$TMP/sg.txt.load")"
  echo "          during torch ob2: $(cat "$TMP/torch.txt.load")"
  echo "          during torch ob1: $(cat "$TMP/torch1.txt.load")"
  echo "protocol: $(sed -n 's/^# stylegrad.*\(warmup=.*\)/\1/p' "$TMP/sg.txt"); fwd under no-grad; fwdbwd = forward + grad(sum(y*gy)) wrt x, w (and styles)"
  echo "torch columns: each the faster of OPENBLAS_NUM_THREADS=2 and =1 (OMP_NUM_THREADS=2 for both); th_ob = which,"
  echo "          fwd/fwdbwd (tg_ob: the same for the grouped columns)"
  echo "ratio = torch_ms / stylegrad_ms (> 1: stylegrad faster): r_* against the main reference, rg_* against grouped"
  echo
  awk '
    { for (i = 1; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] } }
    /^case=/ && f["impl"] == "stylegrad" { order[++n] = f["case"]; sf[f["case"]] = f["fwd_ms"]; sb[f["case"]] = f["fwdbwd_ms"] }
    /^case=/ && f["impl"] == "torch" {
      ob = (FILENAME ~ /torch1/) ? 1 : 2; c = f["case"]
      if (!(c in tf) || f["fwd_ms"] + 0 < tf[c] + 0) { tf[c] = f["fwd_ms"]; of[c] = ob }
      if (!(c in tb) || f["fwdbwd_ms"] + 0 < tb[c] + 0) { tb[c] = f["fwdbwd_ms"]; obb[c] = ob }
      if ("grouped_fwd_ms" in f) {
        if (!(c in gf) || f["grouped_fwd_ms"] + 0 < gf[c] + 0) { gf[c] = f["grouped_fwd_ms"]; ogf[c] = ob }
        if (!(c in gb) || f["grouped_fwdbwd_ms"] + 0 < gb[c] + 0) { gb[c] = f["grouped_fwdbwd_ms"]; ogb[c] = ob }
      }
    }
    { delete f }
    function ms(a, c) { return (c in a) ? sprintf("%.2f", a[c]) : "-" }
    function ratio(a, c, sg) { return (c in a && sg > 0) ? sprintf("%.2f", a[c] / sg) : "-" }
    END {
      fmt = "%-34s %9s %12s %9s %12s %6s %9s %5s %9s %12s %7s %9s %5s\n"
      printf fmt, "case", "sg_fwd", "sg_fwdbwd", "torch_fwd", "torch_fwdbwd", "r_fwd", "r_fwdbwd", "th_ob", "tgrp_fwd", "tgrp_fwdbwd", "rg_fwd", "rg_fwdbwd", "tg_ob"
      for (i = 1; i <= n; ++i) {
        c = order[i]
        printf fmt, c, sprintf("%.2f", sf[c]), sprintf("%.2f", sb[c]), ms(tf, c), ms(tb, c), ratio(tf, c, sf[c]), ratio(tb, c, sb[c]), of[c] "/" obb[c], ms(gf, c), ms(gb, c), ratio(gf, c, sf[c]), ratio(gb, c, sb[c]), (c in gf ? ogf[c] "/" ogb[c] : "-")
      }
      print "(all times in ms)"
    }' "$TMP/sg.txt" "$TMP/torch.txt" "$TMP/torch1.txt"
  echo
  echo "---- raw output ----"
  cat "$TMP/sg.txt"
  echo "# ---- torch, OPENBLAS_NUM_THREADS=2"; cat "$TMP/torch.txt"
  echo "# ---- torch, OPENBLAS_NUM_THREADS=1"; grep '^case=' "$TMP/torch1.txt"
} > "$OUTF"
echo
sed '/^---- raw output/,$d' "$OUTF"
echo "== written to $OUTF"
