#include "kernels/cpu/gemm.h"

#include <Eigen/Dense>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cpu/parallel.h"

namespace sg::kernels::cpu {

// Eigen's GEMM on one thread (CMakeLists.txt defines EIGEN_DONT_PARALLELIZE: Eigen's own
// OpenMP threads would not know about the kernels' pool); gemm_eigen slices it over the threads as
// kernels/cpu/gemm_avx2.cpp does.
template <class T>
void gemm_eigen_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                       const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using CMap = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
  using MMap = Eigen::Map<Mat, 0, Eigen::OuterStride<>>;
  MMap c(C, M, N, Eigen::OuterStride<>(ldc));
  if (beta == T(0))
    c.setZero();
  else if (beta != T(1))
    c *= beta;
  if (M == 0 || N == 0 || K == 0) return;
  CMap a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
  CMap b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b)
    c.noalias() += alpha * a * b;
  else if (trans_a && !trans_b)
    c.noalias() += alpha * a.transpose() * b;
  else if (!trans_a && trans_b)
    c.noalias() += alpha * a * b.transpose();
  else
    c.noalias() += alpha * a.transpose() * b.transpose();
}

template <class T>
void gemm_eigen(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  const bool parallel = !in_parallel() && num_threads() > 1 && 2.0 * double(M) * double(N) * double(K) >= 1 << 20;
  if (!parallel) return gemm_eigen_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (N >= M)  // one slice of columns per thread
    return parallel_for(N, true, [&](int64_t j0, int64_t j1) {
      gemm_eigen_serial(trans_a, trans_b, M, j1 - j0, K, alpha, A, lda, trans_b ? B + j0 * ldb : B + j0, ldb, beta,
                        C + j0, ldc);
    });
  parallel_for(M, true, [&](int64_t i0, int64_t i1) {  // one slice of rows per thread
    gemm_eigen_serial(trans_a, trans_b, i1 - i0, N, K, alpha, trans_a ? A + i0 : A + i0 * lda, lda, B, ldb, beta,
                      C + i0 * ldc, ldc);
  });
}

namespace {
// The packed kernel when the CPU has AVX2 + FMA, unless SG_CPU_GEMM=eigen asks for Eigen's
// (to compare the two inside one build: bench/bench_cpu_conv, the training benchmarks).
bool use_packed_f32() {
  static const bool packed = [] {
    const char* v = std::getenv("SG_CPU_GEMM");
    const std::string want = v ? v : "";
    if (!want.empty() && want != "eigen" && want != "packed" && want != "avx2")
      throw std::invalid_argument("SG_CPU_GEMM='" + want + "': expected 'eigen', 'packed' or 'avx2' (or unset)");
    if ((want == "packed" || want == "avx2") && !gemm_avx2_available())
      throw std::invalid_argument("SG_CPU_GEMM=" + want + ": this CPU has no AVX2 + FMA");
    return want != "eigen" && gemm_avx2_available();
  }();
  return packed;
}
}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    if (use_packed_f32()) return gemm_f32_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  gemm_eigen<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

bool gemm_packs_a() { return use_packed_f32(); }

void gemm_pack_a(PackedA& p, bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda) {
  if (use_packed_f32()) return gemm_pack_a_avx2(p, trans_a, M, K, A, lda);
  p.trans = trans_a, p.M = M, p.K = K, p.lda = lda, p.src = A;  // Eigen's GEMM: keep the operand, pack nothing
  p.data.clear();
}

bool gemm_packed_a_prepare(PackedA& p, int64_t M, int64_t K) {
  if (!use_packed_f32()) return p = PackedA{}, false;
  gemm_packed_a_prepare_avx2(p, M, K);
  return true;
}

bool gemm_pack_a_segments(PackedA& p, int64_t M, int64_t K, const float* A, int64_t lda, int64_t seg,
                          int64_t seg_stride) {
  if (!use_packed_f32()) return p = PackedA{}, false;
  gemm_pack_a_segments_avx2(p, M, K, A, lda, seg, seg_stride);
  return true;
}

PackedA gemm_pack_a(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda) {
  PackedA p;
  gemm_pack_a(p, trans_a, M, K, A, lda);
  return p;
}

void gemm_prepacked(const PackedA& A, bool trans_b, int64_t N, float alpha, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc) {
  if (!A.data.empty()) return gemm_prepacked_avx2(A, trans_b, N, alpha, B, ldb, beta, C, ldc);
  gemm<float>(A.trans, trans_b, A.M, N, A.K, alpha, A.src, A.lda, B, ldb, beta, C, ldc);
}

template void gemm_eigen<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                                int64_t, float, float*, int64_t);
template void gemm_eigen<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                                 int64_t, double, double*, int64_t);
template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace sg::kernels::cpu
