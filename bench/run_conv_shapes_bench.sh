#!/usr/bin/env bash
# Every convolution of the `small` and `seed32` networks, stylegrad against PyTorch (oneDNN) on
# the same machine in the same run, 2 threads each, forward, data gradient and weight gradient
# timed separately (issue 9's goal: each at least 1.2x PyTorch): bench_cpu_conv --shapes next
# to bench/torch_cpu_conv.py --shapes (their headers say what each pass runs). Twice each,
# alternating, and the faster of the two per pass, so a slow moment of a shared machine hits
# one run, not the ratio.
#
# Usage: bench/run_conv_shapes_bench.sh [--quick]
#   ratio = torch_ms / stylegrad_ms (> 1: stylegrad faster)
# The pairs under 1.2x are listed again against the FMA roofline that bench_cpu_conv measures
# after its shapes (bench/roofline.h): the fraction of it PyTorch runs at, at the direct
# algorithm's flop count, and the fraction 1.2x would need.
# SG_BENCH_BUILD_DIR (default build) picks the CMake build directory. Writes the table to
# bench/results/cpu_conv_shapes_<date>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=()
if [ $# -gt 0 ]; then
  [ "$*" = --quick ] || {
    echo "usage: bench/run_conv_shapes_bench.sh [--quick]" >&2
    exit 2
  }
  QUICK=(--quick)
fi
PY=/usr/bin/python3  # Debian's python3 (python3-torch)
BUILD="${SG_BENCH_BUILD_DIR:-build}"
"$PY" -c 'import torch' 2> /dev/null || {
  echo "run_conv_shapes_bench.sh: $PY cannot import torch: run scripts/install-deps.sh --bench" >&2
  exit 1
}
echo "== building bench_cpu_conv in $BUILD"
cmake -S . -B "$BUILD" > /dev/null
cmake --build "$BUILD" --target bench_cpu_conv -j2 2>&1 | tail -1
source bench/measure.sh
for r in 1 2; do
  echo "== round $r: stylegrad"
  run_measured "$TMP/sg$r.txt" "$BUILD/bench_cpu_conv" --shapes "${QUICK[@]}"
  echo "== round $r: torch"
  run_measured "$TMP/torch$r.txt" "$PY" bench/torch_cpu_conv.py --shapes "${QUICK[@]}"
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

STAMP="$(date +%Y-%m-%d_%H%M%S)"
mkdir -p bench/results
OUTF="bench/results/cpu_conv_shapes_${STAMP}.txt"
COMMIT="$(git rev-parse --short HEAD 2> /dev/null || echo unknown)"
DIRTY="$(git status --porcelain 2> /dev/null | grep -qv '^??' && echo ' (working tree has uncommitted changes)' || true)"
{
  echo "Every conv of small (batch 16) and seed32 (batch 32): stylegrad vs PyTorch, f32, fwd / dgrad / wgrad"
  echo "date:     $(date -Iseconds)"
  echo "commit:   ${COMMIT}${DIRTY}"
  echo "cpu:      $(lscpu | sed -n 's/^Model name: *//p' | head -1) ($(nproc) cores)"
  echo "threads:  OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2"
  echo "torch:    $(sed -n 's/^# torch \([^,]*\),.*/\1/p' "$TMP/torch1.txt") ($PY)"
  echo "command:  $BUILD/bench_cpu_conv --shapes ${QUICK[*]}; $PY bench/torch_cpu_conv.py --shapes ${QUICK[*]} (twice each, alternating)"
  echo "machine:  $QUIET; loadavg at end $LOAD_END"
  for r in 1 2; do
    echo "          round $r, stylegrad: $(cat "$TMP/sg$r.txt.load")"
    echo "          round $r, torch:     $(cat "$TMP/torch$r.txt.load")"
  done
  echo "each time: the faster of the two rounds' medians; ratio = torch / stylegrad (> 1: stylegrad faster)"
  echo
  awk '
    $1 == "#" && $2 ~ /^roofline_gflops=/ { split($2, kv, "="); if (kv[2] + 0 > roof) roof = kv[2] + 0; next }
    { delete f; for (i = 1; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] } }
    !/^shape=/ { next }
    { s = f["shape"]; side = f["impl"] == "torch" ? "t" : "s"
      if (side == "s" && !(s in seen)) { seen[s] = 1; order[++n] = s; gf[s] = f["gflop"] }
      split("fwd dgrad wgrad", ps, " ")
      for (j = 1; j <= 3; ++j) { k = side ps[j] " " s; v = f[ps[j] "_ms"] + 0; if (!(k in t) || v < t[k]) t[k] = v } }
    END {
      fmt = "%-32s %7s %8s %8s %6s %8s %8s %6s %8s %8s %6s\n"
      printf fmt, "shape", "gflop", "sg_fwd", "th_fwd", "r_fwd", "sg_dgrad", "th_dgrad", "r_dg", "sg_wgrad", "th_wgrad", "r_wg"
      split("fwd dgrad wgrad", ps, " ")
      for (i = 1; i <= n; ++i) {
        s = order[i]; line = sprintf("%-32s %7.4f", s, gf[s])
        for (j = 1; j <= 3; ++j) {
          a = t["s" ps[j] " " s]; b = t["t" ps[j] " " s]; r = a > 0 ? b / a : 0
          line = line sprintf(" %8.3f %8.3f %6.2f", a, b, r)
          total++; if (r >= 1.2) met++; if (r < 1.0) slower++
          if (r < 1.2 && b > 0) { miss[++nm] = sprintf("%-32s %-5s %5.2f %12.0f%% %14.0f%%", s, ps[j], r, \
            100 * gf[s] / (b * 1e-3) / roof, 100 * 1.2 * gf[s] / (b * 1e-3) / roof) }
          tsg[ps[j]] += a; tth[ps[j]] += b
        }
        print line
      }
      print "(all times in ms)"
      printf "summary: %d of %d (shape, pass) pairs at >= 1.2x PyTorch (the goal), %d slower than PyTorch\n", met, total, slower
      printf "sums over all shapes: fwd %.1f vs %.1f ms (%.2fx), dgrad %.1f vs %.1f (%.2fx), wgrad %.1f vs %.1f (%.2fx)\n", \
        tsg["fwd"], tth["fwd"], tth["fwd"] / tsg["fwd"], tsg["dgrad"], tth["dgrad"], tth["dgrad"] / tsg["dgrad"], \
        tsg["wgrad"], tth["wgrad"], tth["wgrad"] / tsg["wgrad"]
      if (roof > 0 && nm > 0) {
        printf "\nthe pairs under 1.2x against the FMA roofline (%.0f GFLOP/s on the threads, measured in the stylegrad runs):\n", roof
        print "at the direct algorithm'"'"'s flop count (gflop), the fraction of the roofline PyTorch runs at, and the fraction"
        print "a kernel needs for 1.2x PyTorch (over 100%: only an algorithm with fewer multiply-adds can get there)"
        printf "%-32s %-5s %5s %13s %15s\n", "shape", "pass", "ratio", "torch/roof", "1.2x needs"
        for (i = 1; i <= nm; ++i) print miss[i]
      }
    }' "$TMP"/sg1.txt "$TMP"/sg2.txt "$TMP"/torch1.txt "$TMP"/torch2.txt
  echo
  echo "---- raw output ----"
  for f in sg1 torch1 sg2 torch2; do
    echo "# ---- $f"
    cat "$TMP/$f.txt"
  done
} > "$OUTF"
echo
sed '/^---- raw output/,$d' "$OUTF"
echo "== written to $OUTF"
