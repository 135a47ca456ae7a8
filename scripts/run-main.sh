#!/usr/bin/env bash
# The main job: installs dependencies, builds, and trains StyleGAN2 (the `small` config) on
# Fashion-MNIST from Debian's dataset-fashion-mnist. Arguments go to stylegan2-train.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh -DSG_BUILD_TESTS=OFF  # the main job needs no test oracle (python3-torch)
build/stylegan2-train "$@"
