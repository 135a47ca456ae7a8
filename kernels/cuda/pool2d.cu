// Pooling on CUDA: see pool2d.h for the formula, layout and variants.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/pool2d.h"

namespace sg::kernels::cuda {

namespace {

constexpr int kThreads = 256;

// One thread per output element: kMax picks (values at) the window's max, else the average.
template <class T, bool kMax>
__global__ void __launch_bounds__(kThreads) pool2d_forward_kernel(const Pool2dParams p, const T* __restrict__ x,
                                                                  const T* __restrict__ values, T* __restrict__ y) {
  const int64_t out = p.Ho * p.Wo, in = p.H * p.W, n = p.planes * out;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = i / out, o = i % out, oy = o / p.Wo, ox = o % p.Wo;
    if constexpr (kMax)
      y[i] = max_pool_at(p, x + c * in, values + c * in, oy, ox);
    else
      y[i] = avg_pool_at(p, x + c * in, oy, ox);
  }
}

// One thread per input element, gathering from the outputs whose windows cover it.
template <class T, bool kMax>
__global__ void __launch_bounds__(kThreads) pool2d_backward_kernel(const Pool2dParams p, const T* __restrict__ dy,
                                                                   const T* __restrict__ x, T* __restrict__ dx) {
  const int64_t out = p.Ho * p.Wo, in = p.H * p.W, n = p.planes * in;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = i / in, j = i % in, iy = j / p.W, ix = j % p.W;
    if constexpr (kMax)
      dx[i] = max_pool_backward_at(p, dy + c * out, x + c * in, iy, ix);
    else
      dx[i] = avg_pool_backward_at(p, dy + c * out, iy, ix);
  }
}

}  // namespace

template <class T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, const T* values, T* y) {
  const int64_t n = p.planes * p.Ho * p.Wo;
  if (n == 0) return;
  launch("max_pool2d_forward_kernel", pool2d_forward_kernel<T, true>, blocks_for(n, kThreads), kThreads, 0, p, x,
         values ? values : x, y);
}

template <class T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const T* x, T* dx) {
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  launch("max_pool2d_backward_kernel", pool2d_backward_kernel<T, true>, blocks_for(n, kThreads), kThreads, 0, p, dy, x,
         dx);
}

template <class T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y) {
  const int64_t n = p.planes * p.Ho * p.Wo;
  if (n == 0) return;
  launch("avg_pool2d_forward_kernel", pool2d_forward_kernel<T, false>, blocks_for(n, kThreads), kThreads, 0, p, x,
         (const T*)nullptr, y);
}

template <class T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx) {
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  launch("avg_pool2d_backward_kernel", pool2d_backward_kernel<T, false>, blocks_for(n, kThreads), kThreads, 0, p, dy,
         (const T*)nullptr, dx);
}

#define SG_POOL2D_INSTANTIATE(T)                                                     \
  template void max_pool2d_forward<T>(const Pool2dParams&, const T*, const T*, T*);  \
  template void max_pool2d_backward<T>(const Pool2dParams&, const T*, const T*, T*); \
  template void avg_pool2d_forward<T>(const Pool2dParams&, const T*, T*);            \
  template void avg_pool2d_backward<T>(const Pool2dParams&, const T*, T*);
SG_POOL2D_INSTANTIATE(float)
SG_POOL2D_INSTANTIATE(double)
#undef SG_POOL2D_INSTANTIATE

}  // namespace sg::kernels::cuda
