// CPU 2-D convolution family: im2col / col2im + the GEMM of kernels/cpu/gemm.h, with
// threads (kernels/cpu/parallel.h) over (batch, group, band) tasks.
//
// Formulas (cross-correlation, as PyTorch; g = group of output channel co, Cg = Cin/groups):
//   conv2d_forward:           y[n,co,oy,ox]  = sum_{ci<Cg,i,j} w[co,ci,i,j] * x[n, g*Cg+ci, oy*s-p+i, ox*s-p+j]
//                             Ho = (H + 2p - kh) / s + 1
//   conv_transpose2d_forward: the adjoint of conv2d_forward in x: every x[n,ci,iy,ix] * w[ci,co',i,j]
//                             is scatter-added to y[n, g*Cgo+co', iy*s-p+i, ix*s-p+j]
//                             Ho = (H - 1) * s - 2p + kh + output_padding
//   conv2d_weight_grad:       dw[co,ci,i,j] = sum_{n,oy,ox} dy[n,co,oy,ox] * x[n, g*Cg+ci, oy*s-p+i, ox*s-p+j]
// Out-of-range input positions read as zero (zero padding).
//
// Layout: NCHW, contiguous, row-major. conv2d weights [Cout, Cin/groups, kh, kw]; transposed
// conv weights [Cin, Cout/groups, kh, kw] (PyTorch's layouts). Stride, padding and
// output_padding are given per axis as {y, x}.
//
// Strategy (the choices below were measured on 2 cores with AVX-512 and Eigen's sgemm at
// ~270 GFLOP/s; the Winograd numbers on an AMD EPYC with AVX2, 2 cores; see bench/results/).
// The GEMM is ours (packed, AVX2) for f32 since 30 November 2026, Eigen's before and for f64:
//   - Default, per (n, group) tasks, threads over them, the GEMM single-threaded inside,
//     one column buffer per thread (stays in L2):
//       forward  Y_g[Cout/g, Ho*Wo]   = W_g[Cout/g, Cg*kh*kw] @ col[Cg*kh*kw, Ho*Wo]
//       transp.  col[Cgo*kh*kw, H*W]  = W_g^T @ X_g[Cg, H*W], then col2im (scatter-add)
//       wgrad    dW_g               += dY_g[Cout/g, Ho*Wo] @ col^T
//     Tasks are (n, group, band of output rows) for forward / wgrad, (n, group, chunk of
//     output channels) for transposed (scatter-adds never overlap); bands hold at most 2^21
//     column elements per thread and are split further when there are fewer tasks than
//     threads. The weight grad is parallel over groups when groups >= threads (the fused
//     modulated conv: N = 1, groups = batch), else per-thread accumulators reduced at the end.
//   - Batched, for small grids (<= 64 output pixels, e.g. 4x4 and 8x8, N > 1, not 1x1): per
//     group ONE GEMM across the whole batch, the im2col of all N images side by side
//     ([K, N*Ho*Wo], at most 2^23 elements), the GEMM's own multithreading (called outside any
//     parallel region). A per-image GEMM there has 16-64 columns and runs far below peak
//     (384->384 at 4x4: 1.35 -> 0.95 ms forward). At 16x16 and up the batched form LOSES
//     (the big column matrix leaves L2; 2 single-threaded GEMMs beat one 2-thread GEMM).
//     Forward scatters the [Cout/g, N*Ho*Wo] result back per image; transposed packs x to
//     [Cg, N*H*W], one GEMM, then col2im per (image, channel); weight grad packs dy and
//     does one GEMM with the full batch as the inner dimension.
//   - Winograd F(4x4, 3x3) or F(2x2, 3x3) (kernels/cpu/winograd.h), f32 only: conv2d_forward,
//     conv_transpose2d_forward and conv2d_weight_grad of 3x3 stride-1 convolutions with padding <= 2 and at least 16
//     channels per group on both sides (the data gradient of such a conv2d is one too). 4x or
//     2.25x fewer multiply-adds; F(2x2) measured against the im2col path on this file's benchmark (AMD EPYC,
//     AVX2, 2 threads, forward): 9.5 -> 6.0 ms for 8 x 64 ch at 32x32, 16.7 -> 10.3 ms for 4 x
//     128 ch at 32x32, 15.0 -> 13.1 ms for 4 x 256 ch at 16x16 (bench/results/cpu_conv_*).
//     f64 always takes im2col, so the f32-vs-f64 checks compare the two.
//   - 1x1, stride 1, padding 0: no im2col / col2im (the image is the column matrix). The
//     weights of each group, W_g for the forward and W_g^T for the transposed conv, are packed
//     for the GEMM once per call, not once per image: at 384 channels on 4x4 grids the per-image
//     packing cost more than the products (bench/results/cpu_conv_pointwise_dgrad_2026-12-02.txt).
//     Its weight gradient with at most 4 input channels per group (fromRGB) is Cout * Cin dot
//     products of length Ho * Wo, not a GEMM whose N (Cin) fills a sixteenth of its register
//     tile: seed32's fromRGB 4.4x faster (bench/results/winograd_8x8_thin_wgrad_2026-12-02.txt).
//     Its weight gradient with many channels and few pixels per image (M K >= 8 HW (M + K):
//     seed32's 384-channel skip at 4x4) is one GEMM over the batch, as the batched path: per-image
//     GEMMs there read and write the [M, K] result once per image of 16 pixels
//     (bench/results/cpu_conv_pointwise_wgrad_2026-12-03.txt: 1.15x on 2 threads). With AVX-512,
//     pixels per image and the group's input channels multiples of 16, neither operand is
//     written out for it: dY's rows are packed from the images (gemm_pack_a_segments) and X^T's
//     slivers by 16 x 16 register transposes (conv.cpp PointwiseColsT); the same bits, 0.76 ->
//     0.53 ms at seed32's 384-channel skip. With fewer pixels (8x8: the 192 -> 384 skip) each
//     thread's task is a run of images filling one k block of that GEMM, added into its own
//     accumulator (bench/results/cpu_conv_pointwise_implicit_2026-12-03.txt).
//   - im2col, stride 1 with Wo == W ("same" padding): each row of the column matrix is one
//     memcpy of the shifted plane plus zeroed edge columns (not a memcpy per output row).
//   - im2col / col2im, stride 2 along x where a kernel column reads inside every output row
//     (the downsampling convs, padding 0): the valid rows as one block of stride-2 gathers
//     (scatter-adds), the row width unrolled for 4, 8 and 16. Each kernel tap's geometry is
//     worked out once per call for all the channels it covers, not per channel. Measured
//     against the per-row, per-channel version (small's Ddown convs at batch 16, the kernels
//     alone, 1 thread each, both builds side by side; with the GEMM's new B packing,
//     bench/results/cpu_conv_s2_rows_2026-12-03.txt): 9x9 -> 4x4 0.29 -> 0.13 ms forward and
//     weight gradient, 0.23 -> 0.14 data gradient; 17x17 -> 8x8 0.65-0.77 -> 0.49-0.52; 33x33
//     -> 16x16 2.44-2.49 -> 1.86-2.05. Against PyTorch: bench/run_conv_shapes_bench.sh.
//     In f32 with output rows 4, 8 or 16 wide and stride 2 on both axes, padding 0, the
//     forward writes no column matrix: the GEMM's packing step gathers its 16-column slivers
//     straight from the images (conv.cpp S2Columns, gemm.h ImplicitB), the same values in the
//     same layout, so the same bits. Forward 1.08-1.21x faster on small's 17x17 and 9x9 Ddown
//     convs (one GEMM over the batch), the 33x33 one unchanged (the kernels alone, 1 thread
//     each, side by side, 6-10 rounds; bench/results/cpu_conv_s2_implicit_2026-12-03.txt).
//     Where the GEMM runs its AVX-512 kernels, that packer's rows and col2im's stride-2
//     scatter-adds (rows 8 or 16 wide) take AVX-512 code (conv.cpp gather16_s2 and
//     scatter_add_rows_s2_avx512: masked loads, one two-source permute per 16 floats; the
//     compiler's loops spent ~15 instructions there). Same bits; forward 1.02-1.11x, data
//     gradient 1.02-1.10x (bench/results/cpu_conv_s2_avx512_rows_2026-12-03.txt). Their weight
//     gradient (dW = dY @ col^T) takes col^T as an implicit B there too (conv.cpp S2ColumnsT,
//     AVX-512, rows 4, 8 or 16 wide, taps per group a multiple of 16): per 16 pixels x 16 taps,
//     16 row gathers and a 16x16 register transpose (avx2.h transpose16x16) write the GEMM's
//     packed sliver, where im2col wrote the column matrix and the GEMM's transposing packer read
//     it back. Same bits;
//     1.13-1.22x on small's 33x33, 17x17 and 9x9 Ddown convs, 1 or 2 threads
//     (bench/results/cpu_conv_s2_wgrad_implicit_2026-12-03.txt). With 3x3 kernels and output
//     rows 16 wide (inputs 33 or 34 wide: small's 33x33 Ddown), the forward packs nothing: the
//     task's input rows are split into their even and odd columns, after which every tap of an
//     output row is 16 contiguous floats, and the GEMM's 6x32 kernel reads them in place
//     through a table of offsets (conv.cpp S2Planes, gemm.h RowTable). Same bits; 1.08-1.15x
//     on 1 or 2 threads. Its data gradient the other way round: the GEMM's rows (taps) are
//     added straight into the output's column-split rows (gemm_prepacked_scatter_add), which
//     are then interleaved back; no column matrix, the additions of col2im in its order, so
//     the same bits; 1.20-1.28x. And its weight gradient reads col (taps down, an output row's
//     16 pixels at a time along k) in place as the GEMM's A (gemm_row_table_a: dW^T = col @
//     dY^T, only dY^T packed), added into the accumulator through 16x16 register transposes;
//     same bits, 1.09-1.27x (bench/results/cpu_conv_s2_planes_2026-12-03.txt).
//     The data gradient of the 3x3 stride-2 convs on grids 8 or 4 wide (small's 17x17 and 9x9
//     Ddown, the batched path) writes each image row once from the kernel rows that reach it
//     (conv.cpp col2im_s2k3_avx512: even and odd columns in registers, interleaved), instead of
//     zeroing the image and scatter-adding 9 taps' rows; the same additions in the same order,
//     so the same bits; 0.41 -> 0.34 ms and 0.14 -> 0.11 ms (the kernels alone, 2 threads,
//     alternating, bench/results/cpu_conv_pointwise_implicit_2026-12-03.txt).
//   - Calls under 2^20 flops run on one thread; calls from inside a parallel region run
//     serially. Batched buffers are per-thread scratch kept between calls (grow-only).
// Not used, measured worse: stride-1 transposed conv as conv2d with flipped weights (the
// weight flip costs as much as the 4x4 conv itself); a Winograd-style kernel for stride-2 3x3
// convs (1.44x fewer products; 0.65-1.10x the im2col path on small's downsampling convs,
// bench/results/winograd_s2_tried_2026-12-02.txt); a stride-2 transposed conv as four stride-1
// convs, one per output parity (its GEMMs, M = Cout, slower than col2im's; 1.6-2.2x slower in
// all, bench/results/cpu_conv_s2_avx512_rows_2026-12-03.txt).
// Outputs are fully overwritten (no need to zero them first).
//
// Benchmark: build/bench_cpu_conv (bench/bench_cpu_conv.cpp; OMP_NUM_THREADS to vary threads;
// bench/run_cpu_bench.sh runs it next to PyTorch): conv2d and modulated_conv2d through the
// engine, forward and forward + backward, with the GFLOP count
// 2 * N * Cout * Ho * Wo * Cin/groups * kh * kw; --shapes times every conv of small and seed32
// (bench/run_conv_shapes_bench.sh next to PyTorch). build/bench_cpu_gemm times the GEMM alone.
#pragma once
#include <cstdint>

