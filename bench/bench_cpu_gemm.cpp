// CPU benchmark of the f32 GEMM (kernels/cpu/gemm.h): our packed AVX2 / AVX-512 kernel
// (kernels/cpu/gemm_avx2.cpp) against Eigen's GEMM, OpenBLAS's sgemm (what PyTorch calls for
// torch.mm on this machine, loaded with dlopen when libopenblas.so.0 is installed) and the
// FMA roofline, all measured in the same run.
//
//   roofline: every thread runs 12 independent chains of FMAs (no memory traffic; bench/roofline.h), 16-wide
//             where the CPU has AVX-512F, else 8-wide (the 8-wide rate is printed too);
//             GFLOP/s = 2 * width * FMAs / s, summed over the threads. The best any GEMM can do.
//   shapes:   the GEMMs the conv kernels issue on StyleGAN2's layers (M x N x K, row-major
//             C[M,N] = A[M,K] @ B[K,N]): the Winograd path's [O, C] @ [C, tiles] per element
//             (kernels/cpu/winograd.cpp) and its weight gradient [O, tiles] @ [tiles, C]^T,
//             the im2col path's [Cout, Cin*9] @ [Cin*9, Ho*Wo], and the Linear layers'
//             [batch, in] @ [out, in]^T.
// Threads: `threads=1` rows are called from inside a parallel region of one thread per core
// (as the conv kernels call them, each thread its own GEMM; GFLOP/s summed); `threads=T` rows
// are one call that splits itself (OMP_NUM_THREADS).
// Protocol: 2 warmup calls, then repeat until 0.3 s; the best of 3 such runs.
//
// Usage: build/bench_cpu_gemm
// Output: one line per shape: ours, eigen and openblas GFLOP/s, their ratios to each other and
// to the roofline.
#include <dlfcn.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/roofline.h"
#include "kernels/cpu/gemm.h"

namespace {

using Clock = std::chrono::steady_clock;

// Seconds per call of f, best of 3 runs of at least 0.3 s each.
double time_call(const std::function<void()>& f) {
  f(), f();
  double best = 1e30;
  for (int run = 0; run < 3; ++run) {
    int reps = 0;
    const auto t0 = Clock::now();
    double el = 0;
    do {
      f();
      ++reps;
      el = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (el < 0.3);
    best = std::min(best, el / reps);
  }
  return best;
}

// GFLOP/s of `threads` threads running FMA chains of the given width (bench/roofline.h).
double roofline(int threads, int width = 8) { return sg::bench::fma_roofline_gflops(threads, width); }

using SgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);

struct Shape {
  std::string what;
  int64_t M, N, K;
  bool trans_b;
};

}  // namespace

