// upfirdn2d on the CPU: upsample by zero insertion, pad (negative pads crop), FIR filter,
// downsample, times gain — StyleGAN2's resampling primitive.
//
// Formula. Per (n, c) plane, with u the zero-upsampled and padded input,
//   u[Y][X] = x[(Y - pady0) / upy][(X - padx0) / upx]  when Y - pady0 is a multiple of upy in
//             [0, H*upy) and X - padx0 a multiple of upx in [0, W*upx), else 0,
//   y[oy][ox] = gain * sum_{i<fh, j<fw} u[oy*downy + i][ox*downx + j] * w[i][j],
// where w = f flipped in both axes (a true convolution, flip_filter=false) or f itself
// (correlation, flip_filter=true). Output size:
//   Ho = (H*upy + pady0 + pady1 - fh) / downy + 1,  Wo = (W*upx + padx0 + padx1 - fw) / downx + 1.
//
// Layout: x [planes, H, W] and y [planes, Ho, Wo] row-major (planes = N*C); f [fh, fw]
// row-major (the engine expands a separable 1-D filter into outer(f, f) before calling).
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

namespace sg::kernels::cpu {

struct UpFirDn2dParams {
  int64_t planes = 1;  // N * C
  int64_t in_h = 1, in_w = 1;
  int64_t out_h = 1, out_w = 1;  // must equal the formula above
  int64_t fh = 1, fw = 1;
  int64_t upx = 1, upy = 1, downx = 1, downy = 1;
  int64_t padx0 = 0, pady0 = 0;  // the far-side pads are implied by out_h / out_w
  bool flip_filter = false;
  double gain = 1.0;
};

template <class T>
void upfirdn2d(const UpFirDn2dParams& p, const T* x, const T* f, T* y);

}  // namespace sg::kernels::cpu
