// bias_act on CUDA: see bias_act.h for the formula, layout, variants and benchmark.
#include <stdexcept>
#include <string>

#include "kernels/cuda/bias_act.h"
#include "kernels/cuda/common.cuh"

namespace sg::kernels::cuda {

namespace {

constexpr int kThreads = 256;

template <class T>
struct Act {
  int kind;  // 0 linear, 1 relu, 2 lrelu
  T alpha, gain, clamp;
  int has_clamp;
};

template <class T>
__device__ __forceinline__ T apply_forward(const Act<T>& a, T v) {
  if (a.kind == 1) v = v > T(0) ? v : T(0);
  if (a.kind == 2) v = v > T(0) ? v : v * a.alpha;
  v *= a.gain;
  if (a.has_clamp) {
    v = v < -a.clamp ? -a.clamp : v;  // std::max(v, -clamp): NaN passes through
    v = a.clamp < v ? a.clamp : v;    // std::min(v, clamp)
  }
  return v;
}

// I: the index type (uint32 when every index fits, uint64 otherwise).
template <class T, class I>
__global__ void __launch_bounds__(kThreads)
    bias_act_forward_kernel(const T* __restrict__ x, const T* __restrict__ b, T* __restrict__ y, I n, I C, I inner,
                            const Act<T> a) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    T v = x[i];
    if (b) v += b[(i / inner) % C];
    y[i] = apply_forward(a, v);
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) bias_act_grad_kernel(const T* __restrict__ dy, const T* __restrict__ y,
                                                                 T* __restrict__ dx, int64_t n, const Act<T> a) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const T yi = y[i];
    T d = a.gain;
    if (a.kind == 1) d = yi > T(0) ? d : T(0);
    if (a.kind == 2) d = yi > T(0) ? d : d * a.alpha;
    if (a.has_clamp) d = (yi < a.clamp && yi > -a.clamp) ? d : T(0);
    dx[i] = dy[i] * d;
  }
}

template <class T>
Act<T> make_act(const BiasActParams& p) {
  Act<T> a;
  a.kind = p.act == BiasActKind::linear ? 0 : p.act == BiasActKind::relu ? 1 : 2;
  a.alpha = (T)p.alpha;
  a.gain = (T)p.gain;
  a.has_clamp = p.clamp >= 0 ? 1 : 0;
  a.clamp = (T)(p.clamp >= 0 ? p.clamp : 0.0);
  return a;
}

}  // namespace

template <class T>
void bias_act_forward(const BiasActParams& p, int64_t outer, int64_t C, int64_t inner, const T* x, const T* b, T* y) {
  const int64_t n = outer * C * inner;
  if (n == 0) return;
  const Act<T> a = make_act<T>(p);
  const unsigned blocks = blocks_for(n, kThreads);
  // 32-bit indices when i + gridDim*blockDim cannot wrap.
  if (n + (int64_t)blocks * kThreads < launch_limits().uint32_span) {
    launch("bias_act_forward_kernel<uint32>", bias_act_forward_kernel<T, uint32_t>, blocks, kThreads, 0, x, b, y,
           (uint32_t)n, (uint32_t)C, (uint32_t)inner, a);
  } else {
    launch("bias_act_forward_kernel<uint64>", bias_act_forward_kernel<T, uint64_t>, blocks, kThreads, 0, x, b, y,
           (uint64_t)n, (uint64_t)C, (uint64_t)inner, a);
  }
}

template <class T>
void bias_act_grad(const BiasActParams& p, int64_t n, const T* dy, const T* y, T* dx) {
  if (n == 0) return;
  const Act<T> a = make_act<T>(p);
  launch("bias_act_grad_kernel", bias_act_grad_kernel<T>, blocks_for(n, kThreads), kThreads, 0, dy, y, dx, n, a);
}

template void bias_act_forward<float>(const BiasActParams&, int64_t, int64_t, int64_t, const float*, const float*,
                                      float*);
template void bias_act_forward<double>(const BiasActParams&, int64_t, int64_t, int64_t, const double*, const double*,
                                       double*);
template void bias_act_grad<float>(const BiasActParams&, int64_t, const float*, const float*, float*);
template void bias_act_grad<double>(const BiasActParams&, int64_t, const double*, const double*, double*);

}  // namespace sg::kernels::cuda
