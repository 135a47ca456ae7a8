#include "kernels/cpu/adam.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/parallel.h"
#include "kernels/elementwise.h"

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

namespace {

constexpr int64_t kParallelGrain = 1 << 16;  // elements; below this one thread does it all

// Elements [b, e) of one tensor; kSanitize: g through NanToNum.
template <class T, bool kSanitize>
void adam_range(const AdamTensor<T>& x, int64_t b, int64_t e) {
  T* __restrict param = x.param;
  const T* __restrict grad = x.grad;
  T* __restrict exp_avg = x.exp_avg;
  T* __restrict exp_avg_sq = x.exp_avg_sq;
  const T beta1 = (T)x.p.beta1, one_minus_beta1 = (T)(1.0 - x.p.beta1);
  const T beta2 = (T)x.p.beta2, one_minus_beta2 = (T)(1.0 - x.p.beta2);
  const T eps = (T)x.p.eps, neg_step_size = (T)(-x.p.step_size), bc2_sqrt = (T)x.p.bc2_sqrt;
  const NanToNum sanitize{x.p.nan, x.p.posinf, x.p.neginf};
#pragma omp simd
  for (int64_t i = b; i < e; ++i) {
    const T g = kSanitize ? sanitize(grad[i]) : grad[i];
    const T m = exp_avg[i] * beta1 + g * one_minus_beta1;
    const T v = exp_avg_sq[i] * beta2 + g * g * one_minus_beta2;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const T denom = std::sqrt(v) / bc2_sqrt + eps;
    param[i] = param[i] + neg_step_size * (m / denom);
  }
}

}  // namespace

template <class T>
void adam_step(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, const AdamStepParams& p) {
  adam_step_multi<T>({AdamTensor<T>{n, param, grad, exp_avg, exp_avg_sq, p}});
}

template <class T>
void adam_step_multi(const std::vector<AdamTensor<T>>& tensors) {
  int64_t total = 0;
  for (const AdamTensor<T>& x : tensors) total += std::max<int64_t>(x.n, 0);
  // Thread t takes elements [b, e) of the tensors laid end to end.
  parallel_for(total, total > kParallelGrain, [&](int64_t b, int64_t e) {
    int64_t start = 0;  // of the current tensor in the joined index space
    for (const AdamTensor<T>& x : tensors) {
      if (x.n <= 0) continue;
      const int64_t lo = std::max(b, start), hi = std::min(e, start + x.n);
      if (lo < hi) (x.p.nan_to_num ? adam_range<T, true> : adam_range<T, false>)(x, lo - start, hi - start);
      start += x.n;
      if (start >= e) break;
    }
  });
}

template void adam_step<float>(int64_t, float*, const float*, float*, float*, const AdamStepParams&);
template void adam_step<double>(int64_t, double*, const double*, double*, double*, const AdamStepParams&);
template void adam_step_multi<float>(const std::vector<AdamTensor<float>>&);
template void adam_step_multi<double>(const std::vector<AdamTensor<double>>&);

}  // namespace sg::kernels::cpu
