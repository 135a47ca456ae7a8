// The FMA roofline of this CPU, the best any f32 kernel can do, for the benchmarks that print
// their rates against it (bench_cpu_gemm, bench_cpu_conv --shapes).
//
// fma_roofline_gflops(threads, width): `threads` std::threads each run 12 independent chains
// acc = acc * a + b of `width`-wide float vectors (GCC vector extensions, contracted to FMAs;
// 16-wide needs AVX-512F, 8-wide AVX2 + FMA: callers check), no memory traffic;
// GFLOP/s = 2 * width * FMAs / s summed over the threads, the best of the timed runs of one second
// (at least 5): long enough that threads another library left spinning have gone to sleep.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace sg::bench {

// a and b come through volatiles: with them known, GCC proved the chain that starts at 1 a
// fixed point (1 * 0.999f + 1e-3f == 1 in float) and dropped it, so 11 chains ran where 12 were
// counted and the roofline read 12/11 of the truth (found 3 December 2026: every roofline
// fraction printed before then is about 9% low).
template <class V>
__attribute__((always_inline)) inline double fma_chains(int64_t iters) {
  static volatile float va = 0.999f, vb = 1e-3f;
  V acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = V{} + float(i);
  const V a = V{} + va, b = V{} + vb;
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = acc[i] * a + b;
  double s = 0;
  for (int i = 0; i < 12; ++i) s += acc[i][0];
  return s;
}
typedef float V8 __attribute__((vector_size(32)));
typedef float V16 __attribute__((vector_size(64)));
__attribute__((target("avx2,fma"))) inline double fma_chains8(int64_t iters) { return fma_chains<V8>(iters); }
// 16-wide AVX-512 FMAs: on CPUs that execute them at full width (Zen 5, Intel's server cores)
// twice the rate of the 8-wide ones.
__attribute__((target("avx512f"))) inline double fma_chains16(int64_t iters) { return fma_chains<V16>(iters); }

inline double fma_roofline_gflops(int threads, int width) {
  const int64_t iters = 2'000'000;  // 24 M FMAs per thread: ~6 ms at 2 FMAs per cycle
  volatile double sink = 0;
  double best = 1e30;
  const auto start = std::chrono::steady_clock::now();
  for (int run = 0; run < 5 || std::chrono::steady_clock::now() - start < std::chrono::seconds(1); ++run) {
    std::vector<double> out(threads);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&out, t, width] { out[t] = width == 16 ? fma_chains16(iters) : fma_chains8(iters); });
    for (auto& th : pool) th.join();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    for (double v : out) sink = sink + v;
  }
  return threads * 2.0 * width * 12 * double(iters) / best * 1e-9;
}

}  // namespace sg::bench
