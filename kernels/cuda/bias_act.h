// bias_act on CUDA: bias, activation, gain and clamp in one pass, and its derivatives.
// Implementation: kernels/cuda/bias_act.cu.
//
// Formula (as kernels/cpu/bias_act.h).
//   forward:  y = clamp(act(x + b[c]) * gain, -clamp, clamp)      (clamp < 0: no clamping)
//   grad:     dx = dy * gain * act'(y) * (|y| < clamp)             (the mask only when clamping)
// Higher orders need no kernel: grad is linear in dy and piecewise constant in y, so its own
// derivative is grad again (in dy) and zero (in y) — engine/ops/bias_act.cpp.
// act: linear (act' = 1), relu (act' = [y > 0]), lrelu(alpha) (act' = 1 if y > 0 else alpha).
// The gradient reads the forward's output y, not x: for gain > 0 and alpha >= 0, y > 0 iff
// x + b > 0, and |y| < clamp iff the clamp did not bite.
//
// Layout: x, y, dy, dx contiguous, viewed as [outer, C, inner]; b has C elements (nullptr:
// no bias). For a bias along dim d of shape s: outer = prod(s[:d]), C = s[d],
// inner = prod(s[d+1:]).
//
// Variants: elementwise grid-stride kernels; the forward's channel index c = (i / inner) % C
// is computed in 32-bit when the tensor has fewer than 2^31 elements (64-bit otherwise).
// Activation and clamp are uniform runtime branches (no per-element divergence).
//
// Benchmark: build/study/study_bias_act (study/bias_act.cu, on a GPU): forward and grad on
// [32, 512, 32, 32] f32 lrelu, naive and improved versions next to this kernel, GB/s
// (x + y, or dy + y + dx) beside cudaMemcpy d2d in the same run, each checked against
// kernels/cpu/bias_act.h. bench/run_cuda_bench.sh (build/bench_cuda_kernels --filter
// bias_act): the forward through the engine, next to PyTorch.
#pragma once
#include <cstdint>

#include "kernels/cpu/bias_act.h"

namespace sg::kernels::cuda {

// The same parameters as the CPU kernels (kernels/cpu/bias_act.h).
using cpu::BiasActKind;
using cpu::BiasActParams;

// y = forward(x, b); all pointers on the device.
template <class T>
void bias_act_forward(const BiasActParams& p, int64_t outer, int64_t C, int64_t inner, const T* x, const T* b, T* y);

// n elements: dx = dy * gain * act'(y) * (|y| < clamp).
template <class T>
void bias_act_grad(const BiasActParams& p, int64_t n, const T* dy, const T* y, T* dx);

}  // namespace sg::kernels::cuda
