// 2-D max and average pooling on CUDA, and their backward passes. Implementation:
// kernels/cuda/pool2d.cu.
//
// Formula, layout and parameters: kernels/pool2d.h (shared with the CPU kernels); all
// pointers on the device. Layout: x, dx [planes, H, W] and y, dy [planes, Ho, Wo], contiguous.
//
// Variants: one thread per output element (forward) or input element (backward, a gather:
// no atomics, deterministic), grid-stride, 64-bit indices; on kernels::cuda::stream().
//
// Benchmark: none yet (the FID Inception network, models/inception.h, is their main user).
#pragma once
#include <cstdint>

#include "kernels/pool2d.h"

namespace sg::kernels::cuda {

template <class T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, const T* values, T* y);
template <class T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const T* x, T* dx);
template <class T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y);
template <class T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx);

}  // namespace sg::kernels::cuda
