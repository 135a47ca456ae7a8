#!/usr/bin/env bash
# The GPU run kit's one command: the source of .gpu-kit/run.sh, which scripts/gpu-kit.sh pack
# copies into the kit next to the prebuilt binaries (bin/), the PyTorch reference scripts
# (bench/), a Fashion-MNIST sample (data/) and COMMIT. Runs on any Linux x86-64 machine with an
# NVIDIA GPU and a CUDA 13 driver; builds nothing. Steps, each with its own hard time limit
# (timeout -k), the whole within --budget seconds (default 540):
#   1 machine        nvidia-smi, driver, the kit (sha256 of every file), cuBLAS found, ldd of
#                    every binary (a missing library is named), every binary starts
#   2 cuda tests     bin/sg_cuda_tests with CUDA_LAUNCH_BLOCKING=1 (a fault names its
#                    kernel), then again with asynchronous launches (TF32 off: the program's own);
#                    exit 77 (the tests' "no CUDA device" skip) is a FAIL here
#   3 sanitizer      compute-sanitizer memcheck on "[sanitize]", racecheck on "[racecheck]";
#                    SKIPPED (with its message) where the tool is missing or refuses the device;
#                    each distinct finding listed once with its count
#   4 kernel bench   bench/run_cuda_bench.sh --quick --bin-dir bin: bench_cuda_kernels vs
#                    bench/torch_cuda_kernels.py, TFLOP/s or GB/s and % of the ceilings (cuBLAS
#                    f32 / TF32 / bf16 GEMM, device copy) measured in the same run
#   5 train phases   bin/bench_train_phases vs bench/torch_train_phases.py, --device cuda:
#                    the modulate-activations path (stylegan2-ada's), seed32 at batch 32 in
#                    TF32 (what both train with by default on a GPU: our --precision auto,
#                    cuDNN's default) and in f32 (FMA), paper256 at batch 8 in TF32 and
#                    bf16-mixed;
#                    SG_KIT_PHASES="paper256 8 act 1; seed32 32 act 1 bf16" runs only the runs it
#                    lists (cfg batch modconv weight [precision f32|tf32|bf16|bf16-mixed])
#   6 train 2 kimg   bin/stylegan2-train --device cuda on data/ (cfg small): a grid, a
#                    snapshot, s/kimg
#   7 kernel study   bin/study_{bias_act,upfirdn2d,conv,modconv} (study/README.md): every
#                    version validated against the CPU kernel, then timed (GB/s, TFLOP/s)
# Then a summary: each step PASS / FAIL / SKIPPED. Exit 0 when nothing FAILED.
#
# Usage: bash .gpu-kit/run.sh [--dry-run] [--only STEPS] [--budget SECONDS] [--limit N=SECONDS]
#   --dry-run  for a machine without a GPU (where the kit is packed): step 1 without the GPU,
#              so a broken kit (a missing file or library, a binary that does not start) is
#              found before device time is spent; writes no result file
#   --only     a comma-separated list of step numbers to run, e.g. --only 1,2,3
#   --budget   the time for the whole run (default 540 s); each step's limit is clipped to it
#   --limit    step N's own limit instead of its default (repeatable), e.g. --limit 5=200
# Environment: OUT (where the results go; default bench/results of the repository the kit
#   sits in, else results/ next to run.sh); PYTHON (a python with PyTorch for CUDA; default
#   /opt/torch/.venv/bin/python3 when it exists, else python3); SG_CUBLAS_DIR (the directory
#   of libcublas.so.13, when the search below does not find it); COMPUTE_SANITIZER (the tool).
# Results (at most 7 files, each naming the device, the commit and the command): the log
# gpu_kit_<date>.log, gpu_kit_<date>_summary.txt, cuda_kernels_<date>.txt,
# train_phases_gpu_<date>.txt, train_run_<date>.txt, train_fakes_<date>.png and
# kernel_study_<date>.txt.
set -uo pipefail
KIT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# ---- helpers (also used by the step subprocesses: run.sh --step N) ------------------------------
loud() { printf '\n####################################################################\n#### %s\n####################################################################\n' "$*"; }
now() { date +%s; }
# limit N: N seconds, clipped to what is left of this step (STEP_END) and of the run (RUN_END).
limit() {
  local end=0 e left
  for e in "${STEP_END:-0}" "${RUN_END:-0}"; do
    if [ "$e" -gt 0 ] && { [ "$end" -eq 0 ] || [ "$e" -lt "$end" ]; }; then end="$e"; fi
  done
  [ "$end" -eq 0 ] && { echo "$1"; return; }
  left=$((end - $(now) - 2))
  [ "$left" -lt "$1" ] && echo $((left > 1 ? left : 1)) || echo "$1"
}
# t N CMD...: runs CMD with a hard limit of N seconds (clipped); says so loudly when it ran out.
t() {
  local n rc
  n="$(limit "$1")"
  shift
  echo "\$ $* (limit ${n} s)"
  timeout -k 5 "$n" "$@"
  rc=$?
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && loud "TIMED OUT after ${n} s: $*"
  return $rc
}
# why TEXT: the detail shown next to the step's status in the summary.
why() { echo "$*" > "$WORK/why.$STEP"; }

