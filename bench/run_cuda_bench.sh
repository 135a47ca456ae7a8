#!/usr/bin/env bash
# CUDA kernel benchmark, stylegrad vs PyTorch 2.x, on the same GPU in the same run: builds
# bench_cuda_kernels (CUDA build), runs it and bench/torch_cuda_kernels.py over the same case
# list, and writes a table (ratio = torch_ms / stylegrad_ms, > 1: stylegrad faster) with the
# device, the commit, the command and the rooflines (cuBLAS f32 / TF32 / bf16 GEMM and a device copy
# from stylegrad's run; torch.matmul f32 / bf16 and a device copy from torch's) to
# bench/results/cuda_kernels_<date>.txt.
#
# Usage: bench/run_cuda_bench.sh [--quick] [--build-dir DIR | --bin-dir DIR] [--python PYTHON]
#                                [--results DIR]
#   --build-dir  the CUDA build directory (default build-gpu; configured here if missing,
#                with -DCMAKE_CUDA_ARCHITECTURES=${SG_CUDA_ARCH:-90})
#   --bin-dir    a directory holding a prebuilt bench_cuda_kernels (the GPU run kit's bin/):
#                nothing is configured or built
#   --python     a python with PyTorch built for CUDA (default $PYTHON, else python3)
#   --results    where the table goes (default bench/results)
# The commit in the table: $SG_COMMIT when set (the GPU run kit's COMMIT), else git's HEAD.
# No GPU: says "no GPU: nothing measured" loudly and exits 0. Exits 1 when a case failed on
# either side (the table is written all the same, with the error), or a program crashed.
set -euo pipefail
CMDLINE="bench/run_cuda_bench.sh $*"
ORIG_PWD="$PWD"
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$ORIG_PWD/$1" ;; esac; }
cd "$(dirname "$0")/.."
QUICK=()
BUILD=build-gpu
BIN_DIR=""
RESULTS=bench/results
PY="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=(--quick) ;;
    --build-dir) BUILD="$2"; shift ;;
    --bin-dir) BIN_DIR="$(absolute "$2")"; shift ;;
    --python) PY="$2"; shift ;;
    --results) RESULTS="$(absolute "$2")"; shift ;;
    *) echo "run_cuda_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

loud() { printf '\n####################################################################\n#### %s\n####################################################################\n\n' "$*"; }

# ---- a GPU? ---------------------------------------------------------------------------
if ! command -v nvidia-smi >/dev/null 2>&1; then
  loud "no GPU: nothing measured (nvidia-smi not found)"
  exit 0
fi
if ! GPUS="$(nvidia-smi -L 2>&1)" || ! grep -q '^GPU ' <<<"$GPUS"; then
  loud "no GPU: nothing measured (nvidia-smi -L: ${GPUS//$'\n'/ })"
  exit 0
fi
echo "== GPU: $GPUS"

# ---- build -----------------------------------------------------------------------------
if [ -n "$BIN_DIR" ]; then
  BENCH="$BIN_DIR/bench_cuda_kernels"
  if [ ! -x "$BENCH" ]; then
    loud "FAILED: --bin-dir $BIN_DIR has no executable bench_cuda_kernels"
    exit 1
  fi
  echo "== prebuilt $BENCH"
else
  BENCH="$BUILD/bench_cuda_kernels"
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    echo "== configuring $BUILD"
    cmake -S . -B "$BUILD" -DCMAKE_CUDA_ARCHITECTURES="${SG_CUDA_ARCH:-90}" | grep -E 'stylegrad|CUDA' || true
  fi
  TARGETS="$(cmake --build "$BUILD" --target help 2>/dev/null || true)"
  if ! grep -q bench_cuda_kernels <<<"$TARGETS"; then
    loud "FAILED: $BUILD has no bench_cuda_kernels target: CMake found no CUDA compiler there (see 'stylegrad: CUDA backend' in its configure output)"
    exit 1
  fi
  echo "== building bench_cuda_kernels in $BUILD"
  cmake --build "$BUILD" --target bench_cuda_kernels -j"$(nproc)" 2>&1 | tail -3
fi

# ---- run ---------------------------------------------------------------------------------
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$BENCH" --list > "$TMP/cases.txt"
echo "== stylegrad ($(grep -c '^case=' "$TMP/cases.txt") cases)"
set +e
"$BENCH" "${QUICK[@]}" | tee "$TMP/sg.txt"
RC_SG=${PIPESTATUS[0]}
echo "== torch ($PY)"
"$PY" bench/torch_cuda_kernels.py --cases "$TMP/cases.txt" "${QUICK[@]}" | tee "$TMP/torch.txt"
RC_TH=${PIPESTATUS[0]}
set -e

if ! grep -q '^case=' "$TMP/sg.txt"; then
  loud "FAILED: bench_cuda_kernels measured nothing (exit $RC_SG): no table written"
  exit 1
fi

# ---- table ---------------------------------------------------------------------------------
STAMP="$(date +%Y-%m-%d_%H%M%S)"
mkdir -p "$RESULTS"
OUTF="$RESULTS/cuda_kernels_${STAMP}.txt"
if [ -n "${SG_COMMIT:-}" ]; then
  COMMIT="$SG_COMMIT" DIRTY=""
else
  COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  DIRTY="$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo ' (working tree has uncommitted changes)' || true)"
