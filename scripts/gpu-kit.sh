#!/usr/bin/env bash
# The GPU run kit: builds, on any x86-64 Linux machine with nvcc (no GPU needed), everything a
# GPU machine needs to check stylegrad's CUDA backend, into .gpu-kit/ (git-ignored, < 60 MB),
# so the GPU machine (CUDA 13 driver, PyTorch, no compilers or libraries needed) only runs one
# prepared command: bash .gpu-kit/run.sh (its source: scripts/gpu-kit-run.sh; README.md,
# "Checking on a GPU machine").
#
# Usage: scripts/gpu-kit.sh pack [--jobs N]
#          configures and builds build-kit/ (Release, -DSG_NATIVE=OFF,
#          -DCMAKE_CUDA_ARCHITECTURES=${SG_CUDA_ARCH:-90}, -DSG_CUDA_STATIC_RUNTIME=ON,
#          -DSG_CUDA_LINEINFO=ON, fatbins compressed with nvcc --compress-mode=size: each binary
#          carries every kernel, and the kit must stay under 60 MB), only the targets the kit
#          needs; fills .gpu-kit/; then runs
#          .gpu-kit/run.sh --dry-run
#        scripts/gpu-kit.sh check
#          .gpu-kit/run.sh --dry-run: the kit is complete and every binary starts
# The kit: run.sh; bin/ sg_cuda_tests, bench_cuda_kernels, bench_train_phases, stylegan2-train,
# study_{bias_act,upfirdn2d,conv,modconv}
# (stripped; cuBLAS is the one shared CUDA library they need, found on the GPU machine);
# lib/ every other shared library they need (libgomp, libpng, libjpeg, zlib; used there only
# for a library the machine lacks); bench/ run_cuda_bench.sh,
# torch_cuda_kernels.py, torch_train_phases.py; data/ the first 512 Fashion-MNIST training
# images as an idx file; COMMIT (the commit, uncommitted changes, pack date, nvcc);
# NEEDED (each binary's shared libraries, the newest glibc / libstdc++ symbol versions they
# use); MANIFEST.sha256.
# The GPU machine needs glibc >= 2.34 and a GCC >= 12 libstdc++ (Ubuntu 22.04, Debian 12, or
# newer) when packed on Debian 12. libstdc++ stays shared: linked statically, GCC 12's pulls
# in arc4random (glibc 2.36).
# Environment: SG_CUDA_ARCH (default 90); SG_KIT_DATA (the Fashion-MNIST idx file to sample,
# default Debian's dataset-fashion-mnist, installed by scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
KIT="$ROOT/.gpu-kit"
BUILD="$ROOT/build-kit"
MAX_MB=60
SAMPLE=512
TARGETS=(sg_cuda_tests bench_cuda_kernels bench_train_phases stylegan2-train
         study_bias_act study_upfirdn2d study_conv study_modconv)