#include "kernels/conv.h"

namespace sg::kernels::cpu {

// Sizes, strides and padding: p (kernels/conv.h, with the output sizes).

// x [N,Cin,H,W], w [Cout,Cin/groups,kh,kw] -> y [N,Cout,Ho,Wo].
template <class T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, T* y);

// conv2d_forward with per-image channel factors on the way in and out (either may be null):
//   y[n,o] = y_scale[n,o] * conv2d(x[n,c] * x_scale[n,c], w)[o],  x_scale [N,Cin], y_scale [N,Cout]
// the modulate-activations form of StyleGAN2's modulated conv (engine/ops/modulated_conv.cpp:
// the styles in, the demodulation coefficients out). The same numbers, bit for bit, as the
// three passes (scale x, conv2d_forward, scale y), which is what it runs unless Winograd's small
// planes take the factors as they copy x in and write y out (winograd.h, winograd_fuses_scales).
template <class T>
void conv2d_forward_scaled(const Conv2dParams& p, const T* x, const T* w, T* y, const T* x_scale, const T* y_scale);

// wsq[c, o] = sum_{i<kh, j<kw} w[o, c, i, j]^2 for w [O, C, kh, kw], kw <= 4 (else
// std::invalid_argument): the weight term of the modulated conv's demodulation coefficients,
// transposed to [C, O] for the styles' GEMM, in one pass over w. Each square is rounded to T
// and the sum taken in double in the engine's order (each row's taps, then the rows:
// kernels/cpu/loops.h reduce_sum), so the bits are those of transpose(sum(square(w), {2, 3}), 0, 1).
template <class T>
void conv_weight_sq_sums(const T* w, int64_t O, int64_t C, int64_t kh, int64_t kw, T* wsq);

