// bias_act on the CPU: bias, activation, gain and clamp in one pass, and its gradient.
//
// Formula and parameters: kernels/bias_act.h (shared with the CUDA kernels).
//
// Layout: x, y, dy, dx contiguous, viewed as [outer, C, inner]; b has C elements (nullptr:
// no bias). For a bias along dim d of shape s: outer = prod(s[:d]), C = s[d],
// inner = prod(s[d+1:]).
//
// Variants: forward (bias_act_forward), first derivative (bias_act_grad). Both are
// elementwise, threads + simd over elements.
//
// Benchmark: no CPU benchmark yet. (study/bias_act.cu uses this kernel as the reference
// for the CUDA versions; it does not time it.)
#pragma once
#include <cstdint>

#include "kernels/bias_act.h"

namespace sg::kernels::cpu {

template <class T>
void bias_act_forward(const BiasActParams& p, int64_t outer, int64_t C, int64_t inner, const T* x, const T* b, T* y);

// n elements.
template <class T>
void bias_act_grad(const BiasActParams& p, int64_t n, const T* dy, const T* y, T* dx);

}  // namespace sg::kernels::cpu
