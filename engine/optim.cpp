#include "engine/optim.h"

#include <cmath>
#include <map>
#include <set>
#include <type_traits>
#include <vector>

#include "engine/autograd.h"
#include "kernels/cpu/adam.h"
#include "kernels/cuda/adam.h"

namespace sg {

Adam::Adam(std::vector<std::pair<std::string, Tensor>> named_params, AdamConfig c)
    : params_(std::move(named_params)), config_(c) {
  std::set<std::string> seen;
  slots_.reserve(params_.size());
  for (auto& [name, p] : params_) {
    SG_CHECK(!name.empty(), "Adam", "parameter names must be non-empty");
    SG_CHECK(name != "step", "Adam", "'step' is reserved for the step counter");
    SG_CHECK(seen.insert(name).second, "Adam", "duplicate parameter name '", name, "'");
    SG_CHECK(p.defined(), "Adam", "parameter '", name, "' is undefined");
    SG_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, "Adam", "parameter '", name,
             "' has unsupported dtype ", p.dtype());
    Slot s;
    s.exp_avg = zeros(p.shape(), p.dtype(), p.device());
    s.exp_avg_sq = zeros(p.shape(), p.dtype(), p.device());
    slots_.push_back(std::move(s));
  }
}

void Adam::step() {
  SG_CHECK(std::isfinite(config_.lr) && config_.beta1 >= 0 && config_.beta1 < 1 && config_.beta2 >= 0 &&
               config_.beta2 < 1 && config_.eps >= 0,
           "Adam::step", "invalid config lr=", config_.lr, " beta1=", config_.beta1, " beta2=", config_.beta2,
           " eps=", config_.eps);
  autograd::NoGradGuard no_grad;
  // Check everything first, so a bad gradient changes nothing.
  std::vector<Tensor> grads(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    SG_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(), "Adam::step",
             "gradient of '", name, "' is ", g.str(), " but the parameter is ", p.str());
    grads[i] = g;
  }
  // Every tensor of a device and dtype in one multi-tensor step: on CUDA one launch per
  // kernels::cuda::kAdamMultiMax tensors, not one per parameter; on the CPU one parallel pass
  // over all of them (kernels/cpu/adam.h), not one single-threaded pass per small tensor.
  std::vector<kernels::cpu::AdamTensor<float>> cpu_f32, cuda_f32;
  std::vector<kernels::cpu::AdamTensor<double>> cpu_f64, cuda_f64;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!grads[i].defined()) continue;
    const Tensor& p = params_[i].second;
    Slot& s = slots_[i];
    s.step += 1;
    auto prm = kernels::cpu::AdamStepParams::make(config_.lr, config_.beta1, config_.beta2, config_.eps, s.step);
    prm.nan_to_num = config_.grad_nan_to_num;
    prm.nan = config_.grad_nan, prm.posinf = config_.grad_posinf, prm.neginf = config_.grad_neginf;
    const bool cuda = p.device().type == DeviceType::cuda;
    dispatch_dtype(p.dtype(), [&]<class T>() {
      kernels::cpu::AdamTensor<T> x;
      x.n = p.numel(), x.param = p.data<T>(), x.grad = grads[i].data<T>();
      x.exp_avg = s.exp_avg.data<T>(), x.exp_avg_sq = s.exp_avg_sq.data<T>(), x.p = prm;
      if constexpr (std::is_same_v<T, float>)
        (cuda ? cuda_f32 : cpu_f32).push_back(x);
      else
        (cuda ? cuda_f64 : cpu_f64).push_back(x);
    });
  }
  if (!cpu_f32.empty()) kernels::cpu::adam_step_multi<float>(cpu_f32);
  if (!cpu_f64.empty()) kernels::cpu::adam_step_multi<double>(cpu_f64);
#ifdef SG_HAVE_CUDA
  if (!cuda_f32.empty()) kernels::cuda::adam_step_multi<float>(cuda_f32);
  if (!cuda_f64.empty()) kernels::cuda::adam_step_multi<double>(cuda_f64);
#endif
  step_count_ += 1;
}

void Adam::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

std::vector<std::pair<std::string, Tensor>> Adam::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(3 * params_.size() + 1);
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i].first;
    out.emplace_back(name + ".exp_avg", slots_[i].exp_avg.detach().clone());
    out.emplace_back(name + ".exp_avg_sq", slots_[i].exp_avg_sq.detach().clone());
    out.emplace_back(name + ".step", scalar((double)slots_[i].step, DType::f64));
  }
  out.emplace_back("step", scalar((double)step_count_, DType::f64));
  return out;
}

void Adam::load_state(const std::vector<std::pair<std::string, Tensor>>& s) {
  autograd::NoGradGuard no_grad;
  std::map<std::string, Tensor> by_name;
  for (const auto& [k, v] : s) by_name[k] = v;
  auto find = [&](const std::string& key) -> const Tensor* {
    auto it = by_name.find(key);
    return it == by_name.end() || !it->second.defined() ? nullptr : &it->second;
  };
  auto read_count = [&](const Tensor& t, const std::string& key) -> int64_t {
    SG_CHECK(t.numel() == 1, "Adam::load_state", "'", key, "' must hold one number, got ", t.str());
    const double v = t.item();
    SG_CHECK(std::isfinite(v) && v >= 0 && v == std::floor(v), "Adam::load_state", "'", key,
             "' is not a step count: ", v);
    return (int64_t)v;
  };
  const Tensor* step_t = find("step");
  SG_CHECK(step_t, "Adam::load_state", "missing 'step'");
  const int64_t step_count = read_count(*step_t, "step");

  std::vector<Slot> loaded(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    for (int which = 0; which < 2; ++which) {
      const std::string key = name + (which == 0 ? ".exp_avg" : ".exp_avg_sq");
      const Tensor* t = find(key);
      SG_CHECK(t, "Adam::load_state", "missing '", key, "'");
      SG_CHECK(t->shape() == p.shape(), "Adam::load_state", "'", key, "' has shape ", shape_str(t->shape()),
               " but parameter '", name, "' has shape ", shape_str(p.shape()));
      Tensor v = t->detach().to(p.dtype()).to(p.device()).clone();
      (which == 0 ? loaded[i].exp_avg : loaded[i].exp_avg_sq) = v;
    }
    const Tensor* st = find(name + ".step");
    loaded[i].step = st ? read_count(*st, name + ".step") : step_count;
  }
  slots_ = std::move(loaded);
  step_count_ = step_count;
}

}  // namespace sg
