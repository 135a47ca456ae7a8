#include "gradcheck.h"

#include <cmath>
#include <sstream>

namespace sgtest {
using sg::Tensor;

namespace {

std::vector<Tensor> leaves_of(const std::vector<Tensor>& inputs, const std::vector<bool>& diff) {
  std::vector<Tensor> r;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor t = inputs[i].detach();
    if (diff[i]) t.set_requires_grad(true);
    r.push_back(t);
  }
  return r;
}

// The scalar function and its analytic gradients, given leaves.
using Scalar = std::function<Tensor(const std::vector<Tensor>&)>;

CheckResult check_scalar(const Scalar& h, const std::vector<Tensor>& leaves, const std::vector<bool>& diff,
                         Tolerance tol) {
  CheckResult res;
  std::vector<Tensor> wrt;
  for (size_t i = 0; i < leaves.size(); ++i)
    if (diff[i]) wrt.push_back(leaves[i]);
  Tensor out = h(leaves);
  std::vector<Tensor> analytic;
  if (out.requires_grad())
    analytic = sg::autograd::grad({out}, wrt, {}, false, true);
  else
    analytic.resize(wrt.size());
  size_t k = 0;
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!diff[i]) continue;
    Tensor x = leaves[i];
    std::vector<double> a = analytic[k].defined() ? analytic[k].to_vector() : std::vector<double>(x.numel(), 0.0);
    double* p = x.data<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double orig = p[j];
      double fp, fm;
      {
        sg::NoGradGuard ng;  // h may still differentiate internally (it enables grad itself)
        p[j] = orig + tol.eps;
        fp = h(leaves).item();
        p[j] = orig - tol.eps;
        fm = h(leaves).item();
        p[j] = orig;
      }
      const double num = (fp - fm) / (2 * tol.eps);
      const double excess = std::abs(a[j] - num) - (tol.atol + tol.rtol * std::abs(num));
      res.checked++;
      if (excess > res.worst) res.worst = excess;
      if (excess > 0 && res.ok) {
        res.ok = false;
        std::ostringstream os;
        os << "input " << i << " " << x.str() << " element " << j << ": analytic " << a[j] << " numeric " << num;
        res.detail = os.str();
      }
    }
    ++k;
  }
  return res;
}

}  // namespace

CheckResult gradcheck(const Fn& f, const std::vector<Tensor>& inputs, const std::vector<bool>& diff, uint64_t seed,
                      Tolerance tol) {
  std::vector<Tensor> leaves = leaves_of(inputs, diff);
  Tensor y0;
  {
    sg::NoGradGuard ng;
    y0 = f(leaves);
  }
  sg::Rng g(seed);
  Tensor v = sg::randn(y0.shape(), g, sg::DType::f64);
  auto h = [&](const std::vector<Tensor>& xs) { return sg::sum(sg::mul(f(xs), v)); };
  return check_scalar(h, leaves, diff, tol);
}

CheckResult gradgradcheck(const Fn& f, const std::vector<Tensor>& inputs, const std::vector<bool>& diff, uint64_t seed,
                          Tolerance tol) {
  std::vector<Tensor> leaves = leaves_of(inputs, diff);
  Tensor y0;
  {
    sg::NoGradGuard ng;
    y0 = f(leaves);
  }
  sg::Rng g(seed);
  Tensor v = sg::randn(y0.shape(), g, sg::DType::f64).set_requires_grad(true);
  std::vector<Tensor> us;
  for (size_t i = 0; i < leaves.size(); ++i)
    us.push_back(diff[i] ? sg::randn(leaves[i].shape(), g, sg::DType::f64) : Tensor());
  // h(x, v) = sum_i <grad_i(f, x, v), u_i>; its inputs are the leaves plus v.
  std::vector<Tensor> all = leaves;
  all.push_back(v);
  std::vector<bool> all_diff = diff;
  all_diff.push_back(true);
  auto h = [&](const std::vector<Tensor>& xs) {
    sg::autograd::EnableGradGuard on(true);
    std::vector<Tensor> ins(xs.begin(), xs.end() - 1), wrt;
    for (size_t i = 0; i < ins.size(); ++i)
      if (diff[i]) wrt.push_back(ins[i]);
    Tensor y = f(ins);
    Tensor total = sg::scalar(0.0, sg::DType::f64);
    if (!y.requires_grad()) return total;
    auto grads = sg::autograd::grad({y}, wrt, {xs.back()}, true, true);
    size_t k = 0;
    for (size_t i = 0; i < ins.size(); ++i) {
      if (!diff[i]) continue;
      if (grads[k].defined()) total = sg::add(total, sg::sum(sg::mul(grads[k], us[i])));
      ++k;
    }
    return total;
  };
  // Numeric evaluations must not leak graphs into the analytic pass: h builds its own.
  return check_scalar(h, all, all_diff, tol);
}

double max_rel_error(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector(), y = b.to_vector();
  if (x.size() != y.size()) return INFINITY;
  double m = 0, d = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    m = std::max(m, std::abs(y[i]));
    d = std::max(d, std::abs(x[i] - y[i]));
  }
  return d / std::max(m, 1e-12);
}

}  // namespace sgtest
