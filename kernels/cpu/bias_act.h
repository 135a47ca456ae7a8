// bias_act on the CPU: bias, activation, gain and clamp in one pass, and its gradient.
//
// Formula.
//   forward: y = clamp(act(x + b[c]) * gain, -clamp, clamp)      (clamp < 0: no clamping)
//   grad:    dx = dy * gain * act'(y) * (|y| < clamp)             (the mask only when clamping)
// act: linear (act' = 1), relu (act' = [y > 0]), lrelu(alpha) (act' = 1 if y > 0 else alpha).
// The gradient reads the forward's output y, not x: for gain > 0 and alpha >= 0, y > 0 iff
// x + b > 0, and |y| < clamp iff the clamp did not bite. Its derivative in y is zero almost
// everywhere, so the gradient is linear in dy and is its own backward (double backward).
//
// Layout: x, y, dy, dx contiguous, viewed as [outer, C, inner]; b has C elements (nullptr:
// no bias). For a bias along dim d of shape s: outer = prod(s[:d]), C = s[d],
// inner = prod(s[d+1:]).
//
// Variants: forward (bias_act_forward), first derivative (bias_act_grad). Both are
// elementwise, OpenMP + simd over elements.
//
// Benchmark: no CPU benchmark yet. (study/bias_act.cu uses this kernel as the reference
// for the CUDA versions; it does not time it.)
#pragma once
#include <cstdint>

namespace sg::kernels::cpu {

enum class BiasActKind { linear, relu, lrelu };

struct BiasActParams {
  BiasActKind act = BiasActKind::linear;
  double alpha = 0.2;   // lrelu slope for negative inputs
  double gain = 1.0;    // > 0
  double clamp = -1.0;  // < 0: none
};

template <class T>
void bias_act_forward(const BiasActParams& p, int64_t outer, int64_t C, int64_t inner, const T* x, const T* b, T* y);

// n elements.
template <class T>
void bias_act_grad(const BiasActParams& p, int64_t n, const T* dy, const T* y, T* dx);

}  // namespace sg::kernels::cpu
