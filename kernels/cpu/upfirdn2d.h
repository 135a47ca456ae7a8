// upfirdn2d on the CPU: upsample by zero insertion, pad (negative pads crop), FIR filter,
// downsample, times gain — StyleGAN2's resampling primitive.
//
// Formula, layout and parameters: kernels/upfirdn2d.h (shared with the CUDA kernels).
//
// Variants:
//   separable (a 1-D filter [k], every StyleGAN2 call): two 1-D passes over bands of output
//     rows of one plane. The rows of the upsampled, padded input that a band reads are built
//     in scratch with real zeros for the padding and the inserted samples; then a horizontal
//     pass, one flat loop over the whole band (tmp[r][ox] = sum_j wx[j] * u[r][ox*downx + j]),
//     and a vertical one per output row (y[oy] = gain * sum_i wy[i] * tmp[oy*downy + i]), each
//     output's k products summed in registers (k a compile-time constant up to 8). k + k
//     multiply-adds per output instead of k * k. Threads over (plane, band).
//   direct (a 2-D filter [fh, fw]): one loop per output pixel over the taps that land on real
//     input samples (inserted zeros and padding cost nothing), precomputed per output row and
//     column and shared by all planes. Threads over (plane, output row).
// tests/test_cpu_kernels.cpp checks separable against direct (given outer(f, f)) on
// thousands of random up / down / pad / flip / gain / size combinations, and on StyleGAN2's
// shapes and images wide enough for several bands.
//
// Measured (perf record on the main job's training, 2 threads, `perf record -g
// build/stylegan2-train --kimg 0.5 --tick 0.25 --metrics 0 --snap 0 --tensorboard=0`): the
// direct loop took 19.7% of training time, the separable one 2.0% (its share against the
// GEMMs' went from 0.53 to 0.10). A later profile of the same command (2 December, after the
// convolutions had become 2-3x faster) had the separable variant, then tap by tap over runs
// of a row's outputs with the padding skipped, at 9.9%; the banded version above is 2.5-3.5x
// faster on the main job's blurs and downsamplings and 1.4-1.6x on its upsamplings
// (build/bench_cpu_upfirdn2d, which times every such call against a copy of the same bytes;
// bench/results/upfirdn2d_2026-12-02.txt), with the same results to the bit.
#pragma once
#include <cstdint>

#include "kernels/upfirdn2d.h"

namespace sg::kernels::cpu {

template <class T>
void upfirdn2d(const UpFirDn2dParams& p, const T* x, const T* f, T* y);

}  // namespace sg::kernels::cpu
