// Adam, as torch.optim.Adam (no weight decay, no amsgrad), with StyleGAN2's defaults
// (beta1 = 0, beta2 = 0.99).
//
// Each parameter keeps its own step count, as torch does: a parameter whose .grad is
// undefined at a step() is skipped entirely (no moment update, its step count stays), so
// bias correction matches torch exactly even when some parameters get no gradient.
// The update itself is one fused pass over (param, grad, exp_avg, exp_avg_sq) in
// kernels/cpu/adam.h, writing the parameter's storage in place under no-grad.
//
// state() / load_state() give everything needed to resume exactly: "<name>.exp_avg",
// "<name>.exp_avg_sq" (the parameter's shape and dtype), "<name>.step" (scalar f64, that
// parameter's step count) and "step" (scalar f64, the number of step() calls). A state
// without "<name>.step" entries loads with every parameter's count set to "step".
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace sg {

struct AdamConfig {
  double lr = 0.002, beta1 = 0.0, beta2 = 0.99, eps = 1e-8;
  // grad_nan_to_num: the step reads each gradient as nan_to_num(g, grad_nan, grad_posinf,
  // grad_neginf), as StyleGAN2-ADA sanitises its gradients before its optimizer step: the bits
  // of calling nan_to_num on every .grad first, without that pass. Off by default.
  bool grad_nan_to_num = false;
  double grad_nan = 0.0, grad_posinf = 1e5, grad_neginf = -1e5;
};

class Adam {
 public:
  // Parameters: defined, unique non-empty names, f32 or f64. They are held by handle: the
  // optimizer updates the same storage the model uses.
  Adam(std::vector<std::pair<std::string, Tensor>> named_params, AdamConfig c = {});

  // One update of every parameter that has a .grad (same shape, dtype, device).
  void step();
  // Drops every parameter's .grad.
  void zero_grad();

  AdamConfig& config() { return config_; }
  const AdamConfig& config() const { return config_; }
  int64_t step_count() const { return step_count_; }
  const std::vector<std::pair<std::string, Tensor>>& params() const { return params_; }

  // Copies of the moments (so later steps do not change a saved state).
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Copies values in (converted to each parameter's dtype and device). sg::Error naming the
  // entry on a missing name or a shape mismatch; nothing is changed then.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& s);

 private:
  struct Slot {
    Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<Slot> slots_;
  AdamConfig config_;
  int64_t step_count_ = 0;
};

}  // namespace sg
