// Row-major (batched) GEMM through cuBLAS. Declaration and formula: gemm.h.
//
// Layout: cuBLAS is column-major; a row-major [R, C] matrix with leading dim ld is, read
// column-major, its transpose [C, R] with the same ld. So row-major C = op(A) op(B) is
// computed as column-major C^T = op(B)^T op(A)^T: cublas<t>gemm(opB, opA, N, M, K, B, ldb,
// A, lda, C, ldc), no copies.
//
// Variants: cublasSgemm / cublasDgemm for one matrix, cublas<t>gemmStridedBatched for a
// batch (3-D matmul). f32 math mode per call: CUBLAS_DEFAULT_MATH (true fp32) unless
// set_tf32(true) selected CUBLAS_TF32_TENSOR_OP_MATH. All calls go to the handle bound to
// the engine's stream (runtime.h); results are deterministic for a given GPU model.
//
// Benchmark: no benchmark of these wrappers yet; build/bench_cuda_kernels times cuBLAS SGEMM
// 8192^3 (f32 and TF32) directly, as the roofline of its conv cases.
#include <algorithm>
#include <atomic>
#include <climits>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gemm.h"

namespace sg::kernels::cuda {

namespace {

std::atomic<bool> g_tf32{false};

cublasHandle_t handle() { return static_cast<cublasHandle_t>(cublas_handle()); }

int to_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw CudaError(std::string("gemm: ") + what + " = " + std::to_string(v) + " is out of cuBLAS's int range");
  return (int)v;
}

cublasStatus_t call(const float* alpha, const float* beta, cublasOperation_t ob, cublasOperation_t oa, int n, int m,
                    int k, const float* B, int ldb, long long sb, const float* A, int lda, long long sa, float* C,
                    int ldc, long long sc, int batch) {
  SG_CUBLAS_CHECK(cublasSetMathMode(handle(), g_tf32.load() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  if (batch == 1) return cublasSgemm(handle(), ob, oa, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc);
  return cublasSgemmStridedBatched(handle(), ob, oa, n, m, k, alpha, B, ldb, sb, A, lda, sa, beta, C, ldc, sc, batch);
}

cublasStatus_t call(const double* alpha, const double* beta, cublasOperation_t ob, cublasOperation_t oa, int n, int m,
                    int k, const double* B, int ldb, long long sb, const double* A, int lda, long long sa, double* C,
                    int ldc, long long sc, int batch) {
  if (batch == 1) return cublasDgemm(handle(), ob, oa, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc);
  return cublasDgemmStridedBatched(handle(), ob, oa, n, m, k, alpha, B, ldb, sb, A, lda, sa, beta, C, ldc, sc, batch);
}

}  // namespace

void set_tf32(bool on) { g_tf32.store(on); }
bool tf32() { return g_tf32.load(); }

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc, int64_t batch, int64_t stride_a, int64_t stride_b, int64_t stride_c) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  // cuBLAS wants every leading dim >= 1 even when K == 0 (then C = beta C).
  const int m = to_int(M, "M"), n = to_int(N, "N"), k = to_int(K, "K");
  const int la = to_int(std::max<int64_t>(lda, 1), "lda"), lb = to_int(std::max<int64_t>(ldb, 1), "ldb");
  const int lc = to_int(std::max<int64_t>(ldc, 1), "ldc"), nb = to_int(batch, "batch");
  const cublasOperation_t oa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, ob = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  SG_CUBLAS_CHECK(call(&alpha, &beta, ob, oa, n, m, k, B, lb, (long long)stride_b, A, la, (long long)stride_a, C, lc,
                       (long long)stride_c, nb));
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t, int64_t, int64_t, int64_t, int64_t);

}  // namespace sg::kernels::cuda
