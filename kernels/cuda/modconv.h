// StyleGAN2's modulated convolution, fused, on CUDA. Implementation: kernels/cuda/modconv.cu.
//
// Formula (the "fused" grouped path of engine/ops/modulated_conv.cpp, stride 1, no resampling;
// the up layers' transposed variant is at the end of this file):
//   w'[n,o,i,a,b] = w[o,i,a,b] * s[n,i]                            (modulation)
//   dcoefs[n,o]   = 1 / sqrt(sum_{i,a,b} w'[n,o,i,a,b]^2 + eps)      (demodulation)
//   y[n,o,p]      = dcoefs[n,o] * sum_{i,a,b} w'[n,o,i,a,b] * x[n, i, p + (a,b) - pad]
// optionally followed by the epilogue   y = clamp(act(y + noise[n,p] + bias[o]) * gain).
//
// Layout: x [N, C, H, W], weight [O, C, kh, kw], styles [N, C], dcoefs [N, O], y [N, O, Ho, Wo]
// with Ho = H + 2*pad - kh + 1; noise [N, Ho*Wo] (already scaled by its strength), bias [O].
//
// Variants:
//   - modconv_dcoefs: one warp per (n, o), a fixed-order warp reduction (deterministic).
//   - modconv_forward: the implicit-GEMM conv kernel of kernels/cuda/conv.h run as one grouped
//     conv (groups = N, the batch folded into the channels), the weight modulated by s[n, i]
//     as it is loaded into shared memory, never materialised per sample; demodulation and
//     the optional noise / bias / activation / gain / clamp in its epilogue. Any ConvMath
//     variant of kernels/cuda/conv.h (FMA for f32 and f64; TF32 or bf16 tensor cores for f32).
// This is a forward-only fast path: the engine's modulated_conv2d records a backward made of
// differentiable ops (conv_transpose2d, conv2d_weight_grad, mul, sum), as the composite.
//
// Benchmark: build/study/study_modconv (study/modconv.cu, on a GPU): modconv_dcoefs +
// modconv_forward on x [32, 512, 32, 32], weight [512, 512, 3, 3], pad 1 (and [32, 128,
// 128, 128]), the data gradient and the weight-side GEMM, naive and tiled versions next to these kernels (FMA and
// TF32), TFLOP/s (2 * N * O * Ho * Wo * C * kh * kw), checked against the CPU conv kernels on
// the materialised weight. bench/run_cuda_bench.sh (build/bench_cuda_kernels --filter
// modconv): the fused path against the modulate-activations path through the engine, next
// to PyTorch.
#pragma once
#include <cstdint>

#include "kernels/cuda/conv.h"

namespace sg::kernels::cuda {

template <class T>
struct ModConvEpilogue {
  const T* noise = nullptr;  // [N, Ho*Wo] or null
  const T* bias = nullptr;   // [O] or null
  int act = 0;               // 0 linear, 1 relu, 2 lrelu(alpha)
  double alpha = 0.2;
  double gain = 1.0;
  double clamp = -1.0;  // < 0: none
};

// dcoefs[n, o] = 1 / sqrt(sum_{i<C, t<kk} (weight[o, i, t] * styles[n, i])^2 + eps); kk = kh*kw.
template <class T>
void modconv_dcoefs(const T* weight, const T* styles, T* dcoefs, int64_t N, int64_t O, int64_t C, int64_t kk,
                    double eps);

// Bytes of device workspace modconv_forward's tensor-core path needs (conv.h's
// conv2d_forward_workspace; 0: the call takes the shared-memory kernel).
template <class T>
int64_t modconv_forward_workspace(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                                  int64_t padding, ConvMath math);

// y = modulated conv of x (dcoefs may be null: no demodulation), then the optional epilogue.
// workspace: modconv_forward_workspace bytes, or nullptr (the shared-memory kernel).
template <class T>
void modconv_forward(const T* x, const T* weight, const T* styles, const T* dcoefs, T* y, int64_t N, int64_t C,
                     int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw, int64_t padding, ConvMath math,
                     const ModConvEpilogue<T>* epilogue = nullptr, void* workspace = nullptr);

// The up layers (engine/ops/modulated_conv.cpp: the transposed strided conv before the FIR):
//   z[n,o] = dcoefs[n,o] * conv_transpose2d(x[n] * s[n,:], weight_t, stride up, padding (py, px))[o]
// with weight_t = weight transposed to [C, O, kh, kw] (conv_transpose2d's layout), on the
// tensor-core path (kernels/cuda/conv_tc.h, f32 with ConvMath tf32 or bf16): styles applied as
// x is packed, dcoefs (may be null) in each phase's epilogue. modconv_transpose_workspace gives
// the bytes it needs, 0 where it does not take the call (another math, or sizes conv_tc does
// not take); the caller then runs the composite.
int64_t modconv_transpose_workspace(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                                    int64_t up, int64_t py, int64_t px, ConvMath math);
void modconv_transpose_forward(const float* x, const float* weight_t, const float* styles, const float* dcoefs,
                               float* z, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                               int64_t up, int64_t py, int64_t px, ConvMath math, void* workspace);

}  // namespace sg::kernels::cuda
