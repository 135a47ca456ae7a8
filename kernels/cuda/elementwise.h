// CUDA elementwise kernels (kernels/cuda/elementwise.cu): unary and binary ops (the functors
// of kernels/elementwise.h, shared with the CPU loops), where() with numpy broadcasting,
// f32 <-> f64 casts, fill.
//
//   unary:   out[i] = f(a[i])                                 (contiguous)
//   binary:  out[i] = f(a[i . sa], b[i . sb])                 (out contiguous; broadcast dims
//                                                              of a/b have stride 0)
//   where:   out[i] = c[i . sc] != 0 ? a[i . sa] : b[i . sb]
//   cast:    out[i] = (D)in[i];   fill: out[i] = (T)value
//
// Layout: row-major, strides in elements, the same convention as kernels/cpu/loops.h. Before
// launch the host drops size-1 dims and merges adjacent dims that are contiguous for every
// operand (coalesce below); at most kMaxDims dims may remain.
//
// This header is plain C++ (no CUDA types): engine/ includes it. The StridedIndexer below is
// shared by the .cu files (elementwise, copy) and is host+device (SG_HD) when nvcc sees it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/runtime.h"
#include "kernels/elementwise.h"

#ifdef __CUDA_ARCH__
#define SG_CUDA_UNROLL _Pragma("unroll")
#else
#define SG_CUDA_UNROLL
#endif

namespace sg::kernels::cuda {

constexpr int kMaxDims = 8;

// out[i] = f(a[i]); F is one of the functors of kernels/elementwise.h (SG_UNARY_FUNCTORS).
template <class T, class F>
void unary(int64_t n, const T* a, T* out, F f);

// out = f(a, b) with broadcasting; F is in SG_BINARY_FUNCTORS. shape: the output (broadcast)
// shape; sa / sb: element strides of a / b viewed as that shape.
template <class T, class F>
void binary(const std::vector<int64_t>& shape, const T* a, const std::vector<int64_t>& sa, const T* b,
            const std::vector<int64_t>& sb, T* out, F f);

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

  SG_HD void offsets(I linear, I (&off)[K]) const {
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
