// Adam on CUDA (kernels/cuda/adam.cu): one fused pass over (param, grad, exp_avg,
// exp_avg_sq), in place, the same update as kernels/cpu/adam.h:
//   m <- beta1 m + (1 - beta1) g
//   v <- beta2 v + (1 - beta2) g^2
//   p <- p - step_size m / (sqrt(v) / bc2_sqrt + eps)
// with the bias-corrected scalars of cpu::AdamStepParams::make (computed once, in double, on
// the host, shared with the CPU so both backends use identical constants). Four contiguous
// device buffers of n elements, no aliasing. Plain C++ header.
#pragma once
#include <cstdint>

#include "kernels/cpu/adam.h"

namespace sg::kernels::cuda {

template <class T>
void adam_step(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, const cpu::AdamStepParams& p);

}  // namespace sg::kernels::cuda
