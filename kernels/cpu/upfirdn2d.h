// upfirdn2d on the CPU: upsample by zero insertion, pad (negative pads crop), FIR filter,
// downsample, times gain — StyleGAN2's resampling primitive.
//
// Formula, layout and parameters: kernels/upfirdn2d.h (shared with the CUDA kernels).
//
// Variants (both visit only the taps that land on real input samples, so the inserted zeros
// and the zero padding cost nothing):
//   separable (a 1-D filter [k], every StyleGAN2 call): two 1-D passes per plane. Horizontal:
//     tmp[iy][ox] = sum_j wx[j] * u[iy][ox*downx + j], tap by tap over the run of outputs the
//     tap reaches (an arithmetic progression, contiguous when upx = downx = 1); vertical:
//     y[oy] = gain * sum_i wy[i] * tmp-row, whole rows at a time (vectorized over ox). k + k
//     multiply-adds per output instead of k * k. Threads over planes, tmp per thread.
//   direct (a 2-D filter [fh, fw]): one loop per output pixel over its tap ranges, which are
//     precomputed per output row and column and shared by all planes. Threads over (plane,
//     output row).
// tests/test_cpu_kernels.cpp checks separable against direct (given outer(f, f)) on
// thousands of random up / down / pad / flip / gain / size combinations.
//
// Measured (perf record on the main job's training, 2 threads, `perf record -g
// build/stylegan2-train --kimg 0.5 --tick 0.25 --metrics 0 --snap 0 --tensorboard=0`): the
// direct loop took 19.7% of training time, the separable one 2.0% (its share against the
// GEMMs' went from 0.53 to 0.10). No stand-alone CPU benchmark; study/upfirdn2d.cu uses this
// kernel as the reference for the CUDA versions and does not time it.
#pragma once
#include <cstdint>

#include "kernels/upfirdn2d.h"

namespace sg::kernels::cpu {

template <class T>
void upfirdn2d(const UpFirDn2dParams& p, const T* x, const T* f, T* y);

}  // namespace sg::kernels::cpu
