// upfirdn2d's parameters and formula, shared by the CPU kernel (kernels/cpu/upfirdn2d.h) and
// the CUDA kernels (kernels/cuda/upfirdn2d.h): upsample by zero insertion, pad (negative pads
// crop), FIR filter, downsample, times gain — StyleGAN2's resampling primitive.
//
// Formula. Per (n, c) plane, with u the zero-upsampled and padded input,
//   u[Y][X] = x[(Y - pady0) / upy][(X - padx0) / upx]  when Y - pady0 is a multiple of upy in
//             [0, H*upy) and X - padx0 a multiple of upx in [0, W*upx), else 0,
//   y[oy][ox] = gain * sum_{i<fh, j<fw} u[oy*downy + i][ox*downx + j] * w[i][j],
// where w = f flipped in both axes (a true convolution, flip_filter=false) or f itself
// (correlation, flip_filter=true); a 1-D filter [k] (separable) means outer(f, f). Output size:
//   Ho = (H*upy + pady0 + pady1 - fh) / downy + 1,  Wo = (W*upx + padx0 + padx1 - fw) / downx + 1.
//
// Layout: x [planes, H, W] and y [planes, Ho, Wo] row-major (planes = N*C); f [fh, fw]
// row-major, or [k] when separable (fh = fw = k).
#pragma once
#include <cstdint>

namespace sg::kernels {

struct UpFirDn2dParams {
  int64_t planes = 1;  // N * C
  int64_t in_h = 1, in_w = 1;
  int64_t out_h = 1, out_w = 1;  // must equal the formula above
  int64_t fh = 1, fw = 1;
  bool separable = false;  // f is 1-D [fh] (then fh == fw)
  int64_t upx = 1, upy = 1, downx = 1, downy = 1;
  int64_t padx0 = 0, pady0 = 0;  // the far-side pads are implied by out_h / out_w
  bool flip_filter = false;
  double gain = 1.0;
};

}  // namespace sg::kernels
