// CUDA copies for the shape ops: strided gather (permute, expand, slice, flip), strided
// scatter (slice_backward) and 2-D row copies (cat). Declarations: copy.h.
//
// Formula: gather out[i] = a[i . sa]; scatter out[i . so] = a[i]; i the row-major index of
// the contiguous side.
//
// Variants:
//   - after coalescing (size-1 dims dropped, dims contiguous for both sides merged) a view
//     that is one contiguous run is a cudaMemcpyAsync device-to-device;
//   - otherwise one thread per element maps i to the strided offset (StridedIndexer from
//     elementwise.h), int32 index math when every offset fits, int64 otherwise. The
//     contiguous side is accessed in order, so it is always coalesced; the strided side is
//     coalesced when its innermost stride is 1 (slice, expand of outer dims) and goes through
//     L2 otherwise (transposes: a tiled shared-memory transpose is the next step if permute
//     shows up in profiles).
//   - copy_rows: cudaMemcpy2DAsync (a plain cudaMemcpyAsync when the rows are adjacent).
//
// Benchmark: no benchmark yet.
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/copy.h"
#include "kernels/cuda/elementwise.h"

namespace sg::kernels::cuda {

namespace {

constexpr int kThreads = 256;

template <class T, class I>
__global__ void gather_kernel(I n, const T* __restrict__ a, T* __restrict__ out, StridedIndexer<1, I> ix) {
  for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += (I)(gridDim.x * blockDim.x)) {
    I off[1];
    ix.offsets(i, off);
    out[i] = a[off[0]];
  }
}

template <class T, class I>
__global__ void scatter_kernel(I n, const T* __restrict__ a, T* __restrict__ out, StridedIndexer<1, I> ix) {
  for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += (I)(gridDim.x * blockDim.x)) {
    I off[1];
    ix.offsets(i, off);
    out[off[0]] = a[i];
  }
}

template <class T, bool kScatter>
void run_copy(const char* what, const std::vector<int64_t>& shape, const T* a, const std::vector<int64_t>& st, T* out) {
  const std::vector<int64_t>* strides[1] = {&st};
  Coalesced<1> c(shape, strides);
  if (c.numel == 0) return;
  if (c.ndim() == 0 || (c.ndim() == 1 && c.stride[0][0] == 1)) {
    memcpy_d2d(out, a, (size_t)c.numel * sizeof(T));
    return;
  }
  if (c.ndim() > kMaxDims)
    throw CudaError(std::string(what) + ": " + std::to_string(c.ndim()) +
                    " dims remain after coalescing; the CUDA kernels take at most " + std::to_string(kMaxDims));
  if (c.small) {
    auto k = kScatter ? scatter_kernel<T, int32_t> : gather_kernel<T, int32_t>;
    launch((std::string(what) + "<int32>").c_str(), k, blocks_for(c.numel, kThreads), kThreads, 0, (int32_t)c.numel, a,
           out, c.template indexer<int32_t>());
  } else {
    auto k = kScatter ? scatter_kernel<T, int64_t> : gather_kernel<T, int64_t>;
    launch((std::string(what) + "<int64>").c_str(), k, blocks_for(c.numel, kThreads), kThreads, 0, c.numel, a, out,
           c.template indexer<int64_t>());
  }
}

}  // namespace

template <class T>
void strided_copy(const std::vector<int64_t>& shape, const T* a, const std::vector<int64_t>& sa, T* out) {
  run_copy<T, false>("strided_copy (gather_kernel)", shape, a, sa, out);
}

template <class T>
void strided_scatter(const std::vector<int64_t>& shape, const T* a, T* out, const std::vector<int64_t>& so) {
  run_copy<T, true>("strided_scatter (scatter_kernel)", shape, a, so, out);
}

void copy_rows(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t rows) {
  if (width == 0 || rows == 0) return;
  if (rows == 1 || (dpitch == width && spitch == width)) {
    memcpy_d2d(dst, src, width * rows);
    return;
  }
  SG_CUDA_CHECK(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, cudaMemcpyDeviceToDevice, cu_stream()));
}

template void strided_copy<float>(const std::vector<int64_t>&, const float*, const std::vector<int64_t>&, float*);
template void strided_copy<double>(const std::vector<int64_t>&, const double*, const std::vector<int64_t>&, double*);
template void strided_scatter<float>(const std::vector<int64_t>&, const float*, float*, const std::vector<int64_t>&);
template void strided_scatter<double>(const std::vector<int64_t>&, const double*, double*, const std::vector<int64_t>&);

}  // namespace sg::kernels::cuda
