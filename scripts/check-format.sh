#!/usr/bin/env bash
# Checks that every C++ / CUDA source in git is formatted as .clang-format says (clang-format
# 14, Debian's clang-format-14). Prints the files that are not, and how to fix them; exits 1
# if there are any. CI runs it first (scripts/run-tests.sh).
#
# Usage: scripts/check-format.sh          check
#        scripts/check-format.sh --fix    reformat those files in place
set -uo pipefail
cd "$(dirname "$0")/.."
CF="$(command -v clang-format-14 || true)"
[ -n "$CF" ] || { echo "check-format: clang-format-14 is required (Debian: clang-format-14)" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
if [ "${1:-}" = --fix ]; then
  "$CF" -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$CF" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} of ${#files[@]} files are not formatted (.clang-format):"
  printf '  %s\n' "${bad[@]}"
  echo "fix with: scripts/check-format.sh --fix"
  exit 1
fi
echo "check-format: all ${#files[@]} files formatted"