// x [N,Cin,H,W], w [Cin,Cout/groups,kh,kw] -> y [N,Cout,Ho,Wo].
template <class T>
void conv_transpose2d_forward(const Conv2dParams& p, const T* x, const T* w, T* y);

// dy [N,Cout,Ho,Wo], x [N,Cin,H,W] -> dw [Cout,Cin/groups,kh,kw].
template <class T>
void conv2d_weight_grad(const Conv2dParams& p, const T* dy, const T* x, T* dw);

// The building blocks, exposed for tests and benchmarks. Rows [oy0, oy1) of the output grid.
//   im2col: col[(c*kh+i)*kw+j, (oy-oy0)*Wo+ox] = img[c, oy*sy-py+i, ox*sx-px+j] (0 outside)
//   col2im: img[c, oy*sy-py+i, ox*sx-px+j] += col[...]   (img not cleared)
// parallel: split the channels over the threads (only when not already in a parallel region).
template <class T>
void im2col(const T* img, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sy, int64_t sx, int64_t py,
            int64_t px, int64_t Ho, int64_t Wo, int64_t oy0, int64_t oy1, T* col, bool parallel);
template <class T>
void col2im(const T* col, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sy, int64_t sx, int64_t py,
            int64_t px, int64_t Ho, int64_t Wo, int64_t oy0, int64_t oy1, T* img, bool parallel);

}  // namespace sg::kernels::cpu
