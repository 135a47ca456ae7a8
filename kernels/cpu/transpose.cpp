// A 2-D transpose: see transpose.h.
#include "kernels/cpu/transpose.h"

#include <type_traits>

#include "kernels/cpu/avx2.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/parallel.h"

namespace sg::kernels::cpu {

namespace {

constexpr int64_t kB = 8;  // block side

// Rows [i0, i1) of a (columns of out), every column of a.
template <class T>
void transpose_rows(const T* a, int64_t i0, int64_t i1, int64_t cols, int64_t lda, T* out, int64_t ldo) {
  for (int64_t ib = i0; ib < i1; ib += kB)
    for (int64_t jb = 0; jb < cols; jb += kB) {
      const int64_t ie = ib + kB < i1 ? ib + kB : i1, je = jb + kB < cols ? jb + kB : cols;
      for (int64_t i = ib; i < ie; ++i)
        for (int64_t j = jb; j < je; ++j) out[j * ldo + i] = a[i * lda + j];
    }
}

#if defined(__x86_64__) || defined(__i386__)
// The same for f32 with full 8x8 blocks in registers; rows [i0, i1) a multiple of 8 apart.
SG_AVX2 void transpose_rows_avx2(const float* a, int64_t i0, int64_t i1, int64_t cols, int64_t lda, float* out,
                                 int64_t ldo) {
  const int64_t cols8 = cols / kB * kB;
  for (int64_t ib = i0; ib < i1; ib += kB) {
    for (int64_t jb = 0; jb < cols8; jb += kB) {
      __m256 r[8];
      for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(a + (ib + k) * lda + jb);
      transpose8x8(r);
      for (int k = 0; k < 8; ++k) _mm256_storeu_ps(out + (jb + k) * ldo + ib, r[k]);
    }
    for (int64_t i = ib; i < ib + kB; ++i)
      for (int64_t j = cols8; j < cols; ++j) out[j * ldo + i] = a[i * lda + j];
  }
}
#endif

}  // namespace

template <class T>
void transpose2d(const T* a, int64_t rows, int64_t cols, int64_t lda, T* out, int64_t ldo) {
  const int64_t blocks = (rows + kB - 1) / kB;
  parallel_for(blocks, rows * cols > kParallelGrain, [&](int64_t b0, int64_t b1) {
    const int64_t i0 = b0 * kB, i1 = b1 * kB < rows ? b1 * kB : rows;
#if defined(__x86_64__) || defined(__i386__)
    if constexpr (std::is_same_v<T, float>)
      if (gemm_avx2_available()) {
        const int64_t full = i0 + (i1 - i0) / kB * kB;
        transpose_rows_avx2(a, i0, full, cols, lda, out, ldo);
        transpose_rows(a, full, i1, cols, lda, out, ldo);
        return;
      }
#endif
    transpose_rows(a, i0, i1, cols, lda, out, ldo);
  });
}

template void transpose2d<float>(const float*, int64_t, int64_t, int64_t, float*, int64_t);
template void transpose2d<double>(const double*, int64_t, int64_t, int64_t, double*, int64_t);

}  // namespace sg::kernels::cpu
