// bias_act on the CPU: see bias_act.h for the formula, layout, variants and benchmark.
#include "kernels/cpu/bias_act.h"

#include <algorithm>

namespace sg::kernels::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;

template <class T, BiasActKind K, bool kClamp>
void forward_impl(const BiasActParams& p, int64_t outer, int64_t C, int64_t inner, const T* x, const T* b, T* y) {
  const T alpha = (T)p.alpha, gain = (T)p.gain, clamp = (T)p.clamp;
  const int64_t rows = outer * C;
#pragma omp parallel for schedule(static) if (rows * inner > kGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T bias = b ? b[r % C] : T(0);
    const T* xr = x + r * inner;
    T* yr = y + r * inner;
#pragma omp simd
    for (int64_t i = 0; i < inner; ++i) {
      T v = xr[i] + bias;
      if constexpr (K == BiasActKind::relu) v = v > T(0) ? v : T(0);
      if constexpr (K == BiasActKind::lrelu) v = v > T(0) ? v : v * alpha;
      v *= gain;
      if constexpr (kClamp) v = std::min(std::max(v, -clamp), clamp);
      yr[i] = v;
    }
  }
}

template <class T, BiasActKind K, bool kClamp>
void grad_impl(const BiasActParams& p, int64_t n, const T* dy, const T* y, T* dx) {
  const T alpha = (T)p.alpha, gain = (T)p.gain, clamp = (T)p.clamp;
#pragma omp parallel for simd schedule(static) if (n > kGrain)
  for (int64_t i = 0; i < n; ++i) {
    const T yi = y[i];
    T d = gain;
    if constexpr (K == BiasActKind::relu) d = yi > T(0) ? d : T(0);
    if constexpr (K == BiasActKind::lrelu) d = yi > T(0) ? d : d * alpha;
    if constexpr (kClamp) d = (yi < clamp && yi > -clamp) ? d : T(0);
    dx[i] = dy[i] * d;
  }
}

// Calls f.template operator()<K, clamp>() for the runtime (act, clamp) pair.
template <class F>
void dispatch(const BiasActParams& p, F&& f) {
  const bool c = p.clamp >= 0;
  switch (p.act) {
    case BiasActKind::linear:
      c ? f.template operator()<BiasActKind::linear, true>() : f.template operator()<BiasActKind::linear, false>();
      break;
    case BiasActKind::relu:
      c ? f.template operator()<BiasActKind::relu, true>() : f.template operator()<BiasActKind::relu, false>();
      break;
    case BiasActKind::lrelu:
      c ? f.template operator()<BiasActKind::lrelu, true>() : f.template operator()<BiasActKind::lrelu, false>();
      break;
  }
}
}  // namespace

template <class T>
void bias_act_forward(const BiasActParams& p, int64_t outer, int64_t C, int64_t inner, const T* x, const T* b, T* y) {
  dispatch(p, [&]<BiasActKind K, bool kClamp>() { forward_impl<T, K, kClamp>(p, outer, C, inner, x, b, y); });
}

template <class T>
void bias_act_grad(const BiasActParams& p, int64_t n, const T* dy, const T* y, T* dx) {
  dispatch(p, [&]<BiasActKind K, bool kClamp>() { grad_impl<T, K, kClamp>(p, n, dy, y, dx); });
}

template void bias_act_forward<float>(const BiasActParams&, int64_t, int64_t, int64_t, const float*, const float*,
                                      float*);
template void bias_act_forward<double>(const BiasActParams&, int64_t, int64_t, int64_t, const double*, const double*,
                                       double*);
template void bias_act_grad<float>(const BiasActParams&, int64_t, const float*, const float*, float*);
template void bias_act_grad<double>(const BiasActParams&, int64_t, const double*, const double*, double*);

}  // namespace sg::kernels::cpu
