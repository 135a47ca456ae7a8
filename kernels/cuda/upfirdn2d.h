// upfirdn2d on CUDA: upsample by zero insertion, pad (negative pads crop), FIR filter,
// downsample, times gain — StyleGAN2's resampling primitive. Implementation:
// kernels/cuda/upfirdn2d.cu.
//
// Formula (as kernels/cpu/upfirdn2d.h). Per (n, c) plane, with u the zero-upsampled, padded input,
//   u[Y][X] = x[(Y - pady0) / upy][(X - padx0) / upx]  when Y - pady0 is a multiple of upy in
//             [0, H*upy) and X - padx0 a multiple of upx in [0, W*upx), else 0,
//   y[oy][ox] = gain * sum_{i<fh, j<fw} u[oy*downy + i][ox*downx + j] * w[i][j],
// where w = f flipped in both axes (a true convolution, flip_filter=false) or f itself
// (flip_filter=true); a 1-D filter [k] means the separable outer(f, f). Output size:
//   Ho = (H*upy + pady0 + pady1 - fh) / downy + 1,  Wo = (W*upx + padx0 + padx1 - fw) / downx + 1.
//
// Layout: x [planes, H, W], y [planes, Ho, Wo] row-major (planes = N*C); f on the device,
// [fh, fw] row-major, or [k] when separable (fh = fw = k).
//
// Variants (picked on the host):
//   - separable fast path (the StyleGAN2 cases): a 1-D filter of at most 8 taps, up and down
//     in {1, 2} (the same on both axes). A block computes a 16 x 32 output tile of one plane:
//     it stages the input window it needs in shared memory (zeros outside the image), runs
//     the horizontal pass into a second shared buffer and the vertical pass to the output,
//     visiting only the taps that land on real input samples. One instantiation per (up,
//     down).
//   - general: any up / down / pad / filter. One thread per output pixel (grid-stride), the
//     oriented, gain-scaled filter in shared memory (read from global memory on the fly
//     when it is too large), and only the taps that land on real input samples are visited.
// Both run on kernels::cuda::stream(); the output is fully overwritten.
//
// Benchmark: build/study/study_upfirdn2d (study/upfirdn2d.cu, on a GPU): upsample2d of
// [32*512 planes, 64, 64] and downsample2d of [32*512, 128, 128] with [1,3,3,1], forward and
// backward, naive and tiled versions next to this kernel, GB/s of x + y beside cudaMemcpy
// d2d in the same run, each checked against kernels/cpu/upfirdn2d.h.
// bench/run_cuda_bench.sh (build/bench_cuda_kernels --filter upfirdn2d): up2 and down2
// forward through the engine, next to PyTorch (bench/torch_cuda_kernels.py).
#pragma once
#include <cstdint>

namespace sg::kernels::cuda {

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

// x, f, y on the device.
template <class T>
void upfirdn2d(const UpFirDn2dParams& p, const T* x, const T* f, T* y);

}  // namespace sg::kernels::cuda
