// bias_act's parameters and per-element math, shared by the CPU kernels
// (kernels/cpu/bias_act.h) and the CUDA kernels (kernels/cuda/bias_act.h), which differ only in
// how they walk the elements.
//
// Formula.
//   forward: y = clamp(act(x + b[c]) * gain, -clamp, clamp)      (clamp < 0: no clamping)
//   grad:    dx = dy * gain * act'(y) * (|y| < clamp)             (the mask only when clamping)
// act: linear (act' = 1), relu (act' = [y > 0]), lrelu(alpha) (act' = 1 if y > 0 else alpha).
// The gradient reads the forward's output y, not x: for gain > 0 and alpha >= 0, y > 0 iff
// x + b > 0, and |y| < clamp iff the clamp did not bite.
#pragma once
#include <type_traits>

#include "kernels/elementwise.h"

namespace sg::kernels {

enum class BiasActKind { linear, relu, lrelu };

struct BiasActParams {
  BiasActKind act = BiasActKind::linear;
  double alpha = 0.2;   // lrelu slope for negative inputs
  double gain = 1.0;    // > 0
  double clamp = -1.0;  // < 0: none
};

// The math of one element for activation K, with or without the clamp; the parameters in T.
template <class T, BiasActKind K, bool kClamp>
struct BiasAct {
  T alpha, gain, clamp;
  explicit BiasAct(const BiasActParams& p) : alpha((T)p.alpha), gain((T)p.gain), clamp((T)(kClamp ? p.clamp : 0.0)) {}

  // y from v = x + b.
  SG_HD T forward(T v) const {
    if constexpr (K == BiasActKind::relu) v = v > T(0) ? v : T(0);
    if constexpr (K == BiasActKind::lrelu) v = v > T(0) ? v : v * alpha;
    v *= gain;
    if constexpr (kClamp) v = m_min(m_max(v, -clamp), clamp);  // NaN passes through
    return v;
  }
  // dx / dy at the output y.
  SG_HD T slope(T y) const {
    T d = gain;
    if constexpr (K == BiasActKind::relu) d = y > T(0) ? d : T(0);
    if constexpr (K == BiasActKind::lrelu) d = y > T(0) ? d : d * alpha;
    if constexpr (kClamp) d = (y < clamp && y > -clamp) ? d : T(0);
    return d;
  }
};

// Calls f(kind, clamp) with the runtime (act, clamp) pair as compile-time tags
// (std::integral_constant; decltype(kind)::value is the BiasActKind), so each kernel is
// compiled once per activation, with no per-element branch on it. (Tags rather than a
// template lambda: the .cu files are C++17.)
template <class F>
void dispatch_bias_act(const BiasActParams& p, F&& f) {
  using std::false_type, std::true_type;
  auto run = [&](auto kind) { p.clamp >= 0 ? f(kind, true_type{}) : f(kind, false_type{}); };
  switch (p.act) {
    case BiasActKind::linear:
      return run(std::integral_constant<BiasActKind, BiasActKind::linear>{});
    case BiasActKind::relu:
      return run(std::integral_constant<BiasActKind, BiasActKind::relu>{});
    case BiasActKind::lrelu:
      return run(std::integral_constant<BiasActKind, BiasActKind::lrelu>{});
  }
}

}  // namespace sg::kernels