find_cublas() {  # prints the directory holding the cuBLAS the binaries need
  local so dir py_dirs
  so="$(grep -o 'libcublas\.so\.[0-9]*' "$KIT/NEEDED" | sort -u | head -1)"
  [ -n "$so" ] || so=libcublas.so.13
  for dir in "${SG_CUBLAS_DIR:-}" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
             /usr/local/cuda-13*/lib64 /usr/local/cuda-13*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    [ -n "$dir" ] && [ -e "$dir/$so" ] && { echo "$dir"; return 0; }
  done
  # the nvidia-cublas package inside PyTorch's environment
  py_dirs="$("$PY" -c 'import nvidia.cublas as m; print("\n".join(m.__path__))' 2>/dev/null;
             "$PY" -c 'import site; print("\n".join(site.getsitepackages()))' 2>/dev/null)"
  while IFS= read -r dir; do
    [ -d "$dir/nvidia" ] && dir="$dir/nvidia"  # site-packages/nvidia/{cublas,cu13}/lib
    [ -d "$dir" ] || continue
    dir="$(find "$dir" -maxdepth 4 -name "$so" -print -quit 2>/dev/null)"
    [ -n "$dir" ] && { dirname "$dir"; return 0; }
  done <<<"$py_dirs"
  return 1
}

find_sanitizer() {
  local c
  for c in "${COMPUTE_SANITIZER:-}" "$(command -v compute-sanitizer 2>/dev/null)" /usr/local/cuda/bin/compute-sanitizer \
           /usr/local/cuda/compute-sanitizer/compute-sanitizer /usr/local/cuda-13*/bin/compute-sanitizer; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}

