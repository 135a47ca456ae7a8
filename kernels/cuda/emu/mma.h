// The CUDA emulator's stand-in for <mma.h>: the nvcuda::wmma subset kernels/cuda/conv.cu
// uses (m16n16k8 TF32 fragments, f32 accumulators).
//
// Fragment layout: CUDA documents it as unspecified, so kernels may only touch a fragment's
// x[] elementwise (as conv.cu does to round to TF32). Here element t of lane l is entry
// e = 32 t + l of the tile read row-major (row e / cols, column e % cols); a kernel that
// assumed any particular hardware layout would get wrong answers, as it should.
//
// mma_sync is warp-collective: each lane publishes its A, B and C elements to the warp's
// scratch, the warp meets at a barrier, each lane computes its own D entries, and a second
// barrier frees the scratch. Products use the inputs' TF32 values (the low 13 mantissa bits
// are dropped, as the tensor cores ignore them); they are exact in f32 and are summed in f32
// in k order.
#pragma once
#include <cstdint>
#include <cstring>

#include "cuda_runtime.h"

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

// TF32: 10 explicit mantissa bits, round to nearest, ties away from zero (cvt.rna.tf32.f32).
inline float __float_to_tf32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;  // inf / NaN pass
  std::memcpy(&f, &u, 4);
  return f;
}

namespace detail {
template <class Use, int M, int N, int K>
struct shape;
template <int M, int N, int K>
struct shape<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct shape<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct shape<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};
inline float tf32_truncate(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u &= 0xffffe000u;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  using S = detail::shape<Use, M, N, K>;
  static constexpr int rows = S::rows, cols = S::cols;
  static constexpr int num_elements = rows * cols / 32;
  float x[num_elements];
  // Position in the tile of element t of this lane.
  static int row(int t) { return (32 * t + sgemu::lane_id()) / cols; }
  static int col(int t) { return (32 * t + sgemu::lane_id()) % cols; }
};

template <class Use, int M, int N, int K, class T, class L>
void fill_fragment(fragment<Use, M, N, K, T, L>& f, float v) {
  for (int t = 0; t < f.num_elements; ++t) f.x[t] = v;
}

template <class Use, int M, int N, int K, class T, class L>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const float* p, unsigned ldm) {
  static_assert(!std::is_same_v<L, void>, "load_matrix_sync of an A/B fragment needs its layout");
  for (int t = 0; t < f.num_elements; ++t) {
    const int r = f.row(t), c = f.col(t);
    f.x[t] = std::is_same_v<L, row_major> ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
  }
}

template <int M, int N, int K, class T>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
  for (int t = 0; t < f.num_elements; ++t) {
    const int r = f.row(t), c = f.col(t);
    if (layout == mem_row_major)
      p[(size_t)r * ldm + c] = f.x[t];
    else
      p[(size_t)c * ldm + r] = f.x[t];
  }
}

template <int M, int N, int K, class T, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LA>& a,
              const fragment<matrix_b, M, N, K, T, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
  static_assert((M * K + K * N + M * N) * sizeof(float) <= 4096, "fragment tiles exceed the warp scratch");
  float* A = static_cast<float*>(sgemu::warp_scratch());  // [M][K]
  float* B = A + M * K;                                   // [K][N]
  float* C = B + K * N;                                   // [M][N]
  for (int t = 0; t < a.num_elements; ++t) A[a.row(t) * K + a.col(t)] = detail::tf32_truncate(a.x[t]);
  for (int t = 0; t < b.num_elements; ++t) B[b.row(t) * N + b.col(t)] = detail::tf32_truncate(b.x[t]);
  for (int t = 0; t < c.num_elements; ++t) C[c.row(t) * N + c.col(t)] = c.x[t];
  sgemu::syncwarp();
  for (int t = 0; t < d.num_elements; ++t) {
    const int r = d.row(t), col = d.col(t);
    float acc = 0.0f;
    for (int k = 0; k < K; ++k) acc += A[r * K + k] * B[k * N + col];
    d.x[t] = C[r * N + col] + acc;
  }
  sgemu::syncwarp();
}

}  // namespace nvcuda::wmma
