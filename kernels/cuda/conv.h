// CUDA 2-D convolution family: our own implicit-GEMM kernels, tiled through shared memory
// (no im2col buffer in global memory). Implementation: kernels/cuda/conv.cu.
//
// Formulas (cross-correlation, as PyTorch and kernels/cpu/conv.h; g = group, Cg = Cin/groups,
// Cgo = Cout/groups):
//   conv2d_forward:           y[n,co,oy,ox] = sum_{ci<Cg,i,j} w[co,ci,i,j] * x[n, g*Cg+ci, oy*s-p+i, ox*s-p+j]
//                             a GEMM per group: M = Cgo, N = N*Ho*Wo, K = Cg*kh*kw, the im2col
//                             column gathered on the fly into shared memory.
//   conv_transpose2d_forward: the gather form of the adjoint: y[n,co,oy,ox] sums
//                             x[n, g*Cg+ci, iy, ix] * w[g*Cg+ci, co', i, j] over the (iy, i) with
//                             iy*s - p + i = oy (likewise x). Split by output phase
//                             (oy mod s, ox mod s): within a phase only every s-th tap is live,
//                             so each phase is a dense GEMM (M = Cgo, N = N*ceil(Ho/s)*ceil(Wo/s),
//                             K = Cg*ceil(kh/s)*ceil(kw/s)) with no wasted zero taps, no atomics,
//                             deterministic.
//   conv2d_weight_grad:       dw[co,ci,i,j] = sum_{n,oy,ox} dy[n,co,oy,ox] * x[n, g*Cg+ci, oy*s-p+i, ox*s-p+j]
//                             a GEMM per group: M = Cgo, N = Cg*kh*kw, K = N*Ho*Wo; split-K over
//                             K when the tile grid is small, each split writing its own slice
//                             of a workspace that a second kernel sums in a fixed order (no
//                             float atomics: bitwise deterministic).
// Out-of-range input positions read as zero (zero padding).
//
// Layout: NCHW, contiguous. conv2d weights [Cout, Cin/groups, kh, kw]; transposed conv
// weights [Cin, Cout/groups, kh, kw] (PyTorch's layouts), as in kernels/cpu/conv.h.
//
// Variants (picked on the host per call):
//   - FMA: 64x64 output tile, K in steps of 16, 256 threads each owning a 4x4 micro-tile
//     (f32 and f64); global loads for step k+1 are issued before step k is computed.
//   - tensor cores (f32 only; ConvMath below): the same tiles and loaders, each warp computing
//     a 32x16 block, f32 accumulators, inputs rounded as the fragments are built:
//       tf32_wmma  nvcuda::wmma m16n16k8 precision::tf32 (the first tensor-core rung)
//       tf32       PTX mma.sync m16n8k8 .tf32 (kernels/cuda/mma_ptx.cuh; 10-bit mantissas)
//       bf16       PTX mma.sync m16n8k16 .bf16 (7-bit mantissas, f32's exponent range)
//     The engine picks through sg::set_cuda_math (default f32 = FMA); f64 always takes FMA.
//   - thin 1x1 convolutions (toRGB: at most 4 outputs; fromRGB and its transposed twin: at
//     most 4 inputs; stride 1, no padding, groups 1, no fusion), whatever the math: one thread
//     per pixel, f32; their weight gradients as 4 x 4 dot products per block over a slice of
//     the pixels (kernels/cuda/conv_thin.h);
//   - the multi-stage tensor-core path (tf32 and bf16, when the caller passes a workspace;
//     kernels/cuda/conv_tc.h): NHWC operands packed in the format, cp.async + ldmatrix +
//     mma.sync, 128 x 128 tiles; the shared-memory variants above remain the fallback and the
//     rungs of the ladder below it.
//     Each variant's error bound against f64: tests/cuda/test_cuda_paths.cpp.
//   - ConvFusion (conv2d_forward only): modulation of the weight on load (w * a_scale), and an
//     epilogue: * row_scale (demodulation) + noise + bias, activation, gain, clamp. The fused
//     modulated convolution (kernels/cuda/modconv.h) is this kernel with groups = batch.
// All kernels run on kernels::cuda::stream(), asynchronously; outputs are fully overwritten.
//
// Benchmark: build/study/study_conv (study/conv.cu, on a GPU): [32, 512, 32, 32] x
// [512, 512, 3, 3] pad 1 and [32, 256, 64, 64] stride 2, forward, data grad
// (conv_transpose2d_forward) and weight grad, naive and tiled versions next to these kernels
// (FMA and TF32), TFLOP/s (2 * N * Cout * Ho * Wo * Cin/groups * kh * kw), each checked
// against kernels/cpu/conv.h. bench/run_cuda_bench.sh (build/bench_cuda_kernels --filter
// conv): conv2d, conv_transpose2d and conv2d_weight_grad over StyleGAN2 shapes through the
// engine, fma and tf32, next to PyTorch and the cuBLAS SGEMM roofline of the same run.
#pragma once
#include <cstdint>

