// main() of sg_cuda_tests, the CUDA test program (ctest label `cuda`).
//
// Listing (--list-test-names-only is how catch_discover_tests finds the tests at build time,
// also --list-tests, --list-tags, --help) works in every build. Running a test with no CUDA
// device (a CPU-only build, or no GPU on the machine) prints "SKIPPED: no CUDA device
// (<reason>)" and exits 77, which ctest (SKIP_RETURN_CODE 77) reports as skipped, never as
// passed.
//
// TF32 is off: sg::set_cuda_tf32(false) keeps the engine's own kernels on the FMA path and
// cuBLAS in CUBLAS_DEFAULT_MATH (f32 products stay f32). NVIDIA_TF32_OVERRIDE is unset before
// any CUDA library starts: set to 0 it would force cuBLAS to f32 even where a test turns TF32 on,
// and "cuda paths: TF32 kernels within TF32's error bound" checks that TF32 really ran (it
// failed that way on the first GPU run, 2026-11-30, when this program set the variable itself).
//
// Harness self-check: SG_CUDA_TESTS_DEVICE=cpu runs every test with the CPU (f32) as the
// "device under test", to check the harness and its tolerances on a machine without a GPU.
// It proves nothing about CUDA, and ctest never sets it.
#include <cstdio>
#include <cstdlib>

#include "catch_main.h"
#include "cuda_test_util.h"
#include "engine/device.h"

namespace {

// Before any test runs: the device under test, or exit 77 (skipped) without one.
int before_tests(bool listing) {
  if (listing) return -1;
  if (sgtest::cuda::self_check()) {
    std::printf(
        "HARNESS SELF-CHECK (SG_CUDA_TESTS_DEVICE=cpu): the device under test is the CPU in f32; "
        "nothing here tests CUDA\n");
  } else if (!sg::cuda_available()) {
    std::printf("SKIPPED: no CUDA device (%s)\n", sgtest::cuda::no_device_reason().c_str());
    std::fflush(stdout);
    return 77;
  } else {
    sg::set_cuda_tf32(false);
    std::printf("CUDA device: %s; TF32 off (sg::cuda_tf32()=%d; NVIDIA_TF32_OVERRIDE unset)\n",
                sg::cuda_device_name().c_str(), (int)sg::cuda_tf32());
  }
  std::fflush(stdout);
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  unsetenv("NVIDIA_TF32_OVERRIDE");
  return sgtest::catch_main(argc, argv, before_tests);
}