# The environment the binaries run in: cuBLAS from this machine; from the kit's lib/, only the
# libraries this machine lacks (linked into $WORK/lib, so the machine's own copies win).
setup_libs() {
  local missing lib
  CUBLAS_DIR="$(find_cublas)" || CUBLAS_DIR=""
  [ -n "$CUBLAS_DIR" ] && export LD_LIBRARY_PATH="$CUBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  missing="$(for b in "$KIT"/bin/*; do ldd "$b" 2>&1; done | grep 'not found' | grep -o 'lib[A-Za-z0-9_+.-]*\.so\.[0-9]*' | sort -u)"
  mkdir -p "$WORK/lib"
  for lib in $missing; do
    if [ -e "$KIT/lib/$lib" ]; then
      ln -sf "$KIT/lib/$lib" "$WORK/lib/$lib"
      echo "from the kit's lib/: $lib (this machine lacks it)"
    fi
  done
  [ -n "$(ls "$WORK/lib")" ] && export LD_LIBRARY_PATH="$WORK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

# ---- step 1: the machine and the kit -------------------------------------------------------------
step1() {
  local fail=0 b out name smi
  echo "kit: $KIT"
  sed "s/^/  /" "$KIT/COMMIT"
  echo "  needs: $(tail -1 "$KIT/NEEDED")"
  echo "host $(hostname), $(uname -srm), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(nproc) cores, $(ldd --version 2>&1 | head -1)"
  echo "== the kit's files (sha256 against MANIFEST.sha256)"
  if ! (cd "$KIT" && sha256sum --quiet -c MANIFEST.sha256); then
    loud "the kit is incomplete or damaged: the files above differ from MANIFEST.sha256 (pack it again)"
    fail=1
  fi
  echo "== GPU"
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "nvidia-smi: not found"
    [ "$DRY" -eq 1 ] || { loud "no nvidia-smi: this machine has no NVIDIA driver"; fail=1; }
  elif ! smi="$(nvidia-smi 2>&1)"; then
    echo "$smi"
    [ "$DRY" -eq 1 ] || { loud "nvidia-smi failed: no usable GPU"; fail=1; }
  else
    echo "$smi"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap --format=csv
  fi
  echo "== cuBLAS (the one library the kit cannot carry)"
  if [ -n "$CUBLAS_DIR" ]; then
    echo "found in $CUBLAS_DIR"
  else
    loud "cuBLAS ($(grep -o 'libcublas\.so\.[0-9]*' "$KIT/NEEDED" | sort -u | head -1)) not found: searched \$SG_CUBLAS_DIR, /usr/local/cuda*/lib64, /usr/lib/x86_64-linux-gnu and the nvidia-cublas package of $PY; set SG_CUBLAS_DIR"
    fail=1
  fi
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "== ldd"
  for b in "$KIT"/bin/*; do
    out="$(ldd "$b" 2>&1)"
    echo "$(basename "$b"):"
    echo "$out" | sed 's/^/  /'
    if grep -q 'not found' <<<"$out"; then
      loud "$(basename "$b") needs libraries this machine lacks: $(awk '/not found/ {print $1}' <<<"$out" | tr '\n' ' ')"
      fail=1
    fi
  done
  echo "== every binary starts"
  starts sg_cuda_tests --list-tests || fail=1
  starts bench_cuda_kernels --list || fail=1
  starts bench_train_phases --help || fail=1
  starts stylegan2-train --help || fail=1
  starts stylegan2-train --device cpu --data "$KIT/data/$DATA" --dry-run || fail=1  # reads the dataset sample
  echo "== scripts parse"
  bash -n "$KIT/bench/run_cuda_bench.sh" && echo "ok: bash -n bench/run_cuda_bench.sh" || fail=1
  "$PY" -c 'import sys, ast
for f in sys.argv[1:]: ast.parse(open(f).read(), f)
print("ok: python", sys.version.split()[0], "parses", len(sys.argv) - 1, "scripts")' "$KIT"/bench/*.py || fail=1
  echo "$PY: $("$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cuda available", torch.cuda.is_available())' 2>&1 |
    tail -1)"
  echo "== compute-sanitizer"
  if SAN="$(find_sanitizer)"; then "$SAN" --version | tail -1; else echo "compute-sanitizer: not found"; fi
  [ $fail -eq 0 ] || why "see the #### lines above"
  return $fail
}

starts() {  # starts NAME ARGS...: bin/NAME ARGS... exits 0 within 30 s
  local out rc
  out="$(t 30 "$KIT/bin/$@" 2>&1)"
  rc=$?
  # Catch2's --list-tests exits with the number of tests it lists
  if [ "$2" = --list-tests ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] && grep -qE '^[0-9]+ test cases?$' <<<"$out"; then
    rc=0
  fi
  if [ $rc -eq 0 ]; then
    echo "ok: bin/$* ($(wc -l <<<"$out") lines of output: $(tail -1 <<<"$out" | cut -c1-60))"
  else
    echo "$out" | tail -20
    loud "does not start: bin/$* (exit $rc)"
    return 1
  fi
}

# ---- step 2: the CUDA tests ---------------------------------------------------------------------------
run_tests() {  # run_tests LIMIT LABEL [ENV=VALUE...]
  local lim="$1" label="$2" rc
  shift 2
  t "$lim" env "$@" "$KIT/bin/sg_cuda_tests" --durations yes 2>&1 | tee "$WORK/tests.out" | grep -Ev '^[0-9.]+ s: '
  rc=${PIPESTATUS[0]}
  grep -E '^[0-9.]+ s: ' "$WORK/tests.out" | sort -rn | head -5 | sed 's/^/  slowest: /'
  if [ $rc -eq 77 ]; then
    loud "sg_cuda_tests skipped ($label): it sees no CUDA device ($(grep -m1 SKIPPED "$WORK/tests.out"))"
  fi
  return $rc
}
step2() {
  local rc1 rc2
  run_tests "${1:-55}" "CUDA_LAUNCH_BLOCKING=1" CUDA_LAUNCH_BLOCKING=1
  rc1=$?
  echo "== again with asynchronous launches"
  run_tests "${2:-30}" "asynchronous" CUDA_LAUNCH_BLOCKING=0
  rc2=$?
  why "CUDA_LAUNCH_BLOCKING=1: $(status_word $rc1); asynchronous: $(status_word $rc2)"
  [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]
}
status_word() {
  case "$1" in
    0) echo pass ;;
    77) echo "exit 77: no CUDA device" ;;
    124 | 137) echo "timed out" ;;
    *) echo "exit $1" ;;
  esac
}

# ---- step 3: compute-sanitizer --------------------------------------------------------------------------
# Messages with which the tool refuses this machine (not a finding about stylegrad).
REFUSED='Device not supported|not supported on this (device|platform)|Sanitizer failed to initialize|Unable to find injection library|driver version is insufficient|No supported devices|Target application terminated before first instrumented API call'
sanitize() {  # sanitize LIMIT TOOL TAG EXTRA...
  local lim="$1" tool="$2" tag="$3" rc msg
  shift 3
  t "$lim" "$SAN" --tool "$tool" --error-exitcode 99 "$@" "$KIT/bin/sg_cuda_tests" "$tag" \
    2>&1 | tee "$WORK/san.out" | tail -60
  rc=${PIPESTATUS[0]}
  digest "$WORK/san.out"
  if [ $rc -ne 0 ] && msg="$(grep -m1 -E "$REFUSED" "$WORK/san.out")"; then
    echo "$tool: refused by this machine: $msg" >> "$WORK/san.skips"
    loud "compute-sanitizer $tool refused: $msg"
    return 77
  fi
  if [ $rc -eq 77 ]; then  # the tests' own skip: no CUDA device under the sanitizer
    loud "sg_cuda_tests under $tool sees no CUDA device"
    return 1
  fi
  return $rc
}
# digest FILE: each distinct finding of compute-sanitizer (its message without addresses, block
# and thread numbers; the kernel and source line of each access) with how often it was shown,
# since the output's tail alone shows only the last one.
digest() {
  awk '
    function done_() { if (key != "") count[key]++; key = "" }
    /^========= (Error|Invalid|Program hit|Race|Warning)/ {
      done_(); key = $0; sub(/^========= /, "", key)
      gsub(/0x[0-9a-f]+|\([0-9,]+\)/, "", key); gsub(/ +/, " ", key); left = 2; next }
    key != "" && left > 0 && /^=========  +(Read|Write|at) / {
      fn = $0; sub(/.* at (void )?/, "", fn); loc = fn
      gsub(/<unnamed>::|\(int\)|sg::kernels::cuda::/, "", fn); sub(/\(.*/, "", fn); sub(/\+0x.*/, "", fn)
      sub(/.* in /, "", loc); key = key " | " ($2 == "at" ? "" : $2 " ") fn " " loc; if (--left == 0) done_(); next }
    /^========= *$/ { done_() }
    END { done_(); for (k in count) printf "  %5d x %s\n", count[k], k }' "$1" | sort -rn | head -20 > "$WORK/digest"
  if [ -s "$WORK/digest" ]; then
    echo "== the distinct findings above (how often shown; the summary line counts all):"
    cat "$WORK/digest"
  fi
}
step3() {
  local rc1 rc2
  if ! SAN="$(find_sanitizer)"; then
    why "compute-sanitizer not found (searched \$COMPUTE_SANITIZER, PATH, /usr/local/cuda*/bin)"
    return 77
  fi
  echo "$SAN: $("$SAN" --version | tail -1)"
  # A binary that cannot start makes the tool say "terminated before first instrumented API
  # call", which would read as a refusal below: that is a FAIL of the kit, not of the tool.
  if ! starts sg_cuda_tests --list-tests > /dev/null; then
    why "bin/sg_cuda_tests does not start (step 1 says why)"
    return 1
  fi
  # memcheck without leak checking: the caching allocator keeps its blocks until exit by design
  sanitize "${1:-65}" memcheck "[sanitize]" --print-limit 2000
  rc1=$?
  sanitize "${2:-35}" racecheck "[racecheck]" --racecheck-report hazard --print-limit 2000
  rc2=$?
  why "memcheck: $(status_word $rc1 | sed 's/exit 77.*/SKIPPED/'); racecheck: $(status_word $rc2 | sed 's/exit 77.*/SKIPPED/')$([ -f "$WORK/san.skips" ] && echo "; $(tr '\n' ' ' < "$WORK/san.skips")")"
  if [ $rc1 -eq 77 ] && [ $rc2 -eq 77 ]; then return 77; fi
  [ $rc1 -eq 0 -o $rc1 -eq 77 ] && [ $rc2 -eq 0 -o $rc2 -eq 77 ]
}

