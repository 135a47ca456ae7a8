// Thin 1x1 convolutions (formula, layout and when they run: kernels/cuda/conv_thin.h).
#include <algorithm>
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

// The weight gradient. Block (bx, s): wide channels 4 bx .. 4 bx + 3, pixels [s chunk,
// (s + 1) chunk) of the N*HW. out[c * oc + t * ot] (or, split, out[(s * Cw + c) * Ct + t]).
constexpr int kWide = 4;

template <class T>
__global__ void __launch_bounds__(kThreads)
    conv1x1_thin_wgrad_kernel(const T* __restrict__ wide, const T* __restrict__ thin, T* __restrict__ out, int64_t N,
                              int Cw, int Ct, int64_t HW, int64_t chunk, int64_t oc, int64_t ot) {
  __shared__ T red[kWide * kThin][kThreads];
  const int c0 = blockIdx.x * kWide, tid = threadIdx.x;
  const int64_t begin = (int64_t)blockIdx.y * chunk, end = begin + chunk < N * HW ? begin + chunk : N * HW;
  T acc[kWide][kThin];
#pragma unroll
  for (int a = 0; a < kWide; ++a)
#pragma unroll
    for (int t = 0; t < kThin; ++t) acc[a][t] = T(0);
  int64_t i = begin + tid, n = i / HW, p = i - n * HW;  // (one division; then p steps with carry)
  for (; i < end; i += kThreads) {
    T tv[kThin];
#pragma unroll
    for (int t = 0; t < kThin; ++t) tv[t] = t < Ct ? thin[(n * Ct + t) * HW + p] : T(0);
#pragma unroll
    for (int a = 0; a < kWide; ++a) {
      if (c0 + a < Cw) {
        const T v = wide[(n * Cw + c0 + a) * HW + p];
#pragma unroll
        for (int t = 0; t < kThin; ++t) acc[a][t] += v * tv[t];
      }
    }
    for (p += kThreads; p >= HW; p -= HW) ++n;
  }
#pragma unroll
  for (int a = 0; a < kWide; ++a)
#pragma unroll
    for (int t = 0; t < kThin; ++t) red[a * kThin + t][tid] = acc[a][t];
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (tid < half)
#pragma unroll
      for (int k = 0; k < kWide * kThin; ++k) red[k][tid] += red[k][tid + half];
    __syncthreads();
  }
  if (tid < kWide * kThin) {
    const int a = tid / kThin, t = tid % kThin, c = c0 + a;
    if (c < Cw && t < Ct) {
      if (gridDim.y == 1)
        out[c * oc + t * ot] = red[tid][0];
      else
        out[((int64_t)blockIdx.y * Cw + c) * Ct + t] = red[tid][0];
    }
  }
}

// dw[c * oc + t * ot] = sum over the S slices, in slice order, of part[(s * Cw + c) * Ct + t].
template <class T>
__global__ void conv1x1_thin_wgrad_sum(const T* __restrict__ part, T* __restrict__ dw, int Cw, int Ct, int S,
                                       int64_t oc, int64_t ot) {
  for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < Cw * Ct; e += gridDim.x * blockDim.x) {
    T s = T(0);
    for (int k = 0; k < S; ++k) s += part[(int64_t)k * Cw * Ct + e];
    dw[(e / Ct) * oc + (e % Ct) * ot] = s;
  }
}

// The pixel slices of the weight gradient: enough blocks for 2 per SM on 132 SMs, each slice
// at least 4096 pixels.
struct WgradSplit {
  int64_t S, chunk;
};
WgradSplit thin_wgrad_split(int64_t N, int64_t Cw, int64_t HW) {
  const int64_t total = N * HW, blocks_x = (Cw + kWide - 1) / kWide;
  int64_t S = std::max<int64_t>(1, std::min((264 + blocks_x - 1) / blocks_x, total / 4096));
  const int64_t chunk = (total + S - 1) / S;
  S = (total + chunk - 1) / chunk;
  return {S, chunk};
}

}  // namespace

int64_t conv1x1_thin_wgrad_workspace(int64_t N, int64_t C, int64_t O, int64_t HW) {
  if (N * HW == 0 || C == 0 || O == 0 || (C > kThinChannels && O > kThinChannels)) return 0;
  const bool thin_out = O <= kThinChannels;
  const int64_t Cw = thin_out ? C : O, Ct = thin_out ? O : C;
  const WgradSplit sp = thin_wgrad_split(N, Cw, HW);
  return sp.S > 1 ? sp.S * Cw * Ct : 0;
}

template <class T>
void conv1x1_thin_wgrad(const T* dy, const T* x, T* dw, T* workspace, int64_t N, int64_t C, int64_t O, int64_t HW) {
  if (C == 0 || O == 0) return;
  if (N * HW == 0) {
    memset_async(dw, 0, sizeof(T) * (size_t)(C * O));
    return;
  }
  if (O > kThinChannels && C > kThinChannels)
    throw CudaError("conv1x1_thin_wgrad: neither side is thin (C = " + std::to_string(C) +
                    ", O = " + std::to_string(O) + ")");
  if (C > 2147483647 || O > 2147483647) throw CudaError("conv1x1_thin_wgrad: too many channels");
  // toRGB (O thin): wide = x, dw[t, c] (oc 1, ot C); fromRGB (C thin): wide = dy, dw[c, t] (oc C, ot 1)
  const bool thin_out = O <= kThinChannels;
  const int64_t Cw = thin_out ? C : O, Ct = thin_out ? O : C;
  const int64_t oc = thin_out ? 1 : C, ot = thin_out ? C : 1;
  const WgradSplit sp = thin_wgrad_split(N, Cw, HW);
  if (sp.S > 1 && !workspace) throw CudaError("conv1x1_thin_wgrad: needs its workspace (conv1x1_thin_wgrad_workspace)");
  if (sp.S > 65535) throw CudaError("conv1x1_thin_wgrad: too many pixel slices");
  const dim3 grid((unsigned)((Cw + kWide - 1) / kWide), (unsigned)sp.S);
  launch("conv1x1_thin_wgrad_kernel", conv1x1_thin_wgrad_kernel<T>, grid, kThreads, 0, thin_out ? x : dy,
         thin_out ? dy : x, sp.S > 1 ? workspace : dw, N, (int)Cw, (int)Ct, HW, sp.chunk, oc, ot);
  if (sp.S > 1)
    launch("conv1x1_thin_wgrad_sum", conv1x1_thin_wgrad_sum<T>, blocks_for(Cw * Ct, kThreads), kThreads, 0,
           (const T*)workspace, dw, (int)Cw, (int)Ct, (int)sp.S, oc, ot);
}

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
template void conv1x1_thin_wgrad<float>(const float*, const float*, float*, float*, int64_t, int64_t, int64_t, int64_t);
template void conv1x1_thin_wgrad<double>(const double*, const double*, double*, double*, int64_t, int64_t, int64_t,
                                         int64_t);

}  // namespace sg::kernels::cuda
