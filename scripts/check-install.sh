#!/usr/bin/env bash
# Checks that a build's `cmake --install` gives a package another CMake project can use
# (docs/architecture.md, "Using the engine from another CMake project").
#
# Usage: scripts/check-install.sh BUILD_DIR
#   BUILD_DIR  a configured build whose libraries are built (cmake --build BUILD_DIR)
#
# In a temporary directory (removed afterwards) it
#   1. installs BUILD_DIR there (cmake --install BUILD_DIR --prefix ...);
#   2. compiles one file that includes every installed header, alone (nothing but the
#      installed include/stylegrad/ on the include path);
#   3. configures examples/ as a standalone project with CMAKE_PREFIX_PATH=<prefix> and the
#      build's C++ compiler (find_package(stylegrad), stylegrad::engine), builds r1_penalty
#      and runs it (it fails on a non-finite loss or penalty);
#   4. checks that r1_penalty, a CPU-only consumer, has no CUDA library on its link line
#      (cudart, cublas, libcuda, static or shared) nor among its NEEDED entries (readelf -d).
# With nvcc's backend (stylegrad_CUDA_BACKEND nvcc) it also builds r1_penalty_cuda, the same
# program against the `cuda` component (stylegrad::engine_cuda), and checks that it does
# link cuBLAS (it is not run: that needs a GPU). Prints one line per check; exits 1 on the
# first failure. 6 to 20 s on 2 cores, most of it compiling the example.
set -euo pipefail
if [ $# -ne 1 ] || [ ! -f "$1/CMakeCache.txt" ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
BUILD="$(cd "$1" && pwd)"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
t0=$SECONDS
fail() { echo "check-install: FAIL: $*" >&2; exit 1; }
ok() { echo "check-install: ok: $*"; }
run() {  # run LOG CMD...: quiet unless it fails
  local log="$1"
  shift
  "$@" >"$log" 2>&1 || { cat "$log" >&2; fail "$*"; }
}
cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
CXX="$(cache CMAKE_CXX_COMPILER)"
PREFIX="$TMP/prefix"

# 1. install
run "$TMP/install.log" cmake --install "$BUILD" --prefix "$PREFIX"
CONFIG="$(find "$PREFIX" -name stylegradConfig.cmake | head -1)"
[ -n "$CONFIG" ] || fail "no stylegradConfig.cmake under the install prefix"
BACKEND="$(sed -n 's/^set(stylegrad_CUDA_BACKEND \(.*\))$/\1/p' "$CONFIG")"
ok "installed $(grep -c '^-- Installing' "$TMP/install.log") files (CUDA backend: ${BACKEND:-?})"

# 2. every installed header compiles on its own include path
INC="$PREFIX/include/stylegrad"
headers=$(cd "$INC" && find . -name '*.h' | sed 's|^\./||' | sort)
[ -n "$headers" ] || fail "no headers under $INC"
for h in $headers; do echo "#include \"$h\""; done >"$TMP/all_headers.cpp"
run "$TMP/headers.log" "$CXX" -std=c++20 -fsyntax-only -I"$INC" "$TMP/all_headers.cpp"
ok "$(echo "$headers" | wc -l) installed headers compile with -I<prefix>/include/stylegrad alone"

# 3. the example, built against the installed package, runs
EXTRA=()
[ "$BACKEND" = nvcc ] && EXTRA=(-DSG_EXAMPLE_CUDA=ON)
run "$TMP/configure.log" cmake -S "$ROOT/examples" -B "$TMP/build" -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DCMAKE_CXX_COMPILER="$CXX" "${EXTRA[@]}"
grep -q "stylegrad.* from $PREFIX" "$TMP/configure.log" || fail "examples/ did not find stylegrad in the install prefix"
run "$TMP/build.log" cmake --build "$TMP/build" -j"$(nproc)"
# GCOV_PREFIX: a coverage build's instrumented objects write their counts here, not into BUILD_DIR.
GCOV_PREFIX="$TMP/gcov" "$TMP/build/r1_penalty" >"$TMP/run.log" 2>&1 || { cat "$TMP/run.log" >&2; fail "r1_penalty failed"; }
sed 's/^/  /' "$TMP/run.log"
ok "examples/r1_penalty built against the installed package and ran"

# 4. the CPU-only consumer links no CUDA library
CUDA_LIBS='cudart|cublas|libcuda\.|lcuda\b|CUDA::'
LINK="$TMP/build/CMakeFiles/r1_penalty.dir/link.txt"
[ -f "$LINK" ] || fail "no link command at $LINK"
if grep -Eo "[^ ]*($CUDA_LIBS)[^ ]*" "$LINK"; then fail "r1_penalty's link line names a CUDA library (above)"; fi
needed="$(readelf -d "$TMP/build/r1_penalty" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
if echo "$needed" | grep -Eq "$CUDA_LIBS"; then fail "r1_penalty needs a CUDA library: $needed"; fi
ok "r1_penalty links no CUDA library; NEEDED: $needed"

if [ "$BACKEND" = nvcc ]; then
  LINK="$TMP/build/CMakeFiles/r1_penalty_cuda.dir/link.txt"
  grep -Eq 'cublas' "$LINK" || fail "r1_penalty_cuda (stylegrad::engine_cuda) does not link cuBLAS"
  ok "r1_penalty_cuda links the CUDA libraries through the cuda component"
fi
echo "check-install: PASS ($((SECONDS - t0)) s)"