# ---- step 4: the kernel benchmark -----------------------------------------------------------------------
step4() {
  local rc f
  SG_COMMIT="$COMMIT" t 90 bash "$KIT/bench/run_cuda_bench.sh" --quick --bin-dir "$KIT/bin" --python "$PY" --results "$WORK/res"
  rc=$?
  f="$(ls "$WORK"/res/cuda_kernels_*.txt 2>/dev/null | tail -1)"
  if [ -n "$f" ]; then
    cp "$f" "$RES/cuda_kernels_${STAMP}.txt"
    why "table: cuda_kernels_${STAMP}.txt"
  else
    why "no table written"
    [ $rc -eq 0 ] && rc=1  # (run_cuda_bench.sh exits 0 when it finds no GPU)
  fi
  return $rc
}

# ---- step 5: the training-phase benchmark -----------------------------------------------------------
step5() {
  # cfg batch modconv weight [precision] (paper256's runs get twice the time of seed32's;
  # precision f32 when absent, else tf32, bf16 or bf16-mixed (paper256) on both sides)
  local runs=("seed32 32 act 1 tf32" "seed32 32 act 1 f32" "paper256 8 act 2 tf32" "paper256 8 act 2 bf16-mixed")
  # SG_KIT_PHASES="cfg batch modconv weight [precision]; ...": other runs (a rerun, or tf32 / bf16)
  [ -n "${SG_KIT_PHASES:-}" ] && IFS=';' read -r -a runs <<<"$SG_KIT_PHASES"
  local r cfg batch mc w prec impl left n rc fail=0 out wleft=0
  for r in "${runs[@]}"; do read -r cfg batch mc w prec <<<"$r"; wleft=$((wleft + 2 * w)); done
  mkdir -p "$WORK/phases"
  for r in "${runs[@]}"; do
    read -r cfg batch mc w prec <<<"$r"
    prec="${prec:-f32}"
    for impl in stylegrad torch; do
      left=$(( $(limit 100000) - 8 ))  # room for -k and the table
      n=$(( left * w / wleft ))
      [ $n -lt 20 ] && n=$(( left < 20 ? left : 20 ))  # a floor: start-up alone (torch, CUDA) takes seconds
      wleft=$((wleft - w))
      out="$WORK/phases/${cfg}_${batch}_${mc}-${prec}_${impl}.txt"
      echo "$out" >> "$WORK/phases/order"
      echo "== $impl: $cfg batch $batch modconv $mc precision $prec (its share: ${n} s)"
      if [ $n -lt 5 ]; then
        loud "no time left for $impl $cfg $mc"
        echo "not run: no time left" > "$out"; echo "not run" > "$out.rc"; fail=$((fail + 1))
        continue
      fi
      if [ $impl = stylegrad ]; then
        t "$n" "$KIT/bin/bench_train_phases" --quick --device cuda --cfg "$cfg" --batch "$batch" --modconv "$mc" \
          --precision "$prec" > "$out" 2>&1
      else
        t "$n" "$PY" "$KIT/bench/torch_train_phases.py" --quick --device cuda --cfg "$cfg" --batch "$batch" \
          --modconv "$mc" --precision "$prec" > "$out" 2>&1
      fi
      rc=$?
      cat "$out"
      echo "exit $rc" > "$out.rc"
      [ $rc -eq 0 ] || fail=$((fail + 1))
    done
  done
  phase_table > "$RES/train_phases_gpu_${STAMP}.txt"
  sed '/^---- raw output/,$d' "$RES/train_phases_gpu_${STAMP}.txt"
  why "$((${#runs[@]} * 2 - fail)) of $((${#runs[@]} * 2)) runs completed; table: train_phases_gpu_${STAMP}.txt"
  [ $fail -eq 0 ]
}
phase_table() {
  echo "Training-phase benchmark on the GPU: stylegrad vs PyTorch, same GPU, same run"
  echo "date:     $(date -Iseconds)"
  echo "commit:   $COMMIT"
  echo "device:   $DEVICE"
  echo "command:  bash run.sh (step 5): bin/bench_train_phases --quick --device cuda --cfg CFG --batch B --modconv M"
  echo "          --precision P; $PY bench/torch_train_phases.py (the same flags)"
  echo "models:   seed32: stylegrad cfg seed32 vs the seed-002 notebook's PyTorch model; paper256: stylegrad cfg"
  echo "          paper256 vs stylegan2-ada's networks in PyTorch (reference upfirdn2d / bias_act, no custom kernels)"
  echo "modconv:  grouped = one grouped conv per modulated conv (the notebook's, ada's fused_modconv);"
  echo "          act = conv(x * styles, weight) * dcoefs (the modulate-activations path ada trains with)"
  echo "precision: f32 = TF32 off on both sides; tf32 = TF32 on both; bf16 = our bf16 tensor-core convs vs"
  echo "          torch.autocast(dtype=torch.bfloat16) (the -prec suffix of the modconv column)"
  echo "timing:   median of 3 runs after 2 warm-up runs, cuda synchronize at every lap"
  echo "ratio = torch_ms / stylegrad_ms (> 1: stylegrad faster); ERR: that run failed or timed out (see raw output)"
  echo
  awk '
    FNR == 1 { n = split(FILENAME, p, "/"); split(p[n], q, "_"); key = q[1] "_" q[2] "_" q[3]; impl = q[4]
               sub(/\.txt$/, "", impl); if (!(key in seen)) { seen[key] = 1; keys[++nk] = key } }
    /^phase=/ { delete f; for (i = 1; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
                ms[key, impl, f["phase"]] = f["ms"] }
    END {
      split("G_forward D_step G_step R1_step PL_step", ph, " ")
      printf "%-9s %-6s %-13s %-10s %12s %10s %7s\n", "cfg", "batch", "modconv-prec", "phase", "stylegrad_ms", "torch_ms", "ratio"
      for (k = 1; k <= nk; ++k) {
        split(keys[k], c, "_")
        for (i = 1; i <= 5; ++i) {
          s = ms[keys[k], "stylegrad", ph[i]]; th = ms[keys[k], "torch", ph[i]]
          r = (s != "" && th != "" && s > 0) ? sprintf("%.2f", th / s) : "n/a"
          printf "%-9s %-6s %-13s %-10s %12s %10s %7s\n", c[1], c[2], c[3], ph[i], (s == "" ? "ERR" : s), (th == "" ? "ERR" : th), r
        }
      }
    }' $(cat "$WORK/phases/order")
  echo
  echo "---- raw output ----"
  for f in $(cat "$WORK/phases/order"); do
    echo "# ---- $(basename "$f" .txt) ($(cat "$f.rc" 2>/dev/null))"
    cat "$f"
  done
}

# ---- step 6: 2 kimg of training ----------------------------------------------------------------------------
step6() {
  local rc run fakes snap cmd lim
  lim=$(( $(limit 60) - 12 ))  # room for the snapshot after SIGINT and for this step's report
  [ $lim -ge 10 ] || { why "no time left"; return 1; }
  cmd=("$KIT/bin/stylegan2-train" --device cuda --data "$KIT/data/$DATA" --kimg 2 --tick 0.5 --snap 0
       --outdir "$WORK/runs" --name gpu-kit)
  # SIGINT on time-out: the trainer then writes a snapshot and stops cleanly
  echo "\$ ${cmd[*]} (limit $lim s, then SIGINT)"
  timeout -s INT -k 8 "$lim" "${cmd[@]}" 2>&1 | tee "$WORK/train.out"
  rc=${PIPESTATUS[0]}
  [ $rc -eq 124 ] && loud "TIMED OUT: 2 kimg of training did not finish"
  run="$(ls -d "$WORK"/runs/*/ 2>/dev/null | head -1)"
  fakes="$(ls "$run"fakes0*.png 2>/dev/null | tail -1)"
  snap="$(ls "$run"network-snapshot-*.safetensors 2>/dev/null | tail -1)"
  local spk
  spk="$(awk '/^tick / { for (i = 1; i < NF; ++i) if ($i == "sec/kimg") v[n++] = $(i + 1) }
              END { if (n == 0) { print "n/a"; exit } s = ""; for (i = 0; i < n; ++i) s = s (i ? " " : "") v[i]
                    printf "%s (per tick; the first includes start-up)", s }' "$WORK/train.out")"
  {
    echo "stylegan2-train on the GPU: 2 kimg, cfg small, Fashion-MNIST sample ($DATA)"
    echo "date:     $(date -Iseconds)"
    echo "commit:   $COMMIT"
    echo "device:   $DEVICE"
    echo "command:  ${cmd[*]}"
    echo "exit:     $rc$([ $rc -eq 124 ] && echo ' (timed out, stopped with SIGINT)')"
    echo "sec/kimg: $spk"
    echo "grid:     ${fakes:-MISSING}"
    echo "snapshot: ${snap:-MISSING}$([ -n "$snap" ] && echo " ($(du -h "$snap" | cut -f1))")"
    echo
    echo "---- output ----"
    cat "$WORK/train.out"
    echo "---- run directory ----"
    ls -l "$run" 2>/dev/null
  } > "$RES/train_run_${STAMP}.txt"
  [ -n "$fakes" ] && cp "$fakes" "$RES/train_fakes_${STAMP}.png"
  why "sec/kimg ${spk%% (*}; grid $([ -n "$fakes" ] && echo written || echo MISSING), snapshot $([ -n "$snap" ] && echo written || echo MISSING)"
  [ $rc -eq 0 ] && [ -n "$fakes" ] && [ -n "$snap" ]
}

# ---- step 7: the kernel study programs ------------------------------------------------------------------
step7() {
  local rc=0 p r i share progs=(bias_act upfirdn2d conv modconv)
  {
    echo "stylegrad kernel study programs (study/README.md): each version against the CPU kernel, then timed"
    echo "date:     $(date -Iseconds)"
    echo "commit:   $COMMIT"
    echo "device:   $DEVICE"
    for i in "${!progs[@]}"; do
      p="${progs[$i]}"
      # an even share of what is left of the step: their large shapes' CPU references take
      # 10-20 s each on the H200 machine's 16 cores (20 s each was too little, 2026-11-30)
      share=$(( ($(limit 100000) - 3) / (${#progs[@]} - i) ))
      echo
      echo "\$ bin/study_$p"
      t "$share" stdbuf -oL "$KIT/bin/study_$p"  # line-buffered: a time-out keeps what was printed
      r=$?
      echo "exit: $r"
      [ $r -eq 0 ] || rc=1
    done
  } 2>&1 | tee "$RES/kernel_study_${STAMP}.txt"
  rc=$(grep -c '^exit: [1-9]' "$RES/kernel_study_${STAMP}.txt")
  why "$((4 - rc)) of 4 programs passed"
  [ "$rc" -eq 0 ]
}

# ---- main ------------------------------------------------------------------------------------------------
export PYTHONDONTWRITEBYTECODE=1
if [ "${1:-}" = --step ]; then  # internal: one step, in its own process under timeout; the parent exported the rest
  STEP="$2"
  "step$STEP" ${STEP_LIMITS:-}
  exit $?
fi
ARGS="$*"
DRY=0
ONLY=""
BUDGET=540
declare -A LIMITS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --only) ONLY=",$2,"; shift ;;
    --budget) BUDGET="$2"; shift ;;
    --limit)
      [[ "${2:-}" =~ ^[1-7]=[0-9]+$ ]] || { echo "run.sh: --limit wants STEP=SECONDS, e.g. 5=200 (got '${2:-}')" >&2; exit 2; }
      LIMITS[${2%%=*}]="${2#*=}"; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
DATA="$(cd "$KIT/data" 2>/dev/null && ls | head -1)"

for f in COMMIT NEEDED MANIFEST.sha256 bin bench data; do
  if [ ! -e "$KIT/$f" ]; then
    echo "run.sh: $KIT/$f is missing: this is not a packed kit (make one with scripts/gpu-kit.sh pack)" >&2
    exit 1
  fi
done
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x /opt/torch/.venv/bin/python3 ]; then PY=/opt/torch/.venv/bin/python3
else PY=python3
fi
COMMIT="$(head -1 "$KIT/COMMIT") ($(sed -n 2p "$KIT/COMMIT"))"
STAMP="$(date +%Y-%m-%d_%H%M%S)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/res"
if [ $DRY -eq 1 ]; then
  RES="$WORK/res"  # a dry run writes no result file
elif [ -n "${OUT:-}" ]; then
  RES="$OUT"
elif [ -f "$KIT/../CMakeLists.txt" ] && [ -d "$KIT/../bench" ]; then
  RES="$(cd "$KIT/.." && pwd)/bench/results"
else
  RES="$KIT/results"
fi
mkdir -p "$RES"
if [ $DRY -eq 0 ]; then
  LOG="$RES/gpu_kit_${STAMP}.log"
  exec > >(tee -a "$LOG") 2>&1
fi
setup_libs
DEVICE="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
DEVICE="${DEVICE:-no GPU (nvidia-smi: none)}"
RUN_END=$(( $(now) + BUDGET ))
export KIT WORK RES STAMP PY COMMIT DEVICE DRY DATA RUN_END CUBLAS_DIR LD_LIBRARY_PATH

echo "stylegrad GPU run kit: commit $COMMIT; device $DEVICE; $(date -Iseconds); budget ${BUDGET} s"
echo "command: bash $0 $ARGS; results: $([ $DRY -eq 1 ] && echo 'none (dry run)' || echo "$RES")"

RESULTS=()
FAILED=0
# step N NAME LIMIT [SUB-LIMITS...]: runs step N in its own process under a hard limit.
step() {
  local n="$1" name="$2" lim="${LIMITS[$1]:-$3}" t0 rc detail status
  shift 3
  if [ -n "$ONLY" ] && [[ "$ONLY" != *",$n,"* ]]; then
    RESULTS+=("$(printf 'SKIPPED  %s %-16s (not in --only)' "$n" "$name")")
    return
  fi
  lim="$(STEP_END=0 limit "$lim")"
  printf '\n==================== %s %s  (limit %d s, %d s left of the budget)\n' "$n" "$name" "$lim" $((RUN_END - $(now)))
  if [ "$lim" -lt 10 ]; then
    RESULTS+=("$(printf 'SKIPPED  %s %-16s (no time left in the %d s budget)' "$n" "$name" "$BUDGET")")
    return
  fi
  t0=$(now)
  STEP_END=$((t0 + lim)) STEP_LIMITS="$*" timeout -k 5 "$lim" bash "$KIT/run.sh" --step "$n"
  rc=$?
  detail="$(cat "$WORK/why.$n" 2>/dev/null)"
  case $rc in
    0) status=PASS ;;
    77) status=SKIPPED ;;
    124 | 137) status=FAIL; detail="timed out after $lim s${detail:+; $detail}"; loud "step $n $name: TIMED OUT after $lim s" ;;
    *) status=FAIL; detail="exit $rc${detail:+; $detail}" ;;
  esac
  [ $status = FAIL ] && FAILED=1
  RESULTS+=("$(printf '%-8s %s %-16s (%d s) %s' "$status" "$n" "$name" $(($(now) - t0)) "$detail")")
}

