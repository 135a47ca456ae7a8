// C = alpha * op(A) @ op(B) + beta * C, row-major, through Eigen's GEMM (multithreaded with
// OpenMP when called outside a parallel region, single-threaded inside one).
//   op(A) is [M, K] (A stored [M, K] with leading dim lda, or [K, M] when trans_a)
//   op(B) is [K, N] (B stored [K, N] with leading dim ldb, or [N, K] when trans_b)
// Benchmark: no benchmark of the GEMM alone; build/bench_cpu_conv (bench/bench_cpu_conv.cpp)
// times conv2d, which is im2col + this GEMM.
#pragma once
#include <cstdint>

namespace sg::kernels::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace sg::kernels::cpu
