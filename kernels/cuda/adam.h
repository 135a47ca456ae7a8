// Adam on CUDA (kernels/cuda/adam.cu): one fused pass over (param, grad, exp_avg,
// exp_avg_sq), in place, the same update as kernels/cpu/adam.h:
//   m <- beta1 m + (1 - beta1) g
//   v <- beta2 v + (1 - beta2) g^2
//   p <- p - step_size m / (sqrt(v) / bc2_sqrt + eps)
// with the bias-corrected scalars of cpu::AdamStepParams::make (computed once, in double, on
// the host, shared with the CPU so both backends use identical constants). Four contiguous
// device buffers of n elements, no aliasing. Plain C++ header.
//
// Variants: adam_step, one tensor per launch; adam_step_multi, many tensors (each with its own
// constants: step counts differ where a gradient was missing) in one launch per
// kAdamMultiMax tensors, their descriptors passed as kernel parameters (no host-to-device
// copy, so nothing waits; up to 32 KB of parameters, CUDA 12.1's limit for sm_70 and newer):
// a step of a whole StyleGAN2 network (small's G has 66 tensors, paper256's about 120) is one
// launch, not one per parameter. Each block updates one chunk of kAdamChunk elements of one
// tensor.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/adam.h"

namespace sg::kernels::cuda {

template <class T>
void adam_step(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, const cpu::AdamStepParams& p);

template <class T>
using AdamTensor = cpu::AdamTensor<T>;   // pointers to device buffers here
constexpr int kAdamMultiMax = 192;       // tensors per launch (the parameters stay under 32 KB)
constexpr int64_t kAdamChunk = 1 << 16;  // elements per block

template <class T>
void adam_step_multi(const std::vector<AdamTensor<T>>& tensors);

}  // namespace sg::kernels::cuda
