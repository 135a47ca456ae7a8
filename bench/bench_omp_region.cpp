// What one parallel region costs, against the same loop on one thread: as an OpenMP region
// under whatever wait policy the environment selects (OMP_WAIT_POLICY, GOMP_SPINCOUNT), and on
// the kernels' own pool (kernels/cpu/parallel.h) under SG_THREAD_WAIT: the numbers behind the
// pool's waiting (docs/training.md, "Threads") and the kernels' thresholds for going parallel
// (kernels/cpu/loops.h kParallelGrain and the like).
//
// Each iteration runs `out[i] = a[i] + b[i]` over n floats (n = 0: an empty region), then
// about 7 us of serial work, as an op's dispatch between two kernels; reported: microseconds
// per iteration with the loop on one thread (serial_us), as an OpenMP region over all threads
// (omp_us) and as a region of the pool (pool_us), and the differences to serial (at n = 0: the
// cost of a region alone).
//
// Usage: build/bench_omp_region [--reps N]
//   OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive SG_THREAD_WAIT=passive build/bench_omp_region
//   OMP_NUM_THREADS=2 GOMP_SPINCOUNT=10000 SG_THREAD_WAIT=spin build/bench_omp_region
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace {

double serial_work() {  // about 7 us on a 2026 x86-64 core, not optimized away
  volatile double x = 0;
  for (int k = 0; k < 2000; ++k) x = x + k;
  return x;
}

enum class Mode { serial, omp, pool };

double time_us(int reps, int64_t n, Mode mode, float* __restrict out, const float* __restrict a,
               const float* __restrict b) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) {
    if (mode == Mode::pool) {
      sg::kernels::cpu::parallel_region(1 << 30, [&](int tid, int team) {
        const int64_t i0 = n * tid / team, i1 = n * (tid + 1) / team;
#pragma omp simd
        for (int64_t i = i0; i < i1; ++i) out[i] = a[i] + b[i];
      });
    } else {
#pragma omp parallel for simd if (mode == Mode::omp)
      for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
    }
    serial_work();
  }
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / reps;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 2000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--reps N]\n", argv[0]);
      return 2;
    }
  }
  if (reps < 1) {
    std::fprintf(stderr, "%s: --reps must be at least 1\n", argv[0]);
    return 2;
  }
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  std::printf(
      "# bench_omp_region: omp_get_max_threads()=%d OMP_WAIT_POLICY=%s GOMP_SPINCOUNT=%s; pool: %d threads, "
      "SG_THREAD_WAIT %s; reps=%d\n",
      omp_get_max_threads(), policy ? policy : "(unset)", spin ? spin : "(unset)", sg::kernels::cpu::num_threads(),
      sg::kernels::cpu::wait_policy().c_str(), reps);
  std::printf("%10s %11s %9s %10s %9s %10s\n", "floats", "serial_us", "omp_us", "omp-serial", "pool_us", "pool-serial");
  const int64_t sizes[] = {0, 1 << 12, 1 << 14, 1 << 15, 1 << 16, 1 << 17, 1 << 18, 1 << 20};
  std::vector<float> a(sizes[7], 1.f), b(sizes[7], 2.f), out(sizes[7]);
  for (const int64_t n : sizes) {
    const int r = n >= (1 << 18) ? std::max(1, reps / 8) : reps;
    time_us(r / 4 + 1, n, Mode::omp, out.data(), a.data(), b.data());  // warm-up: threads started, pages touched
    time_us(r / 4 + 1, n, Mode::pool, out.data(), a.data(), b.data());
    const double s = time_us(r, n, Mode::serial, out.data(), a.data(), b.data());
    const double p = time_us(r, n, Mode::omp, out.data(), a.data(), b.data());
    const double q = time_us(r, n, Mode::pool, out.data(), a.data(), b.data());
    std::printf("%10lld %11.2f %9.2f %10.2f %9.2f %10.2f\n", (long long)n, s, p, p - s, q, q - s);
  }
  return 0;
}
