// upfirdn2d on the CPU: upsample by zero insertion, pad (negative pads crop), FIR filter,
// downsample, times gain — StyleGAN2's resampling primitive.
//
// Formula, layout and parameters: kernels/upfirdn2d.h (shared with the CUDA kernels). A
// separable filter is expanded to outer(f, f) first.
//
// Variant: one direct loop per output pixel that visits only the taps landing on real
// input samples (every up-th tap along each axis, clipped to the image), so the inserted
// zeros and the zero padding cost nothing. The tap ranges are precomputed per output row and
// column once and shared by all planes. OpenMP over (plane, output row).
//
// Benchmark: no CPU benchmark yet. (study/upfirdn2d.cu uses this kernel as the reference
// for the CUDA versions; it does not time it.)
#pragma once
#include <cstdint>

#include "kernels/upfirdn2d.h"

namespace sg::kernels::cpu {

template <class T>
void upfirdn2d(const UpFirDn2dParams& p, const T* x, const T* f, T* y);

}  // namespace sg::kernels::cpu
