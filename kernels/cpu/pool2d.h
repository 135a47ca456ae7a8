// 2-D max and average pooling on the CPU, and their backward passes.
//
// Formula, layout and parameters: kernels/pool2d.h (shared with the CUDA kernels).
//
// Layout: x, dx [planes, H, W] and y, dy [planes, Ho, Wo], contiguous.
//
// Variants: one loop over output (forward) or input (backward) elements per plane, threads
// over planes; the backward passes are gathers (no atomics, deterministic).
//
// Benchmark: none yet (the FID Inception network, models/inception.h, is their main user).
#pragma once
#include <cstdint>

#include "kernels/pool2d.h"

namespace sg::kernels::cpu {

// y = the max of each window of x, or, with values != nullptr, values at that position.
template <class T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, const T* values, T* y);
// dx = dy scattered to the positions max_pool2d_forward chose in x.
template <class T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const T* x, T* dx);
template <class T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y);
template <class T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx);

}  // namespace sg::kernels::cpu
