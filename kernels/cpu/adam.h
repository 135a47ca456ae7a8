// Adam on the CPU: one fused pass over (param, grad, exp_avg, exp_avg_sq), in place.
//
// Formula (torch.optim.Adam, no weight decay, no amsgrad; t = this parameter's step count,
// already incremented):
//   m <- beta1 * m + (1 - beta1) * g
//   v <- beta2 * v + (1 - beta2) * g * g
//   p <- p - step_size * m / (sqrt(v) / bc2_sqrt + eps)
//   with step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t)
// and g optionally nan_to_num(g) (AdamStepParams::nan_to_num).
// The caller computes step_size and bc2_sqrt in double (AdamStepParams::make).
//
// Layout: four contiguous buffers of n elements of the same type (float or double); p, m and
// v are read and written, g only read. No aliasing between them.
//
// Variants: float, double; adam_step, one tensor; adam_step_multi, many tensors (each with its
// own constants: step counts differ where a gradient was missing) as one index space cut into
// one contiguous share per thread (kernels/cpu/parallel.h), so a network of many small
// parameters (the main job's G and D: 319,000 and 375,000 elements, no tensor over 2^16) is
// updated on every thread instead of one tensor at a time on one. Simd over elements.
//
// Benchmark: no CPU benchmark yet (memory bound: 4 reads + 3 writes per element).
#pragma once
#include <cstdint>
#include <vector>

namespace sg::kernels::cpu {

struct AdamStepParams {
  double beta1 = 0.0, beta2 = 0.99, eps = 1e-8;
  double step_size = 0.002;  // lr / (1 - beta1^t)
  double bc2_sqrt = 1.0;     // sqrt(1 - beta2^t)
  // With nan_to_num, each gradient element is read as nan_to_num(g, nan, posinf, neginf)
  // (kernels/elementwise.h NanToNum): StyleGAN2-ADA sanitises its gradients before the step, and
  // this does it without a pass of its own. The same bits as sanitising first.
  bool nan_to_num = false;
  double nan = 0.0, posinf = 0.0, neginf = 0.0;
  // The bias-corrected scalars for step t (1-based) of a parameter.
  static AdamStepParams make(double lr, double beta1, double beta2, double eps, int64_t t);
};

template <class T>
void adam_step(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, const AdamStepParams& p);

// One tensor of a multi-tensor step (also the CUDA backend's, kernels/cuda/adam.h).
template <class T>
struct AdamTensor {
  int64_t n = 0;
  T* param = nullptr;
  const T* grad = nullptr;
  T* exp_avg = nullptr;
  T* exp_avg_sq = nullptr;
  AdamStepParams p;  // this tensor's constants
};

template <class T>
void adam_step_multi(const std::vector<AdamTensor<T>>& tensors);

}  // namespace sg::kernels::cpu
