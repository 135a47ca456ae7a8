#!/usr/bin/env bash
# The main job: installs dependencies, builds, and runs the engine demo on Fashion-MNIST
# (an R1-regularised discriminator, printing the penalty and its gradient norm per step).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build/sg-demo-r1 "$@"
