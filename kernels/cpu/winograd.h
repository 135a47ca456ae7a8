// Winograd F(4x4, 3x3) and F(2x2, 3x3) convolution on the CPU: 3x3, stride-1 conv2d,
// conv_transpose2d and conv2d's weight gradient.
// Implementation: kernels/cpu/winograd.cpp. Called by kernels/cpu/conv.cpp when it applies.
//
// Formula (Lavin & Gray 2015). Each m x m block of outputs ("tile") of one output channel
// needs an a x a patch d (a = m + 2) of each input channel (rows m*ty - py .. + a - 1, columns
// m*tx - px .. + a - 1, zero outside the image). With
//   U[o,c] = G g[o,c] G^T (a x a),  V[c,t] = B^T d[c,t] B (a x a),
//   M[e][o,t] = sum_c U[e][o,c] V[e][c,t]   for each of the E = a^2 elements e: E GEMMs,
//   y[o, tile t] = A^T M[o,t] A (m x m),
// the matrices, for F(2x2, 3x3) (m = 2, a = 4, E = 16):
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1];
// for F(4x4, 3x3) (m = 4, a = 6, E = 36) on the interpolation points p = 0, 1, -1, 2, -1/2
// and infinity (Toom-Cook: A^T[i][j] = p_j^i, G[j][k] = p_j^k / prod_{l != j} (p_j - p_l),
// then B^T is what makes the identity hold; the last column / row is the point at infinity):
//   B^T = [1 3/2 -2 -3/2 1 0; 0 -1 -5/2 -1/2 1 0; 0 1 1/2 -5/2 1 0; 0 -1/2 -1 1/2 1 0;
//          0 2 -1 -2 1 0; 0 1 3/2 -2 -3/2 1],
//   G   = [1 0 0; -1/3 -1/3 -1/3; 1/3 -1/3 1/3; 1/15 2/15 4/15; -16/15 8/15 -4/15; 0 0 1],
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -1/2 0; 0 1 1 4 1/4 0; 0 1 -1 8 -1/8 1].
// Multiply-adds per (o, c, output) instead of 9: E / m^2 = 4 for F(2x2) (2.25x fewer), 2.25
// for F(4x4) (4x fewer), plus the transforms (O(C + O) per tile, not O(C * O)); which one a
// call takes: winograd_tile below.
// Accuracy: F(2x2)'s coefficients are 0, +-1 and +-1/2. F(4x4)'s grow with its interpolation
// points; the textbook's 0, +-1, +-2 (Lavin & Gray) gave a max f32 error of 7.6e-6 and 9.4e-6
// of the output scale in the 512-channel test of tests/test_cpu_kernels.cpp (the f32
// tolerance is 1e-5), the points 0, 1, -1, 2, -1/2 used here 4.2e-6 (F(2x2): 6e-7); a
// float32 simulation over 4096 tiles gave 1.3e-5 against 4.0e-6 (max) and 3.2e-6 against
// 2.1e-6 (rms). Better-conditioned points are the fix Barabasz et al. (2018) describe.
//
// conv_transpose2d with stride 1 is conv2d with the weight flipped in both axes and its two
// channel axes swapped, and padding 2 - p: the weight transform reads it that way, nothing is
// materialised.
//
// Layout: as kernels/cpu/conv.h (NCHW; conv2d weights [Cout, Cin/groups, 3, 3], transposed
// [Cin, Cout/groups, 3, 3]). Tiles are numbered across the whole batch (tile q = (n, ty, tx)),
// so 4x4 and 8x8 images still give wide GEMMs. Tasks are (group, chunk of tiles), threads over
// them, the GEMM (kernels/cpu/gemm.h) single-threaded inside; per thread a scratch V [E, Cg, chunk]
// (small planes: [E, chunk, Cg]) and M [E, Og, chunk] (chunk sized to keep both near 1 MiB).
//
// Benchmark: build/bench_cpu_conv (conv3x3 rows; bench/run_cpu_bench.sh next to PyTorch).
// Measured (AMD EPYC, AVX2, 2 threads, quiet; bench/results/cpu_conv_2026-11-30_*): against
// PyTorch's oneDNN, forward went from 0.51-0.76x (_161039, im2col) to 0.74-1.01x (_161641,
// _161921), forward + backward from 0.43-0.85x to 0.78-0.95x once the weight gradient took
// this path too (_161921); the main job's training from 38-40 to 31-34 s/kimg.
// Transforms, two layouts. Images with at most 8 tiles per row (every layer of seed32 and
// small; winograd.cpp "Small planes"): the input transform runs across 16 channels at a time,
// as vector lanes, from a channel-last zero-padded copy of each image's block, writing V as
// [E, chunk, Cg]; the output and gradient transforms run over a whole chunk's tiles at once;
// the weight transform writes straight into the GEMM's packed layout. This made the main job's
// training 1.11x faster and most seed32 and small convs 1.1-2x
// (bench/results/winograd_planes_2026-12-02.txt, winograd_direct_pack_2026-12-02.txt). The
// channel-last copy into the plane and the weight transform's gather of 6 kernels' taps both go
// through AVX2 8x8 register transposes (the same numbers): 32x32 convs 1.16-1.2x, 16x16 about
// 1.05x (bench/pair_ab.sh conv, 1 thread each, 2 December evening).
// Wider images: the input transform reads a run of tiles (one tile row of one image) straight
// from the image, combining its a rows first (contiguous) and then each tile's a columns
// (stride-m loads, vectorized as permutes); the output transform writes the m x m blocks
// straight into the output rows. They replaced a scalar de-interleaving copy of every patch
// row, with the same numbers. Measured with bench/pair_ab.sh (both builds side by side, 1
// thread each): the main job's training 1.16x faster together with loops.h's fixed-stride rows
// (bench/results/main_job_pair_2026-12-01.txt); per conv case the ratios spread 0.85-1.43
// (bench/results/cpu_conv_pair_winograd_2026-12-01.txt), the stride-2 row, which this path
// does not touch, among them at 0.85 / 1.03: single cases are within the machine's noise.
// F(4x4) (winograd_tile's choice) made the main job's training 1.09x faster than F(2x2) alone
// (bench/pair_ab.sh train, 1 thread each: 22.85 against 20.91 s/kimg) and the main job
// 2.92-3.48x PyTorch's loop (three runs of bench/run_main_job_bench.sh, main_job_2026-12-01_19*).
#pragma once
#include <cstdint>

