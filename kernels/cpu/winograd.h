// Winograd F(2x2, 3x3) convolution on the CPU: 3x3, stride-1 conv2d, conv_transpose2d and
// conv2d's weight gradient.
// Implementation: kernels/cpu/winograd.cpp. Called by kernels/cpu/conv.cpp when it applies.
//
// Formula (Lavin & Gray 2015). Each 2x2 block of outputs ("tile") of one output channel
// needs a 4x4 patch d of each input channel (rows 2*ty - py .. +3, columns 2*tx - px .. +3,
// zero outside the image). With
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1],
//   U[o,c] = G g[o,c] G^T (4x4),  V[c,t] = B^T d[c,t] B (4x4),
//   M[e][o,t] = sum_c U[e][o,c] V[e][c,t]   for each of the 16 elements e: 16 GEMMs,
//   y[o, tile t] = A^T M[o,t] A (2x2).
// 16 multiply-adds per (o, c, tile) instead of 36: 2.25x fewer, plus the transforms (O(C + O)
// per tile, not O(C * O)). The transform coefficients are 0, +-1 and +-1/2, so the f32 error
// grows only slightly over the direct sum (tests/test_cpu_kernels.cpp checks 512 channels).
//
// conv_transpose2d with stride 1 is conv2d with the weight flipped in both axes and its two
// channel axes swapped, and padding 2 - p: the weight transform reads it that way, nothing is
// materialised.
//
// Layout: as kernels/cpu/conv.h (NCHW; conv2d weights [Cout, Cin/groups, 3, 3], transposed
// [Cin, Cout/groups, 3, 3]). Tiles are numbered across the whole batch (tile q = (n, ty, tx)),
// so 4x4 and 8x8 images still give wide GEMMs. Tasks are (group, chunk of tiles), threads over
// them, the GEMM (kernels/cpu/gemm.h) single-threaded inside; per thread a scratch V [16, Cg, chunk] and
// M [16, Og, chunk] (chunk sized to keep both near 1 MiB).
//
// Benchmark: build/bench_cpu_conv (conv3x3 rows; bench/run_cpu_bench.sh next to PyTorch).
// Measured (AMD EPYC, AVX2, 2 threads, quiet; bench/results/cpu_conv_2026-11-30_*): against
// PyTorch's oneDNN, forward went from 0.51-0.76x (_161039, im2col) to 0.74-1.01x (_161641,
// _161921), forward + backward from 0.43-0.85x to 0.78-0.95x once the weight gradient took
// this path too (_161921); the main job's training from 38-40 to 31-34 s/kimg.
// Transforms: the input transform reads a run of tiles (one tile row of one image) straight
// from the image, combining its 4 rows first (contiguous) and then each tile's 4 columns
// (stride-2 loads, vectorized as permutes); the output transform writes the 2x2 blocks straight
// into the output rows. They replaced a scalar de-interleaving copy of every patch row, with
// the same numbers. Measured with bench/pair_ab.sh (both builds side by side, 1 thread each):
// the main job's training 1.16x faster together with loops.h's fixed-stride rows
// (bench/results/main_job_pair_2026-12-01.txt); per conv case the ratios spread 0.85-1.43
// (bench/results/cpu_conv_pair_winograd_2026-12-01.txt), the stride-2 row, which this path
// does not touch, among them at 0.85 / 1.03: single cases are within the machine's noise.
#pragma once
#include <cstdint>

#include "kernels/conv.h"

namespace sg::kernels::cpu {

// Whether conv2d_forward (transposed = false) or conv_transpose2d_forward (transposed = true)
// of p takes the Winograd path: f32, 3x3, stride 1, padding <= 2 (transposed: <= 2 and no
// output_padding), and channels per group >= kWinogradMinChannels on both sides.
constexpr int64_t kWinogradMinChannels = 16;
bool winograd_applies(const Conv2dParams& p, bool transposed);

// y = conv2d(x, w) (transposed = false) or conv_transpose2d(x, w) (transposed = true), y fully
// overwritten. Requires winograd_applies(p, transposed) apart from the dtype (f64 is
// supported for the tests).
template <class T>
void conv2d_winograd(const Conv2dParams& p, const T* x, const T* w, T* y, bool transposed);

// dw = conv2d_weight_grad(dy, x) for the conv2d p (fully overwritten); requires
// winograd_applies(p, false). By linearity of the forward formula,
//   dL/dU[o,c] = sum_tiles V[c,t] (.) (A dY[o,t] A^T),   dw[o,c] = G^T dL/dU[o,c] G,
// with V the forward's input transform: 16 GEMMs [Og, tiles] @ [tiles, Cg] per chunk, summed.
template <class T>
void conv2d_weight_grad_winograd(const Conv2dParams& p, const T* dy, const T* x, T* dw);

}  // namespace sg::kernels::cpu
