// upfirdn2d on CUDA: upsample by zero insertion, pad (negative pads crop), FIR filter,
// downsample, times gain — StyleGAN2's resampling primitive. Implementation:
// kernels/cuda/upfirdn2d.cu.
//
// Formula, layout and parameters: kernels/upfirdn2d.h (shared with the CPU kernel); x, f and
// y on the device.
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

#include "kernels/upfirdn2d.h"

namespace sg::kernels::cuda {

// x, f, y on the device.
template <class T>
void upfirdn2d(const UpFirDn2dParams& p, const T* x, const T* f, T* y);

}  // namespace sg::kernels::cuda
