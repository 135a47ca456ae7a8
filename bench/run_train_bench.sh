#!/usr/bin/env bash
# Training-phase benchmark, stylegrad (cfg seed32) vs the seed-002 notebook's PyTorch model
# (bench/torch_train_phases.py on Debian's python3-torch, OpenBLAS + oneDNN), batch 32, f32,
# same machine, same run, 2 threads each.
# Phases: G_forward, D_step, G_step, R1_step, PL_step (see bench/bench_train_phases.cpp).
# PyTorch runs twice, once per way of writing the modulated convs:
#   torch_act      (MAIN reference) --modconv act: the modulate-activations path that
#                  stylegan2-ada-pytorch trains with, y = conv(x * styles, weight) * dcoefs,
#                  one conv with the shared weight
#   torch_grouped  (second column) --modconv grouped: the notebook's one grouped conv per
#                  modulated conv (weights modulated per sample); same numbers, slower on the CPU
# Prints a table (stylegrad ms; torch_act ms and its ratio; torch_grouped ms and its ratio)
# and writes it to bench/results/train_phases_<date>.txt.
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


# stylegrad twice, before and after torch's act runs (files $TMP/sg1.txt, $TMP/sg2.txt), and its
# column takes the faster round per phase, as each torch column takes the faster of its two runs:
# a slow spell of the shared machine (steal time that no process shows) then costs neither side.
run_sg() {
  echo "== stylegrad, round $1"
  run_measured "$TMP/sg$1.txt" "$BUILD/bench_train_phases" "${QUICK[@]}"
  echo "   ($(cat "$TMP/sg$1.txt.load"))"
}
run_sg 1
# torch: each modconv path twice, OPENBLAS_NUM_THREADS=2 and 1 (OpenBLAS's own spinning
# pthreads can compete with torch's 2 OpenMP threads on 2 cores). Each torch column takes
# its path's faster configuration per phase, so it never flatters us.
# Files: $TMP/torch_<act|grouped>_ob<2|1>.txt
for mc in act grouped; do
  for ob in 2 1; do
    echo "== torch --modconv $mc, OPENBLAS_NUM_THREADS=$ob"
    OPENBLAS_NUM_THREADS=$ob run_measured "$TMP/torch_${mc}_ob${ob}.txt" "$PY" bench/torch_train_phases.py --modconv "$mc" "${QUICK[@]}"
    echo "   ($(cat "$TMP/torch_${mc}_ob${ob}.txt.load"))"
  done
  [ "$mc" = act ] && run_sg 2
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- table --------------------------------------------------------------------------------
STAMP="$(date +%Y-%m-%d_%H%M%S)"
mkdir -p bench/results
OUTF="bench/results/train_phases_${STAMP}.txt"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo ' (working tree has uncommitted changes)' || true)"
CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
T0="$TMP/torch_act_ob2.txt"
TORCH_BLAS="$(grep -E '^# loaded: .*(blas|dnnl)' "$T0" | sed 's/^# loaded: //; s/ ->.*//' | xargs -n1 basename | sort -u | tr '\n' ' ')"
{
  echo "Training-phase benchmark: stylegrad (cfg seed32) vs the seed-002 notebook's PyTorch model, f32, batch 32"
  echo "main reference: torch_act = PyTorch on the modulate-activations path (what stylegan2-ada-pytorch trains"
  echo "          with: y = conv(x * styles, weight) * dcoefs, one shared-weight conv; --modconv act);"
  echo "          second column: torch_grouped = the notebook's grouped conv (--modconv grouped)"
  echo "date:     $(date -Iseconds)"
  echo "commit:   ${COMMIT}${DIRTY}"
  echo "cpu:      ${CPU} ($(nproc) cores)"
  echo "threads:  OMP_NUM_THREADS=2; $(sed -n 's/^# stylegrad.*omp_get_max_threads()=\([0-9]*\).*/stylegrad omp_get_max_threads()=\1/p' "$TMP/sg1.txt"); $(sed -n 's/^# torch.get_num_threads()=\([0-9]*\).*/torch.get_num_threads()=\1/p' "$T0")"
  echo "torch:    $(sed -n 's/^# torch \([0-9][^ ]*\).*/\1/p' "$T0") ($PY); libs loaded: $TORCH_BLAS"
  echo "blas:     $BLAS_NOTE"
  echo "models:   $(sed -n 's/^# stylegrad bench_train_phases: //p' "$TMP/sg1.txt")"
  echo "          torch_act: $(sed -n 's/^# torch train phases: //p' "$T0")"
  echo "          torch_grouped: $(sed -n 's/^# torch train phases: //p' "$TMP/torch_grouped_ob2.txt")"
  echo "command:  $BUILD/bench_train_phases ${QUICK[*]}; $PY bench/torch_train_phases.py --modconv act|grouped ${QUICK[*]}"
  echo "machine:  $QUIET; loadavg at end $LOAD_END"
  echo "          during stylegrad round 1:   $(cat "$TMP/sg1.txt.load")"
  echo "          during stylegrad round 2:   $(cat "$TMP/sg2.txt.load")"
  for mc in act grouped; do
    for ob in 2 1; do
      printf '          during torch_%-7s ob%s: %s\n' "$mc" "$ob" "$(cat "$TMP/torch_${mc}_ob${ob}.txt.load")"
    done
  done
  echo "phases:   G_forward = mapping + synthesis, no grad; D_step = G(no grad) + D(fake), D(real), softplus losses,"
  echo "          grads wrt D, Adam; G_step = G + D, softplus(-logits), grads wrt G, Adam; R1_step = D(reals),"
  echo "          grad wrt reals (create_graph), sum of squares, grads wrt D, Adam; PL_step = G on 16, grad of"
  echo "          sum(img*noise) wrt w (create_graph), penalty, grads wrt G, Adam"
  echo "torch columns: each the faster of OPENBLAS_NUM_THREADS=2 and =1 (OMP_NUM_THREADS=2 for both);"
  echo "          th_ob = which, act/grouped; stylegrad: the faster of its two rounds (before and after"
  echo "          torch act), sg_r = which"
  echo "ratio = torch_ms / stylegrad_ms (> 1: stylegrad faster); act/sg is the main one"
  echo
  awk '
    { delete f; for (i = 1; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] } }
    FILENAME ~ /torch_/ {
      m = (FILENAME ~ /torch_act/) ? "act" : "grouped"; ob = (FILENAME ~ /_ob1\./) ? 1 : 2
    }
    FILENAME ~ /sg[12]\.txt$/ { r = (FILENAME ~ /sg2\.txt$/) ? 2 : 1 }
    /^phase=/ && f["impl"] == "stylegrad" {
      p = f["phase"]
      if (!(p in s)) order[++n] = p
      if (!(p in s) || f["ms"] + 0 < s[p] + 0) { s[p] = f["ms"]; sr[p] = r }
    }
    /^# breakdown / && f["impl"] == "stylegrad" { bd["sg", f["phase"], r] = $0 }
    /^phase=/ && f["impl"] == "torch" {
      k = m SUBSEP f["phase"]
      if (!(k in t) || f["ms"] + 0 < t[k] + 0) { t[k] = f["ms"]; o[k] = ob }
    }
    /^# breakdown / && f["impl"] == "torch" { b[m, f["phase"], ob] = $0 }
    function ms(k) { return (k in t) ? sprintf("%.1f", t[k]) : "n/a" }
    function ratio(k, p) { return (k in t && s[p] > 0) ? sprintf("%.2f", t[k] / s[p]) : "n/a" }
    END {
      printf "%-10s %13s %13s %7s %17s %11s %6s %5s\n", "phase", "stylegrad_ms", "torch_act_ms", "act/sg", "torch_grouped_ms", "grouped/sg", "th_ob", "sg_r"
      for (i = 1; i <= n; ++i) {
        p = order[i]; ka = "act" SUBSEP p; kg = "grouped" SUBSEP p
        printf "%-10s %13.1f %13s %7s %17s %11s %6s %5s\n", p, s[p], ms(ka), ratio(ka, p), ms(kg), ratio(kg, p), o[ka] "/" o[kg], sr[p]
      }
      print ""
      print "sub-step medians (ms; each torch line from the run its column took):"
      for (i = 1; i <= n; ++i) {
        p = order[i]
        line = bd["sg", p, sr[p]]; sub(/^# breakdown /, "  ", line); print line
        split("act grouped", paths, " ")
        for (j = 1; j <= 2; ++j) {
          k = paths[j] SUBSEP p
          line = b[paths[j], p, o[k]]; sub(/^# breakdown /, "  ", line); sub(/impl=torch/, "impl=torch_" paths[j], line)
          print line
        }
      }
    }' "$TMP/sg1.txt" "$TMP/sg2.txt" "$TMP/torch_act_ob2.txt" "$TMP/torch_act_ob1.txt" "$TMP/torch_grouped_ob2.txt" "$TMP/torch_grouped_ob1.txt"
  echo
  echo "---- raw output ----"
  echo "# ---- stylegrad, round 1"; cat "$TMP/sg1.txt"
  echo "# ---- stylegrad, round 2"; cat "$TMP/sg2.txt"
  echo "# ---- torch --modconv act, OPENBLAS_NUM_THREADS=2"; cat "$T0"
  for r in act_ob1 grouped_ob2 grouped_ob1; do
    echo "# ---- torch_$r"; grep '^phase=\|^# breakdown\|^# torch train phases' "$TMP/torch_$r.txt"
  done
} > "$OUTF"
echo
sed '/^---- raw output/,$d' "$OUTF"
echo "== written to $OUTF"
