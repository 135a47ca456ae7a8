// study/common.h: what the kernel study files (study/*.cu) share, so each of them holds only
// its op: command-line parsing, device buffers, random inputs, the comparison against the CPU
// kernel, and the timers. Compiles with nvcc and on the CUDA emulator (docs/cuda-emulator.md),
// like kernels/cuda/*.cu; launches go through kernels::cuda::launch (kernels/cuda/common.cuh).
//
// Conventions of every study program:
//   study_<op>            runs every version: validates each against the CPU kernel, then
//                         (on a GPU) times it
//   study_<op> V          version V only (llm.c's dev/cuda style)
//   study_<op> --validate small shapes, validation only, no timing (what ctest runs on the
//                         emulator; the emulator always behaves as if --validate were given)
// Exit status 1 when any validation FAILs.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/runtime.h"

namespace study {

namespace kc = sg::kernels::cuda;

inline bool on_emulator() {
#ifdef SG_CUDA_EMU
  return true;
#else
  return false;
#endif
}

struct Args {
  int version = 0;        // 0: all
  bool validate = false;  // small shapes, no timing
  bool timing() const { return !validate; }
  bool wants(int v) const { return version == 0 || version == v; }
};

inline Args parse_args(int argc, char** argv, const char* usage) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--validate") == 0) {
      a.validate = true;
    } else if (argv[i][0] >= '0' && argv[i][0] <= '9') {
      a.version = std::atoi(argv[i]);
    } else {
      std::fprintf(stderr, "usage: %s\n", usage);
      std::exit(2);
    }
  }
  if (on_emulator()) a.validate = true;  // timing the emulator measures the host CPU, not a GPU
  if (!on_emulator() && kc::device_count() == 0) {
    std::fprintf(stderr, "no CUDA device: nothing to run (build with -DSG_CUDA_EMU=ON to validate on the CPU)\n");
    std::exit(2);
  }
  std::printf("device: %s%s\n", kc::device_name().c_str(), a.validate ? " (validation only, small shapes)" : "");
  return a;
}

// A device array of float, freed at scope exit.
struct DeviceBuffer {
  float* p = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(size_t count) : n(count) {
    p = static_cast<float*>(kc::raw_malloc(std::max<size_t>(n, 1) * sizeof(float)));
    if (!p) throw kc::CudaError("study: out of device memory");
    kc::memset_async(p, 0xff, n * sizeof(float));  // NaNs: a kernel that skips an output shows
  }
  explicit DeviceBuffer(const std::vector<float>& h) : DeviceBuffer(h.size()) { upload(h); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { kc::raw_free(p); }
  void upload(const std::vector<float>& h) { kc::memcpy_h2d(p, h.data(), n * sizeof(float)); }
  std::vector<float> download() const {
    std::vector<float> h(n);
    kc::memcpy_d2h(h.data(), p, n * sizeof(float));
    return h;
  }
  size_t bytes() const { return n * sizeof(float); }
};

inline std::vector<float> randn(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// PASS when |got - ref| <= atol + rtol * |ref| for every element (and no NaN). Prints the max
// absolute and relative errors. Returns false on FAIL and counts it in failures().
inline int& failures() {
  static int n = 0;
  return n;
}
inline bool check(const char* what, const std::vector<float>& got, const std::vector<float>& ref, double atol,
                  double rtol) {
  double max_abs = 0, max_rel = 0;
  bool ok = got.size() == ref.size();
  for (size_t i = 0; ok && i < ref.size(); ++i) {
    const double d = std::fabs((double)got[i] - (double)ref[i]);
    if (!(d <= atol + rtol * std::fabs((double)ref[i]))) ok = false;  // NaN fails too
    if (std::isnan(d)) max_abs = NAN;
    max_abs = std::max(max_abs, d);
    max_rel = std::max(max_rel, d / std::max(std::fabs((double)ref[i]), 1e-30));
  }
  std::printf("  %-44s max_abs %.3e  max_rel %.3e  (atol %.0e, rtol %.0e)  %s\n", what, max_abs, max_rel, atol, rtol,
              ok ? "PASS" : "FAIL");
  if (!ok) ++failures();
  return ok;
}

// Milliseconds per call of f (median of `reps`, after `warmup` calls), cudaEvents on the
// engine's stream (kernels::cuda::stream()). Returns -1 on the emulator (no timing there).
inline double time_ms(const std::function<void()>& f, int warmup = 5, int reps = 20) {
#ifdef SG_CUDA_EMU
  (void)f, (void)warmup, (void)reps;
  return -1;
#else
  cudaStream_t s = kc::cu_stream();
  for (int i = 0; i < warmup; ++i) f();
  cudaEvent_t a, b;
  SG_CUDA_CHECK(cudaEventCreate(&a));
  SG_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> ms(reps);
  for (int i = 0; i < reps; ++i) {
    SG_CUDA_CHECK(cudaEventRecord(a, s));
    f();
    SG_CUDA_CHECK(cudaEventRecord(b, s));
    SG_CUDA_CHECK(cudaEventSynchronize(b));
    SG_CUDA_CHECK(cudaEventElapsedTime(&ms[i], a, b));
  }
  SG_CUDA_CHECK(cudaEventDestroy(a));
  SG_CUDA_CHECK(cudaEventDestroy(b));
  std::sort(ms.begin(), ms.end());
  return ms[reps / 2];
#endif
}

// The memory-bound roofline of this run: GB/s of a device-to-device cudaMemcpy of `bytes`
// (read + write counted, as the kernels' x + y traffic is).
inline double d2d_gbs(size_t bytes) {
  DeviceBuffer a(bytes / sizeof(float)), b(bytes / sizeof(float));
  const double ms = time_ms([&] { kc::memcpy_d2d(b.p, a.p, bytes); });
  return 2.0 * bytes / (ms * 1e-3) / 1e9;
}

inline void report_gbs(const char* what, double ms, double bytes, double roof_gbs) {
  const double gbs = bytes / (ms * 1e-3) / 1e9;
  std::printf("  %-44s %9.4f ms  %8.1f GB/s  (%.0f%% of the d2d copy)\n", what, ms, gbs, 100.0 * gbs / roof_gbs);
}
inline void report_tflops(const char* what, double ms, double flop) {
  std::printf("  %-44s %9.4f ms  %8.2f TFLOP/s\n", what, ms, flop / (ms * 1e-3) / 1e12);
}

inline int finish() {
  if (failures())
    std::printf("%d validation(s) FAILED\n", failures());
  else
    std::printf("all validations PASSED\n");
  return failures() ? 1 : 0;
}

}  // namespace study
