// Thin 1x1 convolutions (formula, layout and when they run: kernels/cuda/conv_thin.h).
#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv_thin.h"

namespace sg::kernels::cuda {

namespace {

constexpr int kThin = (int)kThinChannels, kThreads = 256;

// kThinOut: O <= kThin (accumulate O sums over C); else C <= kThin (C inputs in registers).
// The weight of (o, c) is w[o * wo + c * wc].
template <class T, bool kThinOut>
__global__ void __launch_bounds__(kThreads)
    conv1x1_thin_kernel(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, int64_t N, int C, int O,
                        int64_t HW, int64_t wo, int64_t wc) {
  const int64_t total = N * HW;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t n = i / HW, p = i - n * HW;
    const T* xn = x + n * C * HW + p;
    T* yn = y + n * O * HW + p;
    if constexpr (kThinOut) {
      T acc[kThin];
#pragma unroll
      for (int o = 0; o < kThin; ++o) acc[o] = T(0);
      for (int c = 0; c < C; ++c) {
        const T v = xn[c * HW];
#pragma unroll
        for (int o = 0; o < kThin; ++o)
          if (o < O) acc[o] += w[o * wo + c * wc] * v;
      }
#pragma unroll
      for (int o = 0; o < kThin; ++o)
        if (o < O) yn[o * HW] = acc[o];
    } else {
      T v[kThin];
#pragma unroll
      for (int c = 0; c < kThin; ++c) v[c] = c < C ? xn[c * HW] : T(0);
      for (int o = 0; o < O; ++o) {
        T s = T(0);
#pragma unroll
        for (int c = 0; c < kThin; ++c)
          if (c < C) s += w[o * wo + c * wc] * v[c];
        yn[o * HW] = s;
      }
    }
  }
}

}  // namespace

template <class T>
void conv1x1_thin(const T* x, const T* w, T* y, int64_t N, int64_t C, int64_t O, int64_t HW, bool transposed_weight) {
  if (N * HW == 0 || O == 0) return;
  if (O > kThinChannels && C > kThinChannels)
    throw CudaError("conv1x1_thin: neither side is thin (C = " + std::to_string(C) + ", O = " + std::to_string(O) +
                    ")");
  if (C > 2147483647 || O > 2147483647) throw CudaError("conv1x1_thin: too many channels");
  const int64_t wo = transposed_weight ? 1 : C, wc = transposed_weight ? O : 1;
  if (O <= kThinChannels)
    launch("conv1x1_thin_kernel (thin output)", conv1x1_thin_kernel<T, true>, blocks_for(N * HW, kThreads), kThreads, 0,
           x, w, y, N, (int)C, (int)O, HW, wo, wc);
  else
    launch("conv1x1_thin_kernel (thin input)", conv1x1_thin_kernel<T, false>, blocks_for(N * HW, kThreads), kThreads, 0,
           x, w, y, N, (int)C, (int)O, HW, wo, wc);
}

template void conv1x1_thin<float>(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t, bool);
template void conv1x1_thin<double>(const double*, const double*, double*, int64_t, int64_t, int64_t, int64_t, bool);

}  // namespace sg::kernels::cuda
