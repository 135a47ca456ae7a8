// bias_act on the CPU: see bias_act.h for the formula, layout, variants and benchmark.
#include "kernels/cpu/bias_act.h"
#include "kernels/cpu/loops.h"

namespace sg::kernels::cpu {

namespace {
constexpr int64_t kGrain = kParallelGrain;  // kernels/cpu/loops.h: measured for passive waiting

template <class T, BiasActKind K, bool kClamp>
void forward_impl(const BiasActParams& p, int64_t outer, int64_t C, int64_t inner, const T* x, const T* b, T* y) {
  const BiasAct<T, K, kClamp> act(p);
  const int64_t rows = outer * C;
  parallel_for(rows, rows * inner > kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T bias = b ? b[r % C] : T(0);
      const T* xr = x + r * inner;
      T* yr = y + r * inner;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) yr[i] = act.forward(xr[i] + bias);
    }
  });
}

template <class T, BiasActKind K, bool kClamp>
void grad_impl(const BiasActParams& p, int64_t n, const T* dy, const T* y, T* dx) {
  const BiasAct<T, K, kClamp> act(p);
  elementwise(n, [&](int64_t i) { dx[i] = dy[i] * act.slope(y[i]); });
}
}  // namespace

template <class T>
void bias_act_forward(const BiasActParams& p, int64_t outer, int64_t C, int64_t inner, const T* x, const T* b, T* y) {
  dispatch_bias_act(p, [&](auto K, auto kClamp) {
    forward_impl<T, decltype(K)::value, decltype(kClamp)::value>(p, outer, C, inner, x, b, y);
  });
}

template <class T>
void bias_act_grad(const BiasActParams& p, int64_t n, const T* dy, const T* y, T* dx) {
  dispatch_bias_act(
      p, [&](auto K, auto kClamp) { grad_impl<T, decltype(K)::value, decltype(kClamp)::value>(p, n, dy, y, dx); });
}

template void bias_act_forward<float>(const BiasActParams&, int64_t, int64_t, int64_t, const float*, const float*,
                                      float*);
template void bias_act_forward<double>(const BiasActParams&, int64_t, int64_t, int64_t, const double*, const double*,
                                       double*);
template void bias_act_grad<float>(const BiasActParams&, int64_t, const float*, const float*, float*);
template void bias_act_grad<double>(const BiasActParams&, int64_t, const double*, const double*, double*);

}  // namespace sg::kernels::cpu