int main() {
  using namespace sg::kernels::cpu;
  const int T = omp_get_max_threads();
  if (!gemm_avx2_available()) {
    std::printf("bench_cpu_gemm: this CPU has no AVX2 + FMA; the packed GEMM is not used here\n");
    return 1;
  }
  SgemmFn openblas = nullptr;
  void (*openblas_threads)(int) = nullptr;
  if (void* h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL)) {
    openblas = (SgemmFn)dlsym(h, "sgemm_");
    openblas_threads = (void (*)(int))dlsym(h, "openblas_set_num_threads");
  }
  // The roofline: the wider FMAs where the CPU has them (gemm_avx2.cpp runs its AVX-512
  // kernel there), else the 8-wide ones.
  const int width = gemm_avx512_available() ? 16 : 8;
  const double peak1 = roofline(1, width), peakT = roofline(T, width);
  const bool ours512 = gemm_avx512_enabled();  // (SG_CPU_GEMM=avx2: off)
  // The vendor-chosen variants (gemm.h): read by switching them and back.
  const bool tall_wide = gemm_tall_wide(false), spread = gemm_spread_broadcasts(false);
  gemm_tall_wide(tall_wide), gemm_spread_broadcasts(spread);
  const std::string kernels = !ours512 ? "AVX2 (6x16)"
                                       : std::string("AVX-512 (") + (tall_wide ? "12x32, " : "") + "6x32, 12x16" +
                                             (spread ? " with register broadcasts" : "") + ")";
  std::printf("# bench_cpu_gemm: f32, OMP_NUM_THREADS=%d, openblas %s, our micro-kernels %s\n", T,
              openblas ? "libopenblas.so.0 (set to the row's thread count)" : "not installed (column -)",
              kernels.c_str());
  std::printf("# roofline (%d-wide FMA chains, no memory): 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s", width,
              peak1, T, peakT);
  if (width == 16) std::printf(" (8-wide: %.1f / %.1f)", roofline(1), roofline(T));
  std::printf("\n");
  const std::vector<Shape> shapes = {
      {"winograd small 64ch, 8x8 batch 16 (256 tiles)", 64, 256, 64, false},
      {"winograd small 64ch, 32x32 chunk", 64, 2048, 64, false},
      {"winograd seed32 384ch 4x4..8x8", 384, 512, 384, false},
      {"winograd seed32 192ch 16x16", 192, 1024, 192, false},
      {"winograd seed32 48ch 32x32", 48, 2048, 48, false},
      {"winograd wgrad 64ch ([O,t]@[C,t]^T)", 64, 64, 2048, true},
      {"winograd wgrad 384ch", 384, 384, 512, true},
      {"im2col 64ch 3x3 16x16", 64, 256, 576, false},
      {"im2col 128ch s2 32->16", 128, 256, 1152, false},
      {"linear 16x64 @ (64x64)^T", 16, 64, 64, true},
      {"linear 32x192 @ (192x192)^T", 32, 192, 192, true},
      {"square 512", 512, 512, 512, false},
  };
  std::printf("%-46s %5s %5s %5s %3s %8s %8s %8s %7s %7s %7s\n", "shape", "M", "N", "K", "thr", "ours_gf", "eigen_gf",
              "oblas_gf", "ours/eig", "ours/ob", "ours/pk");
  const std::vector<int> thread_counts = T == 1 ? std::vector<int>{1} : std::vector<int>{1, T};
  for (const Shape& s : shapes)
    for (int threads : thread_counts) {
      const int64_t M = s.M, N = s.N, K = s.K, ldb = s.trans_b ? K : N;
      // One set of operands per thread (the threads=1 rows run `T` independent GEMMs).
      const int copies = threads == 1 ? T : 1;
      std::vector<std::vector<float>> A(copies, std::vector<float>(M * K, 0.5f)),
          B(copies, std::vector<float>(K * N, 0.25f)), C(copies, std::vector<float>(M * N));
      auto run = [&](const std::function<void(int)>& g) {
        if (threads == 1) {
#pragma omp parallel num_threads(T)
          g(omp_get_thread_num());
        } else {
          g(0);
        }
      };
      const double flop = 2.0 * M * N * K * copies;
      const double ours =
          flop / time_call([&] {
            run([&](int i) {
              gemm_f32_avx2(false, s.trans_b, M, N, K, 1.f, A[i].data(), K, B[i].data(), ldb, 0.f, C[i].data(), N);
            });
          }) *
          1e-9;
      const double eig =
          flop / time_call([&] {
            run([&](int i) {
              gemm_eigen<float>(false, s.trans_b, M, N, K, 1.f, A[i].data(), K, B[i].data(), ldb, 0.f, C[i].data(), N);
            });
          }) *
          1e-9;
      double ob = 0;
      if (openblas) {
        // Column-major sgemm: C^T [N, M] = op(B)^T [N, K] @ A^T [K, M].
        const int m = int(N), n = int(M), k = int(K), lb = int(ldb), la = int(K), lc = int(N);
        const float one = 1.f, zero = 0.f;
        if (openblas_threads) openblas_threads(threads);
        ob = flop / time_call([&] {
               run([&](int i) {
                 openblas(s.trans_b ? "T" : "N", "N", &m, &n, &k, &one, B[i].data(), &lb, A[i].data(), &la, &zero,
                          C[i].data(), &lc);
               });
             }) *
             1e-9;
      }
      char obs[32] = "-", obr[32] = "-";
      if (openblas) std::snprintf(obs, sizeof obs, "%.1f", ob), std::snprintf(obr, sizeof obr, "%.2f", ours / ob);
      std::printf("%-46s %5ld %5ld %5ld %3d %8.1f %8.1f %8s %7.2f %7s %7.2f\n", s.what.c_str(), (long)M, (long)N,
                  (long)K, threads, ours, eig, obs, ours / eig, obr, ours / peakT);  // both row kinds use all T cores
    }
  return 0;
}