#include "kernels/conv.h"

namespace sg::kernels::cuda {

// Optional fusions for conv2d_forward. Every pointer may be null (that stage is skipped).
//   y = clamp(act((acc * row_scale[co]) + noise[n*groups+g, pixel] + bias[co]) * gain)
// with acc the convolution of x and the (modulated) weight.
template <class T>
struct ConvFusion {
  // [groups * Cin/groups]: w[co, ci, :, :] of group g is multiplied by a_scale[g*Cg + ci] as
  // it is loaded (StyleGAN2's modulation, styles[n, ci] with groups = batch).
  const T* a_scale = nullptr;
  // All groups share one weight [Cout/groups, Cin/groups, kh, kw] and one bias [Cout/groups]
  // (the fused modulated conv); otherwise the weight is [Cout, ...] and the bias [Cout].
  bool shared_weight = false;
  const T* row_scale = nullptr;  // [Cout]; demodulation coefficients
  const T* noise = nullptr;      // [N*groups, Ho*Wo]; added after row_scale (already scaled)
  const T* bias = nullptr;       // [Cout] or [Cout/groups] (shared_weight)
  int act = 0;                   // 0 linear, 1 relu, 2 lrelu(alpha)
  double alpha = 0.2;
  double gain = 1.0;
  double clamp = -1.0;  // < 0: none
};

// The arithmetic of a convolution (the variants above); T = double always takes fma.
enum class ConvMath : int { fma = 0, tf32_wmma = 1, tf32 = 2, bf16 = 3 };

// Sizes, strides and padding: p (kernels/conv.h, with the output sizes). math: the variant.

// The tensor-core path (kernels/cuda/conv_tc.h; tf32 and bf16 only): a multi-stage implicit
// GEMM on NHWC copies of x and w made in a workspace. conv2d_forward takes it when groups == 1,
// or for the fused modulated conv (shared_weight with N == 1: the groups are the images);
// conv_transpose2d_forward when groups == 1 and the kernel is at least the stride (one conv
// with the flipped taps per output phase). The *_workspace functions return the bytes it
// needs, 0 where the call takes the shared-memory kernels above; without a workspace
// (nullptr) those run instead.
template <class T>
int64_t conv2d_forward_workspace(const Conv2dParams& p, ConvMath math, const ConvFusion<T>* fusion = nullptr);
template <class T>
int64_t conv_transpose2d_forward_workspace(const Conv2dParams& p, ConvMath math);

// x [N,Cin,H,W], w [Cout,Cin/groups,kh,kw] -> y [N,Cout,Ho,Wo]. workspace: see above.
template <class T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, T* y, ConvMath math,
                    const ConvFusion<T>* fusion = nullptr, void* workspace = nullptr);

// x [N,Cin,H,W], w [Cin,Cout/groups,kh,kw] -> y [N,Cout,Ho,Wo]. workspace: see above.
template <class T>
void conv_transpose2d_forward(const Conv2dParams& p, const T* x, const T* w, T* y, ConvMath math,
                              void* workspace = nullptr);

// Elements (of f32 or f64, whichever the call uses) of workspace conv2d_weight_grad needs for
// these sizes and this math (0: none; pass nullptr). With ConvMath::tf32 or bf16, groups == 1
// and Ho*Wo % 8 == 0 (and the workspace given), the weight gradient runs on the tensor-core
// path (kernels/cuda/conv_tc.h, conv_tc_wgrad); otherwise on the shared-memory kernels. Thin
// 1x1 convs (as for the forward above) take conv_thin.h's weight gradient, whatever the math.
int64_t conv2d_weight_grad_workspace(const Conv2dParams& p, ConvMath math);

// dy [N,Cout,Ho,Wo], x [N,Cin,H,W] -> dw [Cout,Cin/groups,kh,kw].
// workspace: conv2d_weight_grad_workspace(p, math) elements of T on the device.
template <class T>
void conv2d_weight_grad(const Conv2dParams& p, const T* dy, const T* x, T* dw, T* workspace, ConvMath math);

}  // namespace sg::kernels::cuda