die() { printf '\ngpu-kit.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

pack() {
  local jobs="$1" nvcc data out b gomp
  [ "$(uname -m)" = x86_64 ] || die "the kit is for x86-64 GPU machines; this machine is $(uname -m)"
  nvcc="$(command -v nvcc || true)"
  [ -n "$nvcc" ] || { [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc; }
  [ -n "$nvcc" ] || die "nvcc not found (on PATH or /usr/local/cuda/bin): the kit needs the CUDA toolkit to build"
  data="${SG_KIT_DATA:-/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz}"
  [ -f "$data" ] || die "no Fashion-MNIST at $data (scripts/install-deps.sh installs Debian's dataset-fashion-mnist; or set SG_KIT_DATA)"

  echo "== configure $BUILD"
  out="$(cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSG_NATIVE=OFF -DSG_WITH_CUDA=ON -DSG_BUILD_TESTS=ON \
           -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="${SG_CUDA_ARCH:-90}" \
           -DSG_CUDA_STATIC_RUNTIME=ON -DSG_CUDA_LINEINFO=ON -DCMAKE_CUDA_FLAGS=--compress-mode=size \
           -DCMAKE_EXE_LINKER_FLAGS= 2>&1)" || { echo "$out"; die "cmake configure failed"; }
  grep -E '^-- stylegrad' <<<"$out"
  grep -q 'stylegrad: CUDA backend ON' <<<"$out" || die "the CUDA backend is OFF in $BUILD (CMake found no CUDA compiler)"
  grep -q 'CUDA runtime CUDA::cudart_static' <<<"$out" || die "$BUILD does not link the CUDA runtime statically"

  echo "== build ${TARGETS[*]} (-j$jobs; kernels/cuda/conv.cu takes minutes)"
  if ! cmake --build "$BUILD" -j"$jobs" --target "${TARGETS[@]}" 2>&1 | tee "$BUILD/kit-build.log"; then
    echo "== the first errors:"
    grep -m8 -E 'error|undefined reference' "$BUILD/kit-build.log" | sed 's/^/  /'
    die "the build failed (the whole log: $BUILD/kit-build.log)"
  fi

  echo "== fill $KIT"
  rm -rf "$KIT"
  mkdir -p "$KIT/bin" "$KIT/lib" "$KIT/bench" "$KIT/data"
  for b in "${TARGETS[@]}"; do
    for d in "$BUILD" "$BUILD/tests" "$BUILD/study"; do
      if [ -x "$d/$b" ]; then cp "$d/$b" "$KIT/bin/"; break; fi
    done
    [ -x "$KIT/bin/$b" ] || die "$b was not built"
    strip --strip-unneeded "$KIT/bin/$b"
  done
  for b in "$KIT"/bin/*; do
    echo "$(basename "$b"): $(readelf -d "$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
  done > "$KIT/NEEDED"
  local glibc glibcxx
  glibc="$(objdump -T "$KIT"/bin/* | grep -o 'GLIBC_2\.[0-9]*' | sort -Vu | tail -1)"
  glibcxx="$(objdump -T "$KIT"/bin/* | grep -o 'GLIBCXX_3\.[0-9.]*' | sort -Vu | tail -1)"
  echo "newest symbol versions used: $glibc $glibcxx" >> "$KIT/NEEDED"
  cat "$KIT/NEEDED"
  if [ "$(printf '%s\n' "$glibc" GLIBC_2.35 | sort -V | tail -1)" != GLIBC_2.35 ]; then
    printf '\n#### WARNING: the binaries need %s: the GPU machine must have a glibc at least that new\n' "$glibc"
    printf '#### (Ubuntu 22.04 has 2.35); packing on Debian 12 or Ubuntu 22.04 keeps them at 2.34\n\n'
  fi
  grep -q 'libcudart' "$KIT/NEEDED" && die "a binary needs the shared CUDA runtime (libcudart.so): SG_CUDA_STATIC_RUNTIME did not take"
  grep -q 'libcublas' "$KIT/NEEDED" || die "no binary names cuBLAS in NEEDED: unexpected link line"
  # Every shared library beyond glibc, the GCC runtime and cuBLAS travels in lib/: the GPU
  # machine's image need not have them (its first run lacked libjpeg.so.62, 2026-11-30).
  local lib path
  for lib in $(grep -v '^newest' "$KIT/NEEDED" | sed -n 's/^[^:]*: //p' | tr ' ' '\n' | sort -u); do
    case "$lib" in
      libc.so.* | libm.so.* | libstdc++.so.* | libgcc_s.so.* | ld-linux-*.so.* | libpthread.so.* | libdl.so.* | \
        librt.so.* | libcublas.so.* | libcublasLt.so.*) continue ;;
    esac
    path="$(for b in "$KIT"/bin/*; do ldd "$b"; done | awk -v l="$lib" '$1 == l && !p {print $3; p = 1}')"
    [ -n "$path" ] && [ -f "$path" ] || die "$lib (needed by the kit's binaries) not found by ldd"
    cp -L "$path" "$KIT/lib/$lib"
  done
  echo "carried in lib/: $(cd "$KIT/lib" && ls | tr '\n' ' ')"
  cp scripts/gpu-kit-run.sh "$KIT/run.sh"
  cp bench/run_cuda_bench.sh bench/torch_cuda_kernels.py bench/torch_train_phases.py "$KIT/bench/"
  chmod +x "$KIT/run.sh" "$KIT/bench/run_cuda_bench.sh"
  sample_idx "$data" "$KIT/data/fashion-mnist-${SAMPLE}-idx3-ubyte.gz"
  {
    git rev-parse HEAD 2>/dev/null || echo unknown
    if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
      echo "uncommitted changes at pack time in: $(git status --porcelain --untracked-files=no | awk '{print $2}' | tr '\n' ' ')"
    else
      echo "working tree clean at pack time"
    fi
    echo "packed $(date -Iseconds) on $(hostname) ($(. /etc/os-release && echo "$PRETTY_NAME"))"
    echo "nvcc: $("$nvcc" --version | tail -1); CUDA architectures ${SG_CUDA_ARCH:-90}; cudart static; -lineinfo"
  } > "$KIT/COMMIT"
  (cd "$KIT" && find . -type f ! -name MANIFEST.sha256 | sort | xargs sha256sum > MANIFEST.sha256)

  local bytes
  bytes="$(du -sb "$KIT" | cut -f1)"
  du -ah "$KIT" | sort -k2 | sed 's/^/  /'
  [ "$bytes" -lt $((MAX_MB * 1000 * 1000)) ] || die "the kit is $((bytes / 1000000)) MB, over the ${MAX_MB} MB limit"
  echo "== kit: $((bytes / 1000000)) MB (limit ${MAX_MB} MB), commit $(head -1 "$KIT/COMMIT")"
  check
}

# sample_idx SRC DST: the first $SAMPLE images of an idx3 file (gzip or plain) as a gzip idx3 file.
sample_idx() {
  python3 - "$1" "$2" "$SAMPLE" <<'EOF'
import gzip, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
op = gzip.open if open(src, "rb").read(2) == b"\x1f\x8b" else open
with op(src, "rb") as f:
    magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
    if magic != 0x803:
        sys.exit(f"gpu-kit.sh: {src} is not an idx3 image file (magic {magic:#x})")
    n = min(n, count)
    pixels = f.read(n * rows * cols)
with gzip.open(dst, "wb") as g:
    g.write(struct.pack(">IIII", magic, n, rows, cols) + pixels)
print(f"== data: {n} images {rows}x{cols} from {src} -> {dst}")
EOF
}

check() {
  [ -x "$KIT/run.sh" ] || die "no kit at $KIT (scripts/gpu-kit.sh pack makes one)"
  echo "== $KIT/run.sh --dry-run"
  bash "$KIT/run.sh" --dry-run
}

JOBS="$(nproc)"
if [ $# -eq 3 ] && [ "$2" = --jobs ]; then
  JOBS="$3"
elif [ $# -gt 1 ]; then
  echo "gpu-kit.sh: unexpected arguments: ${*:2}" >&2
  usage >&2
  exit 2
fi
case "${1:-}" in
  pack) pack "$JOBS" ;;
  check) check ;;
  -h | --help | help) usage ;;
  *) echo "gpu-kit.sh: ${1:+unknown command $1; }say pack or check" >&2; usage >&2; exit 2 ;;
esac
