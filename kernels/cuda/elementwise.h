// CUDA elementwise kernels (kernels/cuda/elementwise.cu): unary ops by op code, binary ops
// and where() with numpy broadcasting, f32 <-> f64 casts, fill.
//
//   unary:   out[i] = f_op(a[i]; p0, p1, p2)                 (contiguous)
//   binary:  out[i] = f_op(a[i . sa], b[i . sb])              (out contiguous; broadcast dims
//                                                              of a/b have stride 0)
//   where:   out[i] = c[i . sc] != 0 ? a[i . sa] : b[i . sb]
//   cast:    out[i] = (D)in[i];   fill: out[i] = (T)value
//
// Layout: row-major, strides in elements, the same convention as kernels/cpu/loops.h. Before
// launch the host drops size-1 dims and merges adjacent dims that are contiguous for every
// operand (coalesce below); at most kMaxDims dims may remain.
//
// This header is plain C++ (no CUDA types): engine/ includes it. The StridedIndexer below is
// shared by the .cu files (elementwise, copy) and is marked host+device when nvcc sees it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/runtime.h"

#ifdef __CUDACC__
#define SG_CUDA_HD __host__ __device__ __forceinline__
#else
#define SG_CUDA_HD inline
#endif
#ifdef __CUDA_ARCH__
#define SG_CUDA_UNROLL _Pragma("unroll")
#else
#define SG_CUDA_UNROLL
#endif

namespace sg::kernels::cuda {

// Unary op codes. p0..p2 are the scalar parameters named in each comment; every op computes
// exactly what engine/ops/elementwise.cpp computes on the CPU (in T, except where noted).
enum class UnaryOp : int {
  neg,              // -x
  exp,              // e^x
  log,              // ln x
  sqrt,             // sqrt x
  rsqrt,            // 1 / sqrt x   (IEEE division and sqrt, not the approximate rsqrt)
  pow,              // x ^ (T)p0
  square,           // x * x
  abs,              // |x|
  sign,             // (x > 0) - (x < 0)
  tanh,             // tanh x
  sigmoid,          // 1 / (1 + e^-x)
  softplus,         // max(x, 0) + log1p(e^-|x|)
  leaky_relu,       // x > 0 ? x : x * (T)p0
  leaky_relu_mask,  // x > 0 ? 1 : (T)p0
  clamp,            // min(max(x, (T)p0), (T)p1)   (NaN propagates, as std::min/std::max)
  clamp_mask,       // p0 < x < p1 (compared in double, as the CPU does)
  add_scalar,       // x + (T)p0
  mul_scalar,       // x * (T)p0
  gt_scalar,        // x > p0 (compared in double)
  lt_scalar,        // x < p0 (compared in double)
  nan_to_num,       // NaN -> (T)p0, +inf -> (T)p1, -inf -> (T)p2
  isfinite_mask,    // x is finite ? 1 : 0
};

enum class BinaryOp : int { add, sub, mul, div, gt, lt, ge, le };

constexpr int kMaxDims = 8;

template <class T>
void unary(UnaryOp op, int64_t n, const T* a, T* out, double p0 = 0, double p1 = 0, double p2 = 0);

// shape: the output (broadcast) shape; sa / sb: element strides of a / b viewed as that shape.
template <class T>
void binary(BinaryOp op, const std::vector<int64_t>& shape, const T* a, const std::vector<int64_t>& sa, const T* b,
            const std::vector<int64_t>& sb, T* out);

template <class T>
void where(const std::vector<int64_t>& shape, const T* cond, const std::vector<int64_t>& sc, const T* a,
           const std::vector<int64_t>& sa, const T* b, const std::vector<int64_t>& sb, T* out);

template <class S, class D>
void cast(int64_t n, const S* in, D* out);

template <class T>
void fill(int64_t n, T* out, double value);

// ---- shared by the .cu files -------------------------------------------------------------

// Maps the linear (row-major) index of a contiguous iteration space to one element offset per
// operand. Dims are stored innermost first; the outermost needs no division.
template <int K, class I>
struct StridedIndexer {
  int ndim = 0;
  I size[kMaxDims] = {};
  I stride[K][kMaxDims] = {};

  SG_CUDA_HD void offsets(I linear, I (&off)[K]) const {
    SG_CUDA_UNROLL
    for (int k = 0; k < K; ++k) off[k] = 0;
    SG_CUDA_UNROLL
    for (int d = 0; d < kMaxDims - 1; ++d) {
      if (d >= ndim - 1) break;
      const I q = linear / size[d];
      const I c = linear - q * size[d];
      linear = q;
      SG_CUDA_UNROLL
      for (int k = 0; k < K; ++k) off[k] += c * stride[k][d];
    }
    if (ndim > 0) {
      SG_CUDA_UNROLL
      for (int k = 0; k < K; ++k) off[k] += linear * stride[k][ndim - 1];
    }
  }
};

// Host side: a shape with K stride vectors, size-1 dims dropped and adjacent dims merged where
// every operand is contiguous across them, innermost first. `small` says every offset and the
// element count fit in int32 (the kernels then index in 32 bits).
template <int K>
struct Coalesced {
  std::vector<int64_t> size;
  std::vector<int64_t> stride[K];
  int64_t numel = 1;
  bool small = true;

  Coalesced(const std::vector<int64_t>& shape, const std::vector<int64_t>* const (&strides)[K]) {
    for (auto s : shape) numel *= s;
    // Walk from the innermost dim outwards, merging dim d into the current innermost-first
    // group when stride[d] == stride[last] * size[last] for every operand.
    for (int d = (int)shape.size() - 1; d >= 0; --d) {
      if (shape[d] == 1) continue;
      bool merge = !size.empty();
      for (int k = 0; k < K && merge; ++k) merge = (*strides[k])[d] == stride[k].back() * size.back();
      if (merge) {
        size.back() *= shape[d];
      } else {
        size.push_back(shape[d]);
        for (int k = 0; k < K; ++k) stride[k].push_back((*strides[k])[d]);
      }
    }
    // Element counts up to 2^30 leave room for the grid-stride step without int32 overflow
    // (the thresholds: launch_limits(), which tests lower).
    const int64_t lim = launch_limits().index32_span;
    small = numel <= launch_limits().index32_elements;
    for (int k = 0; k < K; ++k) {
      int64_t span = 0;
      for (std::size_t d = 0; d < size.size(); ++d)
        span += (stride[k][d] < 0 ? -stride[k][d] : stride[k][d]) * (size[d] - 1);
      if (span >= lim) small = false;
    }
  }
  int ndim() const { return (int)size.size(); }

  template <class I>
  StridedIndexer<K, I> indexer() const {
    StridedIndexer<K, I> ix;
    ix.ndim = ndim();
    for (int d = 0; d < ndim(); ++d) {
      ix.size[d] = (I)size[d];
      for (int k = 0; k < K; ++k) ix.stride[k][d] = (I)stride[k][d];
    }
    return ix;
  }
};

}  // namespace sg::kernels::cuda
