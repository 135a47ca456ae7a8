// bias_act on CUDA: bias, activation, gain and clamp in one pass, and its derivatives.
// Implementation: kernels/cuda/bias_act.cu.
//
// Formula and parameters: kernels/bias_act.h (shared with the CPU kernels). Higher orders
// need no kernel: grad is linear in dy and piecewise constant in y, so its own derivative is
// grad again (in dy) and zero (in y) — engine/derivatives.cpp.
//
// Layout: x, y, dy, dx contiguous, viewed as [outer, C, inner]; b has C elements (nullptr:
// no bias). For a bias along dim d of shape s: outer = prod(s[:d]), C = s[d],
// inner = prod(s[d+1:]).
//
// Variants: elementwise grid-stride kernels, one instantiation per (activation, clamp) pair;
// the forward's channel index c = (i / inner) % C is computed in 32-bit when the tensor has
// fewer than 2^31 elements (64-bit otherwise).
//
// Benchmark: build/study/study_bias_act (study/bias_act.cu, on a GPU): forward and grad on
// [32, 512, 32, 32] f32 lrelu, naive and improved versions next to this kernel, GB/s
// (x + y, or dy + y + dx) beside cudaMemcpy d2d in the same run, each checked against
// kernels/cpu/bias_act.h. bench/run_cuda_bench.sh (build/bench_cuda_kernels --filter
// bias_act): the forward through the engine, next to PyTorch.
#pragma once
#include <cstdint>

#include "kernels/bias_act.h"

namespace sg::kernels::cuda {

// y = forward(x, b); all pointers on the device.
template <class T>
void bias_act_forward(const BiasActParams& p, int64_t outer, int64_t C, int64_t inner, const T* x, const T* b, T* y);

// n elements: dx = dy * gain * act'(y) * (|y| < clamp).
template <class T>
void bias_act_grad(const BiasActParams& p, int64_t n, const T* dy, const T* y, T* dx);

}  // namespace sg::kernels::cuda
