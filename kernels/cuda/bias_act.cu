// bias_act on CUDA: see bias_act.h for the formula, layout, variants and benchmark.
#include <stdexcept>
#include <string>

#include "kernels/cuda/bias_act.h"
#include "kernels/cuda/common.cuh"

namespace sg::kernels::cuda {

namespace {

constexpr int kThreads = 256;

// I: the index type (uint32 when every index fits, uint64 otherwise).
template <class T, class I, class A>
__global__ void __launch_bounds__(kThreads) bias_act_forward_kernel(const T* __restrict__ x, const T* __restrict__ b,
                                                                    T* __restrict__ y, I n, I C, I inner, const A act) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    T v = x[i];
    if (b) v += b[(i / inner) % C];
    y[i] = act.forward(v);
  }
}

template <class T, class A>
__global__ void __launch_bounds__(kThreads) bias_act_grad_kernel(const T* __restrict__ dy, const T* __restrict__ y,
                                                                 T* __restrict__ dx, int64_t n, const A act) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dx[i] = dy[i] * act.slope(y[i]);
}

}  // namespace

template <class T>
void bias_act_forward(const BiasActParams& p, int64_t outer, int64_t C, int64_t inner, const T* x, const T* b, T* y) {
  const int64_t n = outer * C * inner;
  if (n == 0) return;
  const unsigned blocks = blocks_for(n, kThreads);
  dispatch_bias_act(p, [&](auto K, auto kClamp) {
    using A = BiasAct<T, decltype(K)::value, decltype(kClamp)::value>;
    const A act(p);
    // 32-bit indices when i + gridDim*blockDim cannot wrap.
    if (n + (int64_t)blocks * kThreads < launch_limits().uint32_span) {
      launch("bias_act_forward_kernel<uint32>", bias_act_forward_kernel<T, uint32_t, A>, blocks, kThreads, 0, x, b, y,
             (uint32_t)n, (uint32_t)C, (uint32_t)inner, act);
    } else {
      launch("bias_act_forward_kernel<uint64>", bias_act_forward_kernel<T, uint64_t, A>, blocks, kThreads, 0, x, b, y,
             (uint64_t)n, (uint64_t)C, (uint64_t)inner, act);
    }
  });
}

template <class T>
void bias_act_grad(const BiasActParams& p, int64_t n, const T* dy, const T* y, T* dx) {
  if (n == 0) return;
  dispatch_bias_act(p, [&](auto K, auto kClamp) {
    using A = BiasAct<T, decltype(K)::value, decltype(kClamp)::value>;
    launch("bias_act_grad_kernel", bias_act_grad_kernel<T, A>, blocks_for(n, kThreads), kThreads, 0, dy, y, dx, n,
           A(p));
  });
}

template void bias_act_forward<float>(const BiasActParams&, int64_t, int64_t, int64_t, const float*, const float*,
                                      float*);
template void bias_act_forward<double>(const BiasActParams&, int64_t, int64_t, int64_t, const double*, const double*,
                                       double*);
template void bias_act_grad<float>(const BiasActParams&, int64_t, const float*, const float*, float*);
template void bias_act_grad<double>(const BiasActParams&, int64_t, const double*, const double*, double*);

}  // namespace sg::kernels::cuda
