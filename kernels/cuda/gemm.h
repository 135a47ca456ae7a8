// Row-major GEMM on CUDA through cuBLAS (kernels/cuda/gemm.cu), the CUDA twin of
// kernels/cpu/gemm.h:
//   C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b],   b = 0 .. batch-1
//   op(A) is [M, K] (A stored [M, K] with leading dim lda, or [K, M] when trans_a)
//   op(B) is [K, N] (B stored [K, N] with leading dim ldb, or [N, K] when trans_b)
//   A[b] = A + b * stride_a (elements), likewise B, C.
// TF32 tensor-core math for f32 is off by default; set_tf32(true) allows it (faster, ~10-bit
// mantissa inputs). f64 is unaffected. Plain C++ header.
#pragma once
#include <cstdint>

namespace sg::kernels::cuda {

void set_tf32(bool on);
bool tf32();

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc, int64_t batch = 1, int64_t stride_a = 0, int64_t stride_b = 0,
          int64_t stride_c = 0);

}  // namespace sg::kernels::cuda