#include "kernels/conv.h"

namespace sg::kernels::cpu {

// Whether conv2d_forward (transposed = false) or conv_transpose2d_forward (transposed = true)
// of p takes the Winograd path: f32, 3x3, stride 1, padding <= 2 (transposed: <= 2 and no
// output_padding), and channels per group >= kWinogradMinChannels on both sides.
constexpr int64_t kWinogradMinChannels = 16;
bool winograd_applies(const Conv2dParams& p, bool transposed);

// The output tile m the kernels below take by default for an Ho x Wo output with `channels`
// (the smaller of Cin and Cout per group): 2 when either side is under 4; else 4 from Wo >= 16,
// and at 8 <= Wo < 16 for the weight gradient or from 64 channels; 2 below.
// SG_WINOGRAD_TILE=2 or 4 forces one (where both sides are at least 4), for benchmarks; any
// other value but "auto" throws std::invalid_argument.
// History: until 2 December the forward took F(4x4) only from Wo >= 24 or where ceil(Wo / 4) *
// channels reached 768: with transforms whose loops ran over the few tiles of one tile row,
// F(4x4)'s transforms cost more than its GEMMs saved below that (64 channels at 16x16: 2.3
// against 2.9 ms; bench/results/winograd_tiles_2026-12-01.txt). With the small-planes
// transforms (winograd.cpp) F(4x4) is 1.1-1.7x faster than F(2x2) at 16x16 in every seed32 and
// small forward, and 1.2-1.4x at 8x8 with 64-192 channels (bench/results/winograd_planes_2026-12-02.txt).
// At 8x8 it waited for tests/cuda/test_cuda_models.cpp: that test compared the device with the
// CPU's f32, and F(4x4)'s rounding moved one pre-activation of D across the leaky ReLU's kink
// on the CPU only (its R1 gradient then differed locally by 8e-4 of its scale). It now compares
// with the CPU in f64 on the same input.
int winograd_tile(int64_t Ho, int64_t Wo, int64_t channels, bool weight_grad);

// Whether the F(2x2) forward of a call with few tiles against many output channels (4x4 grids)
// splits its GEMMs over the threads by output channels, each thread transforming and reading
// only its own rows of the packed weights, instead of by tiles, where every thread streams all
// of them (winograd.cpp, `osplit` in forward): the same bits either way. Its weight gradient splits the same way, each
// thread accumulating its rows over all the tiles: a rounding that no longer depends on the
// thread count, not the tile split's bits (winograd.cpp weight_grad). On by default;
// SG_WINOGRAD_OSPLIT=0 turns it off. Switches it and returns the previous setting (tests,
// benchmarks).
bool winograd_split_outputs(bool on);

// y = conv2d(x, w) (transposed = false) or conv_transpose2d(x, w) (transposed = true), y fully
// overwritten. Requires winograd_applies(p, transposed) apart from the dtype (f64 is
// supported for the tests). tile: the output tile m, 2 or 4 (0: winograd_tile's choice; other
// values throw std::invalid_argument).
// x_scale, y_scale (either may be null): per-image channel factors, [N, Cin] and [N, Cout]:
//   y[n,o] = y_scale[n,o] * conv(x[n,c] * x_scale[n,c], w)[o]
// the modulate-activations form of StyleGAN2's modulated conv (styles in, demodulation
// coefficients out; engine/ops/modulated_conv.cpp). They are applied as x is copied into the
// small planes and as y is written, so the numbers are those of scaling x, convolving and
// scaling y as three passes, bit for bit, without the two extra passes over memory. Only
// where winograd_fuses_scales(p, transposed, tile) (else std::invalid_argument).
template <class T>
void conv2d_winograd(const Conv2dParams& p, const T* x, const T* w, T* y, bool transposed, int tile = 0,
                     const T* x_scale = nullptr, const T* y_scale = nullptr);

// Whether conv2d_winograd takes scales for p: winograd_applies, and the output is narrow
// enough for the small planes (at most 8 tiles per row: 32 columns with F(4x4)).
bool winograd_fuses_scales(const Conv2dParams& p, bool transposed, int tile = 0);

// dw = conv2d_weight_grad(dy, x) for the conv2d p (fully overwritten); requires
// winograd_applies(p, false). By linearity of the forward formula,
//   dL/dU[o,c] = sum_tiles V[c,t] (.) (A dY[o,t] A^T),   dw[o,c] = G^T dL/dU[o,c] G,
// with V the forward's input transform: E GEMMs [Og, tiles] @ [tiles, Cg] per chunk, summed.
// tile: as conv2d_winograd.
template <class T>
void conv2d_weight_grad_winograd(const Conv2dParams& p, const T* dy, const T* x, T* dw, int tile = 0);

}  // namespace sg::kernels::cpu
