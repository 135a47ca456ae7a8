// C = alpha * op(A) @ op(B) + beta * C, row-major (multithreaded with OpenMP when called
// outside a parallel region, single-threaded inside one).
//   op(A) is [M, K] (A stored [M, K] with leading dim lda, or [K, M] when trans_a)
//   op(B) is [K, N] (B stored [K, N] with leading dim ldb, or [N, K] when trans_b)
// beta == 0 overwrites C without reading it.
// Two implementations (kernels/cpu/gemm.cpp picks):
//   f32 on a CPU with AVX2 + FMA (checked at run time): our packed GEMM with a 6x16 register
//     micro-kernel, kernels/cpu/gemm_avx2.cpp (its header explains the blocking);
//   otherwise (f64, or no AVX2, or SG_CPU_GEMM=eigen in the environment): Eigen's GEMM.
// Benchmark: build/bench_cpu_gemm (bench/bench_cpu_gemm.cpp) times both on the shapes the conv
// kernels use, against the FMA roofline measured in the same run; build/bench_cpu_conv times
// the convolutions built on them.
#pragma once
#include <cstdint>

namespace sg::kernels::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

// The two implementations, callable directly (tests, benchmarks). gemm_f32_avx2 requires
// gemm_avx2_available().
template <class T>
void gemm_eigen(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
bool gemm_avx2_available();
void gemm_f32_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace sg::kernels::cpu
