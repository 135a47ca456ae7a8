// CUDA copies for the shape ops (kernels/cuda/copy.cu): strided gather into a contiguous
// output (permute, expand, slice, flip), strided scatter (slice_backward), and the 2-D
// row copy cat() uses.
//
//   strided_copy:    out[i] = a[i . sa]        (out contiguous; sa may hold 0 for a broadcast
//                                               dim and negative strides for flip)
//   strided_scatter: out[i . so] = a[i]        (a contiguous; so must be injective, as for a
//                                               slice; elements of out not hit are untouched)
//   copy_rows:       rows x width bytes from src (row pitch spitch) to dst (pitch dpitch)
//
// Layout: row-major, strides in elements (the convention of kernels/cpu/loops.h). Pointers
// are device pointers already offset to the view's first element. Plain C++ header.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sg::kernels::cuda {

template <class T>
void strided_copy(const std::vector<int64_t>& shape, const T* a, const std::vector<int64_t>& sa, T* out);

template <class T>
void strided_scatter(const std::vector<int64_t>& shape, const T* a, T* out, const std::vector<int64_t>& so);

void copy_rows(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t rows);

}  // namespace sg::kernels::cuda
