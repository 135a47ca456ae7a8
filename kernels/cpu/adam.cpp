#include "kernels/cpu/adam.h"

#include <cmath>

#include "kernels/cpu/parallel.h"

namespace sg::kernels::cpu {

AdamStepParams AdamStepParams::make(double lr, double beta1, double beta2, double eps, int64_t t) {
  AdamStepParams p;
  p.beta1 = beta1;
  p.beta2 = beta2;
  p.eps = eps;
  const double bc1 = 1.0 - std::pow(beta1, (double)t);
  const double bc2 = 1.0 - std::pow(beta2, (double)t);
  p.step_size = lr / bc1;
  p.bc2_sqrt = std::sqrt(bc2);
  return p;
}

template <class T>
void adam_step(int64_t n, T* __restrict param, const T* __restrict grad, T* __restrict exp_avg,
               T* __restrict exp_avg_sq, const AdamStepParams& p) {
  const T beta1 = (T)p.beta1, one_minus_beta1 = (T)(1.0 - p.beta1);
  const T beta2 = (T)p.beta2, one_minus_beta2 = (T)(1.0 - p.beta2);
  const T eps = (T)p.eps, neg_step_size = (T)(-p.step_size), bc2_sqrt = (T)p.bc2_sqrt;
  parallel_for(n, n > (1 << 16), [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      const T g = grad[i];
      const T m = exp_avg[i] * beta1 + g * one_minus_beta1;
      const T v = exp_avg_sq[i] * beta2 + g * g * one_minus_beta2;
      exp_avg[i] = m;
      exp_avg_sq[i] = v;
      const T denom = std::sqrt(v) / bc2_sqrt + eps;
      param[i] = param[i] + neg_step_size * (m / denom);
    }
  });
}

template void adam_step<float>(int64_t, float*, const float*, float*, float*, const AdamStepParams&);
template void adam_step<double>(int64_t, double*, const double*, double*, double*, const AdamStepParams&);

}  // namespace sg::kernels::cpu
