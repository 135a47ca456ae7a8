// CUDA sum over any set of dims (kernels/cuda/reduce.cu).
//
//   out[o] = sum over the reduced coordinates r of in[o, r]
//
// `shape` is the contiguous input's shape, `reduced[d]` marks the summed dims. The output is
// contiguous over the kept dims in their order (keepdim only changes the shape the engine
// reports, not the layout). Accumulation is in double for f32 and f64, and the order of every
// addition depends only on the shapes, never on timing: no atomics, so repeated runs give
// identical bits.
//
// Large reductions with few outputs are split into chunks whose partial sums (double) go to a
// caller-provided workspace of sum_workspace_bytes() bytes, then a second kernel adds each
// output's partials in order. Plain C++ header.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sg::kernels::cuda {

size_t sum_workspace_bytes(const std::vector<int64_t>& shape, const std::vector<bool>& reduced);

// workspace: device memory of at least sum_workspace_bytes(shape, reduced) bytes, 8-byte
// aligned (may be null when that is 0).
template <class T>
void sum(const std::vector<int64_t>& shape, const std::vector<bool>& reduced, const T* in, T* out, void* workspace);

}  // namespace sg::kernels::cuda
