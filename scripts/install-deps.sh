#!/usr/bin/env bash
# Installs stylegrad's dependencies from Debian's packages (idempotent: installs only what
# is missing). Usage: scripts/install-deps.sh [--test] [--bench]
#   always:  cmake gcc (gcov) g++ libeigen3-dev catch2 libstb-dev zlib1g-dev libpng-dev
#            libjpeg62-turbo-dev dataset-fashion-mnist
#   --test:  python3-torch (the PyTorch oracle; the tests fail without it, never skip),
#            clang-14 libclang-rt-14-dev libomp-14-dev (the clang ASan + UBSan build, libFuzzer),
#            clang-format-14 (the format check), python3-venv and, from PyPI, the tensorboard
#            package in the venv .venv-test (Debian has no tensorboard; the [tensorboard] tests
#            read our event files with it and fail without it)
#   --bench: python3-torch libopenblas0-pthread (PyTorch CPU reference with an optimised BLAS)
set -euo pipefail
test_venv=0
pkgs=(cmake gcc g++ make libeigen3-dev catch2 libstb-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev
      dataset-fashion-mnist)
for a in "$@"; do
  case "$a" in
    --test) pkgs+=(python3 python3-torch python3-venv clang-14 libclang-rt-14-dev libomp-14-dev clang-format-14)
            test_venv=1 ;;
    --bench) pkgs+=(python3 python3-torch libopenblas0-pthread) ;;
    *) echo "install-deps.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all Debian packages present"
else
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# tensorboard for the tests, in a venv over Debian's Python (PEP 668 keeps pip out of the
# system's): <repo>/.venv-test, which tests/CMakeLists.txt uses as SG_TB_PYTHON.
if [ $test_venv -eq 1 ]; then
  venv="$(cd "$(dirname "$0")/.." && pwd)/.venv-test"
  if "$venv/bin/python3" -c "import tensorboard" 2>/dev/null; then
    echo "install-deps: tensorboard present in $venv"
  else
    echo "install-deps: installing tensorboard from PyPI into $venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
    "$venv/bin/python3" -m pip install -q --disable-pip-version-check "tensorboard==2.21.0"
    "$venv/bin/python3" -c "import tensorboard"
  fi
fi
