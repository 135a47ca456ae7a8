// The fused modulated convolution on CUDA: see modconv.h for the formula, layout, variants
// and benchmark. The GEMM itself is conv.cu's implicit-GEMM kernel (ConvFusion); this file
// holds the demodulation coefficients and the call that wires the two together.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/conv_tc.h"
#include "kernels/cuda/modconv.h"

namespace sg::kernels::cuda {

namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32;

__device__ __forceinline__ float inv_sqrt(float v) { return 1.0f / sqrtf(v); }
__device__ __forceinline__ double inv_sqrt(double v) { return 1.0 / ::sqrt(v); }

// One warp per (n, o): lanes stride over the C*kk products, then a butterfly reduction.
template <class T>
__global__ void __launch_bounds__(kThreads)
    modconv_dcoefs_kernel(const T* __restrict__ w, const T* __restrict__ s, T* __restrict__ d, int64_t pairs, int O,
                          int C, int kk, T eps) {
  const int64_t pair = (int64_t)blockIdx.x * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (pair >= pairs) return;  // whole warps leave; no block-level barrier follows
  const int64_t n = pair / O, o = pair % O;
  const int len = C * kk;
  const T* wo = w + o * len;
  const T* sn = s + n * C;
  T acc = T(0);
  for (int t = lane; t < len; t += 32) {
    const T v = wo[t] * sn[t / kk];
    acc += v * v;
  }
#pragma unroll
  for (int off = 16; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane == 0) d[pair] = inv_sqrt(acc + eps);
}

}  // namespace

template <class T>
void modconv_dcoefs(const T* weight, const T* styles, T* dcoefs, int64_t N, int64_t O, int64_t C, int64_t kk,
                    double eps) {
  const int64_t pairs = N * O;
  if (pairs == 0) return;
  if (C * kk > 2147483647 || O > 2147483647) throw CudaError("modconv_dcoefs: weight too large for 32-bit indexing");
  const int64_t blocks = (pairs + kWarps - 1) / kWarps;
  if (blocks > 2147483647) throw CudaError("modconv_dcoefs: too many (n, o) pairs");
  launch("modconv_dcoefs_kernel", modconv_dcoefs_kernel<T>, (unsigned)blocks, kThreads, 0, weight, styles, dcoefs,
         pairs, (int)O, (int)C, (int)kk, (T)eps);
}

// x [N, C, H, W] viewed as [1, N*C, H, W]; y [N, O, Ho, Wo] as [1, N*O, Ho, Wo].
static Conv2dParams folded(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                           int64_t padding) {
  return Conv2dParams{1, N * C, H, W, N * O, kh, kw, 1, 1, padding, padding, 0, 0, N};
}

template <class T>
int64_t modconv_forward_workspace(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                                  int64_t padding, ConvMath math) {
  ConvFusion<T> fu;
  fu.shared_weight = true;
  return conv2d_forward_workspace<T>(folded(N, C, H, W, O, kh, kw, padding), math, &fu);
}

template <class T>
void modconv_forward(const T* x, const T* weight, const T* styles, const T* dcoefs, T* y, int64_t N, int64_t C,
                     int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw, int64_t padding, ConvMath math,
                     const ModConvEpilogue<T>* epilogue, void* workspace) {
  ConvFusion<T> fu;
  fu.a_scale = styles;  // [N, C] = [groups, Cin/groups]
  fu.shared_weight = true;
  fu.row_scale = dcoefs;  // [N, O] = [Cout] of the folded conv
  if (epilogue) {
    fu.noise = epilogue->noise;  // [N, Ho*Wo] = [batch 1 * groups, Ho*Wo]
    fu.bias = epilogue->bias;    // [O], shared by the groups
    fu.act = epilogue->act;
    fu.alpha = epilogue->alpha;
    fu.gain = epilogue->gain;
    fu.clamp = epilogue->clamp;
  }
  conv2d_forward<T>(folded(N, C, H, W, O, kh, kw, padding), x, weight, y, math, &fu, workspace);
}

namespace {
TcConvTranspose transposed(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw, int64_t up,
                           int64_t py, int64_t px) {
  TcConvTranspose c;
  c.N = N, c.C = C, c.H = H, c.W = W, c.O = O, c.kh = kh, c.kw = kw, c.sy = c.sx = up, c.py = py, c.px = px;
  return c;
}
}  // namespace

int64_t modconv_transpose_workspace(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                                    int64_t up, int64_t py, int64_t px, ConvMath math) {
  const TcConvTranspose c = transposed(N, C, H, W, O, kh, kw, up, py, px);
  return conv_tc_transpose_applies(c, math) ? conv_tc_transpose_workspace_bytes(c, math) : 0;
}

void modconv_transpose_forward(const float* x, const float* weight_t, const float* styles, const float* dcoefs,
                               float* z, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                               int64_t up, int64_t py, int64_t px, ConvMath math, void* workspace) {
  TcConvTranspose c = transposed(N, C, H, W, O, kh, kw, up, py, px);
  c.x_scale = styles;
  if (dcoefs) c.row_scale = dcoefs, c.row_stride = O;
  conv_tc_transpose_forward(c, x, weight_t, z, workspace, math);
}

template void modconv_dcoefs<float>(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t, double);
template void modconv_dcoefs<double>(const double*, const double*, double*, int64_t, int64_t, int64_t, int64_t, double);
template int64_t modconv_forward_workspace<float>(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                                  int64_t, ConvMath);
template int64_t modconv_forward_workspace<double>(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                                   int64_t, ConvMath);
template void modconv_forward<float>(const float*, const float*, const float*, const float*, float*, int64_t, int64_t,
                                     int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, ConvMath,
                                     const ModConvEpilogue<float>*, void*);
template void modconv_forward<double>(const double*, const double*, const double*, const double*, double*, int64_t,
                                      int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, ConvMath,
                                      const ModConvEpilogue<double>*, void*);

}  // namespace sg::kernels::cuda
