// Elementwise ops with numpy broadcasting: each runs one functor of kernels/elementwise.h
// (pointwise / pointwise2 in engine/ops/common.h) and records its rule from
// engine/derivatives.cpp.
#include <functional>
#include <limits>

#include "engine/derivatives.h"
#include "engine/ops/common.h"

namespace sg {
using autograd::record;
using autograd::record_with_output;
using ops::pointwise;
using ops::pointwise2;
namespace k = kernels;

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = pointwise2("add", a, b, k::Add{});
  record("add", {a, b}, {y}, std::bind_front(derivatives::add, a.shape(), b.shape()));
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = pointwise2("sub", a, b, k::Sub{});
  record("sub", {a, b}, {y}, std::bind_front(derivatives::sub, a.shape(), b.shape()));
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = pointwise2("mul", a, b, k::Mul{});
  record("mul", {a, b}, {y}, std::bind_front(derivatives::mul, a, b));
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = pointwise2("div", a, b, k::Div{});
  record("div", {a, b}, {y}, std::bind_front(derivatives::div, a, b));
  return y;
}

Tensor add(const Tensor& a, double s) {
  Tensor y = pointwise("add", a, k::AddScalar{s});
  record("add_scalar", {a}, {y}, derivatives::add_scalar);
  return y;
}

Tensor mul(const Tensor& a, double s) {
  Tensor y = pointwise("mul", a, k::MulScalar{s});
  record("mul_scalar", {a}, {y}, std::bind_front(derivatives::mul_scalar, s));
  return y;
}

Tensor neg(const Tensor& a) {
  Tensor y = pointwise("neg", a, k::Neg{});
  record("neg", {a}, {y}, derivatives::neg);
  return y;
}

Tensor exp(const Tensor& a) {
  Tensor y = pointwise("exp", a, k::Exp{});
  record_with_output("exp", {a}, y, derivatives::exp);
  return y;
}

Tensor log(const Tensor& a) {
  Tensor y = pointwise("log", a, k::Log{});
  record("log", {a}, {y}, std::bind_front(derivatives::log, a));
  return y;
}

Tensor sqrt(const Tensor& a) {
  Tensor y = pointwise("sqrt", a, k::Sqrt{});
  record_with_output("sqrt", {a}, y, derivatives::sqrt);
  return y;
}

Tensor rsqrt(const Tensor& a) {
  Tensor y = pointwise("rsqrt", a, k::Rsqrt{});
  record_with_output("rsqrt", {a}, y, derivatives::rsqrt);
  return y;
}

Tensor pow(const Tensor& a, double p) {
  Tensor y = pointwise("pow", a, k::Pow{p});
  record("pow", {a}, {y}, std::bind_front(derivatives::pow, a, p));
  return y;
}

Tensor square(const Tensor& a) {
  Tensor y = pointwise("square", a, k::Square{});
  record("square", {a}, {y}, std::bind_front(derivatives::square, a));
  return y;
}

Tensor sign(const Tensor& a) { return pointwise("sign", a, k::Sign{}); }

Tensor abs(const Tensor& a) {
  Tensor y = pointwise("abs", a, k::Abs{});
  record("abs", {a}, {y}, std::bind_front(derivatives::abs, a));
  return y;
}

Tensor tanh(const Tensor& a) {
  Tensor y = pointwise("tanh", a, k::Tanh{});
  record_with_output("tanh", {a}, y, derivatives::tanh);
  return y;
}

Tensor sigmoid(const Tensor& a) {
  Tensor y = pointwise("sigmoid", a, k::Sigmoid{});
  record_with_output("sigmoid", {a}, y, derivatives::sigmoid);
  return y;
}

Tensor softplus(const Tensor& a) {
  Tensor y = pointwise("softplus", a, k::Softplus{});
  record("softplus", {a}, {y}, std::bind_front(derivatives::softplus, a));
  return y;
}

Tensor softsign(const Tensor& a) {
  Tensor y = pointwise("softsign", a, k::Softsign{});
  record("softsign", {a}, {y}, std::bind_front(derivatives::softsign, a));
  return y;
}

Tensor leaky_relu(const Tensor& a, double alpha) {
  Tensor y = pointwise("leaky_relu", a, k::LeakyRelu{alpha});
  record("leaky_relu", {a}, {y}, std::bind_front(derivatives::leaky_relu, a, alpha));
  return y;
}

Tensor relu(const Tensor& a) { return leaky_relu(a, 0.0); }

Tensor clamp(const Tensor& a, double lo, double hi) {
  SG_CHECK(lo <= hi, "clamp", "lo ", lo, " > hi ", hi);
  Tensor y = pointwise("clamp", a, k::Clamp{lo, hi});
  record("clamp", {a}, {y}, std::bind_front(derivatives::clamp, a, lo, hi));
  return y;
}

Tensor gt(const Tensor& a, const Tensor& b) { return pointwise2("gt", a, b, k::Gt{}); }
Tensor lt(const Tensor& a, const Tensor& b) { return pointwise2("lt", a, b, k::Lt{}); }
Tensor ge(const Tensor& a, const Tensor& b) { return pointwise2("ge", a, b, k::Ge{}); }
Tensor le(const Tensor& a, const Tensor& b) { return pointwise2("le", a, b, k::Le{}); }
Tensor gt(const Tensor& a, double b) { return pointwise("gt", a, k::GtScalar{b}); }
Tensor lt(const Tensor& a, double b) { return pointwise("lt", a, k::LtScalar{b}); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  const char* op = "where";
  ops::check_defined(op, cond, "cond");
  ops::check_same(op, {cond, a, b});
  Shape out = ops::broadcast_shapes(op, ops::broadcast_shapes(op, cond.shape(), a.shape()), b.shape());
  // CUDA: one broadcasting kernel, no expanded copies (the backward's where() broadcasts cond).
  const bool on_cuda = ops::is_cuda({cond, a, b});
  Tensor c = on_cuda ? cond.detach() : expand(cond, out).detach();
  Tensor y = empty(out, a.dtype(), a.device());
  ops::run_kernel(
      op, a.dtype(), {cond, a, b},
      [&]<class T>() {
        Tensor ea = expand(a, out).detach(), eb = expand(b, out).detach();
        const T *pc = c.data<T>(), *pa = ea.data<T>(), *pb = eb.data<T>();
        T* py = y.data<T>();
        for (int64_t i = 0; i < y.numel(); ++i) py[i] = pc[i] != 0 ? pa[i] : pb[i];
      },
      [&]<class T>() {
        kernels::cuda::where<T>(out, c.data<T>(), ops::broadcast_strides(cond.shape(), out), a.data<T>(),
                                ops::broadcast_strides(a.shape(), out), b.data<T>(),
                                ops::broadcast_strides(b.shape(), out), y.data<T>());
      });
  record(op, {a, b}, {y}, std::bind_front(derivatives::where, c, a.shape(), b.shape()));
  return y;
}

Tensor nan_to_num(const Tensor& a, double nan, std::optional<double> posinf_or, std::optional<double> neginf_or) {
  const double big =
      a.dtype() == DType::f32 ? (double)std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
  Tensor y = pointwise("nan_to_num", a, k::NanToNum{nan, posinf_or.value_or(big), neginf_or.value_or(-big)});
  record("nan_to_num", {a}, {y}, std::bind_front(derivatives::nan_to_num, a));
  return y;
}

Tensor lerp(const Tensor& a, const Tensor& b, const Tensor& t) { return add(a, mul(sub(b, a), t)); }
Tensor lerp(const Tensor& a, const Tensor& b, double t) { return add(a, mul(sub(b, a), t)); }

}  // namespace sg