fi
{
  echo "CUDA kernel benchmark: stylegrad vs PyTorch, f32, forward, same GPU, same run"
  echo "date:     $(date -Iseconds)"
  echo "commit:   ${COMMIT}${DIRTY}"
  echo "command:  $CMDLINE (stylegrad: $BENCH ${QUICK[*]}; torch: $PY bench/torch_cuda_kernels.py ${QUICK[*]})"
  echo "device:   $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | head -1)"
  echo "stylegrad: $(grep '^# stylegrad' "$TMP/sg.txt" | sed 's/^# //')"
  echo "torch:    $(grep '^# torch' "$TMP/torch.txt" | sed 's/^# //'); $(grep '^# device' "$TMP/torch.txt" | sed 's/^# //')"
  echo "roofline (measured in the stylegrad run): $(grep '^roofline ' "$TMP/sg.txt" | sed 's/^roofline //')"
  echo "roofline (measured in the torch run):     $(grep '^roofline_torch ' "$TMP/torch.txt" | sed 's/^roofline_torch //')"
  echo "protocol: warm-up, then timed calls each after writing 2 x L2 bytes; CUDA events; median ms"
  echo "ratio = torch_ms / stylegrad_ms (> 1: stylegrad faster); perf = TFLOP/s (conv, modconv) or GB/s;"
  echo "%roof = stylegrad perf / the roofline of its kind (sgemm_fp32, sgemm_tf32, gemm_bf16, d2d_copy);"
  echo "mallocs = device mallocs during the timed calls (0: the caching allocator served them)"
  echo
  awk '
    function parse(line,   i, kv) { delete f; n = split(line, tok, " "); for (i = 1; i <= n; ++i) { if (tok[i] ~ /^msg=/) { f["msg"] = substr(line, index(line, "msg=") + 4); break } split(tok[i], kv, "="); f[kv[1]] = substr(tok[i], length(kv[1]) + 2) } }
    /^case=/ && FILENAME == ARGV[1] { parse($0); c = f["case"]; order[++nc] = c; var[c] = f["variant"]; shp[c] = f["shape"]
      if (f["status"] == "ok") { sg[c] = f["median_ms"]; perf[c] = (f["tflops"] != "" ? f["tflops"] : f["gbs"]); unit[c] = (f["tflops"] != "" ? "TFLOP/s" : "GB/s"); roof[c] = f["pct_roof"]; mal[c] = f["mallocs"]; t32[c] = f["tf32_diff"]; b16[c] = f["bf16_diff"]; work[c] = (f["gflop"] != "" ? f["gflop"] : f["gbytes"]) }
      else sgerr[c] = f["msg"] }
    /^case=/ && FILENAME == ARGV[2] { parse($0); c = f["case"]; if (f["status"] == "ok") { th[c] = f["median_ms"]; note[c] = f["note"] } else therr[c] = f["msg"] }
    END {
      printf "%-38s %-10s %-14s %10s %10s %7s %9s %-7s %6s %9s %7s %s\n", "case", "variant", "shape", "sg_ms", "torch_ms", "ratio", "sg_perf", "unit", "%roof", "torch_perf", "mallocs", "notes"
      for (i = 1; i <= nc; ++i) {
        c = order[i]
        s = (c in sg) ? sprintf("%.4f", sg[c]) : "ERR"
        t = (c in th) ? sprintf("%.4f", th[c]) : "ERR"
        r = ((c in sg) && (c in th) && sg[c] > 0) ? sprintf("%.2f", th[c] / sg[c]) : "n/a"
        tp = ((c in th) && th[c] > 0 && (c in work)) ? sprintf("%.2f", work[c] / th[c] * (unit[c] == "GB/s" ? 1000 : 1)) : "n/a"
        notes = ""
        if (t32[c] != "") notes = notes " tf32_diff=" t32[c] (t32[c] + 0 < 1e-6 ? "(TF32_HAD_NO_EFFECT)" : "")
        if (b16[c] != "") notes = notes " bf16_diff=" b16[c] (b16[c] + 0 < 1e-6 ? "(BF16_HAD_NO_EFFECT)" : "")
        if (note[c] != "") notes = notes " torch=" note[c]
        if (c in sgerr) notes = notes " SG_ERROR: " sgerr[c]
        if (c in therr) notes = notes " TORCH_ERROR: " therr[c]
        printf "%-38s %-10s %-14s %10s %10s %7s %9s %-7s %6s %9s %7s%s\n", c, var[c], shp[c], s, t, r, ((c in perf) ? perf[c] : "n/a"), ((c in unit) ? unit[c] : ""), ((c in roof) ? roof[c] : "n/a"), tp, ((c in mal) ? mal[c] : "n/a"), notes
      }
    }' "$TMP/sg.txt" "$TMP/torch.txt"
  echo
  echo "---- raw output ----"
  cat "$TMP/sg.txt"
  echo "# ---- torch"
  cat "$TMP/torch.txt"
} > "$OUTF"
echo
sed '/^---- raw output/,$d' "$OUTF"
echo "== written to $OUTF"

STATUS=0
if grep -q '#### no GPU' "$TMP/torch.txt"; then loud "FAILED: $PY's torch has no CUDA ($(grep '^# torch' "$TMP/torch.txt"))"; STATUS=1; fi
if [ "$RC_SG" -ne 0 ]; then loud "FAILED: bench_cuda_kernels exit $RC_SG ($(grep -c 'status=error' "$TMP/sg.txt") case(s) with errors)"; STATUS=1; fi
if [ "$RC_TH" -ne 0 ]; then loud "FAILED: torch_cuda_kernels.py exit $RC_TH ($(grep -c 'status=error' "$TMP/torch.txt") case(s) with errors)"; STATUS=1; fi
exit $STATUS
