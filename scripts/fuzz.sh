#!/usr/bin/env bash
# Runs each libFuzzer target of a fuzz build for a fixed time and fails on any finding
# (docs/fuzzing.md).
#
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]
#   BUILD_DIR  a build configured with clang, -DSG_FUZZ=ON -DSG_SANITIZE=address,undefined,
#              its targets built (cmake --build BUILD_DIR --target sg_fuzz_all)
#   SECONDS    how long each target runs (-max_total_time)
#   TARGET     only these (default: every target with a seed corpus in fuzz/corpus/ that is
#              built in BUILD_DIR/fuzz/; one with a corpus but no executable is a FAIL)
#
# The targets run side by side, FUZZ_JOBS at a time (default: one per core). Each starts from
# its seed corpus fuzz/corpus/<target>/, copied to a temporary working corpus (the
# repository's is never modified), with -timeout=10 -rss_limit_mb=2048 and a -max_len that
# suits its input. It prints one PASS / FAIL line per target (runs,
# coverage, corpus size) and exits 1 if any target found something: a crash, a sanitizer
# report, a leak, an input slower than 10 s or one using more than 2048 MB. The inputs that
# did it go to BUILD_DIR/fuzz-findings/<target>/, the output to
# BUILD_DIR/fuzz-findings/<target>.log; reproduce with BUILD_DIR/fuzz/<target> FILE.
set -uo pipefail
if [ $# -lt 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]] || [ "$2" -lt 1 ]; then
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
build=$(cd "$1" && pwd) || { echo "fuzz.sh: no build directory '$1'" >&2; exit 2; }
seconds=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$root"/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi

max_len() {  # bytes per input: room for the structures each format nests
  case "$1" in
    fuzz_image) echo 32768 ;;
    fuzz_idx) echo 16384 ;;
    fuzz_safetensors) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

findings=$build/fuzz-findings
mkdir -p "$findings"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# One target: its PASS / FAIL lines into $work/$t.result (exit 1 on a finding).
fuzz_one() {
  local t=$1 exe=$build/fuzz/$1
  if [ ! -x "$exe" ]; then
    echo "FAIL $t: $exe is not built (cmake --build $build --target sg_fuzz_all)" >"$work/$t.result"
    return 1
  fi
  mkdir -p "$work/$t" "$findings/$t"
  if [ -d "$root/fuzz/corpus/$t" ]; then cp -r "$root/fuzz/corpus/$t/." "$work/$t/"; fi
  local seeds log rc runs cov found summary
  seeds=$(find "$work/$t" -type f | wc -l)
  log=$findings/$t.log
  "$exe" "$work/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
    -artifact_prefix="$findings/$t/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  found=$(find "$findings/$t" -type f | wc -l)
  summary="$seconds s, ${runs:-?} runs, coverage ${cov:-?}, corpus $seeds -> $(find "$work/$t" -type f | wc -l) inputs"
  if [ $rc -eq 0 ] && [ "$found" -eq 0 ]; then
    echo "PASS $t: $summary" >"$work/$t.result"
  else
    { echo "FAIL $t: exit $rc, $found finding(s) in $findings/$t/ ($summary); log $log"
      grep -m1 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | sed 's/^/    /'; } >"$work/$t.result"
    return 1
  fi
}

# FUZZ_JOBS targets at a time (see above); each fuzzes on one thread.
jobs=${FUZZ_JOBS:-$(nproc)}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  fuzz_one "$t" &
done
wait
status=0
for t in "${targets[@]}"; do
  cat "$work/$t.result"
  grep -q '^PASS' "$work/$t.result" || status=1
done
exit $status
