#!/usr/bin/env bash
# The test command: installs dependencies (python3-torch included), builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
/usr/bin/python3 -c "import torch" || { echo "run-tests: python3-torch is required for the oracle tests" >&2; exit 1; }
scripts/build.sh -DSG_BUILD_TESTS=ON
cd build
ctest --output-on-failure -j"$(nproc)"
