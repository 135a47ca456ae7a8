// Finite-difference checks of first and second derivatives, used by the op table.
//
// gradcheck: for a random cotangent v, compares the analytic vector-Jacobian product
//   (J^T v)_j = d<f(x), v>/dx_j      (one backward pass)
// with central differences (<f(x + eps e_j), v> - <f(x - eps e_j), v>) / 2 eps for EVERY
// input element j. gradgradcheck applies the same check to the function
//   (x, v) -> <grad(f, x, v, create_graph=true), u>
// so it tests the backward's own derivatives in x and in v. f64, eps 1e-6,
// |analytic - numeric| <= atol + rtol * |numeric| with atol 1e-5, rtol 1e-3.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/ops.h"

namespace sgtest {

using Fn = std::function<sg::Tensor(const std::vector<sg::Tensor>&)>;

struct CheckResult {
  bool ok = true;
  double worst = 0;     // largest |a - n| - (atol + rtol |n|)
  std::string detail;   // first failing element, described
  int64_t checked = 0;  // elements compared
};

struct Tolerance {
  double eps = 1e-6, atol = 1e-5, rtol = 1e-3;
};

// inputs: f64 CPU tensors; diff[i] says whether input i is differentiated.
CheckResult gradcheck(const Fn& f, const std::vector<sg::Tensor>& inputs, const std::vector<bool>& diff, uint64_t seed,
                      Tolerance tol = {});
CheckResult gradgradcheck(const Fn& f, const std::vector<sg::Tensor>& inputs, const std::vector<bool>& diff,
                          uint64_t seed, Tolerance tol = {});

// max |a - b| / max(max |b|, 1e-12)
double max_rel_error(const sg::Tensor& a, const sg::Tensor& b);

}  // namespace sgtest