if [ $DRY -eq 1 ]; then
  step 1 "machine, kit" 120
else
  step 1 "machine, kit" 25
  step 2 "cuda tests" 90 55 30
  step 3 "sanitizer" 100 65 35
  step 4 "kernel bench" 90
  step 5 "train phases" 130
  step 6 "train 2 kimg" 60
  step 7 "kernel study" 120
fi

printf '\n==================== summary  (%d s)\n' $((BUDGET - (RUN_END - $(now))))
{
  echo "stylegrad GPU run kit: commit $COMMIT; device $DEVICE; $(date -Iseconds)$([ $DRY -eq 1 ] && echo '; DRY RUN (no GPU used)')"
  echo "command: bash $0 $ARGS"
  printf '  %s\n' "${RESULTS[@]}"
} | tee "$RES/gpu_kit_${STAMP}_summary.txt"
if [ $DRY -eq 0 ]; then
  echo "results in $RES: $(cd "$RES" && ls -- *"${STAMP}"* | tr '\n' ' ')"
fi
if [ $FAILED -ne 0 ]; then
  loud "$([ $DRY -eq 1 ] && echo 'DRY RUN FAILED: the kit is not ready' || echo 'GPU CHECKS FAILED')"
  exit 1
fi
echo "$([ $DRY -eq 1 ] && echo 'dry run passed: the kit is complete and every binary starts' || echo 'no step failed')"
exit 0
