// Elementwise ops with numpy broadcasting. Each backward is written with these same ops
// (sum_to undoes broadcasting), so every gradient is differentiable again.
#include <cmath>
#include <limits>

#include "engine/ops/common.h"
#include "kernels/cpu/loops.h"
#include "kernels/cuda/elementwise.h"

namespace sg {
using autograd::Node;
using autograd::record;
using ops::check_defined;
using ops::check_same;
namespace kc = kernels::cpu;
namespace kcu = kernels::cuda;
using kcu::BinaryOp;
using kcu::UnaryOp;

namespace {

// y = f(a, b) with broadcasting; f is generic in T (CPU), `code` names the same function for
// the CUDA kernels (kernels/cuda/elementwise.h).
template <class F>
Tensor binary_op(const char* op, const Tensor& a, const Tensor& b, BinaryOp code, F f) {
  check_defined(op, a, "a");
  check_defined(op, b, "b");
  check_same(op, {a, b});
  Shape out = ops::broadcast_shapes(op, a.shape(), b.shape());
  Tensor y = empty(out, a.dtype(), a.device());
  auto sa = ops::broadcast_strides(a.shape(), out), sb = ops::broadcast_strides(b.shape(), out);
  if (ops::is_cuda({a, b})) {
#ifdef SG_HAVE_CUDA
    dispatch_dtype(a.dtype(),
                   [&]<class T>() { kcu::binary<T>(code, out, a.data<T>(), sa, b.data<T>(), sb, y.data<T>()); });
#endif
  } else {
    dispatch_dtype(a.dtype(), [&]<class T>() { kc::binary<T>(out, a.data<T>(), sa, b.data<T>(), sb, y.data<T>(), f); });
  }
  return y;
}

// y = f(a); on CUDA the op code `code` with scalar parameters p0..p2 computes the same f.
template <class F>
Tensor unary_op(const char* op, const Tensor& a, F f, UnaryOp code, double p0 = 0, double p1 = 0, double p2 = 0) {
  check_defined(op, a, "input");
  Tensor y = empty(a.shape(), a.dtype(), a.device());
  if (ops::is_cuda({a})) {
#ifdef SG_HAVE_CUDA
    dispatch_dtype(a.dtype(), [&]<class T>() { kcu::unary<T>(code, a.numel(), a.data<T>(), y.data<T>(), p0, p1, p2); });
#endif
  } else {
    dispatch_dtype(a.dtype(), [&]<class T>() { kc::unary<T>(a.numel(), a.data<T>(), y.data<T>(), f); });
  }
  return y;
}

// A unary op whose backward uses its own output y (exp, tanh, ...): y is saved detached and
// re-attached to this node on use, so there is no reference cycle.
struct UnaryOutNode : Node {
  const char* op;
  Tensor x, y;
  Tensor (*fn)(const Tensor& g, const Tensor& x, const Tensor& y);
  std::string name() const override { return op; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override { return {fn(g[0], x, saved_output(y, 0))}; }
};
Tensor with_output_grad(const char* op, const Tensor& x, const Tensor& y,
                        Tensor (*fn)(const Tensor&, const Tensor&, const Tensor&)) {
  if (!autograd::any_requires_grad({&x})) return y;
  auto n = std::make_shared<UnaryOutNode>();
  n->op = op;
  n->x = x;
  n->y = y.detach();
  n->fn = fn;
  autograd::set_history(n, {x}, {y});
  return y;
}

// A gradient that is g times a mask computed without grad (piecewise-constant derivative).
Tensor masked(const Tensor& g, const Tensor& mask) { return mul(g, mask); }

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary_op("add", a, b, BinaryOp::add, [](auto x, auto z) { return x + z; });
  record("add", {a, b}, {y}, [sa = a.shape(), sb = b.shape()](const std::vector<Tensor>& g, const Node& n) {
    return std::vector<Tensor>{n.needs_grad(0) ? sum_to(g[0], sa) : Tensor(),
                               n.needs_grad(1) ? sum_to(g[0], sb) : Tensor()};
  });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary_op("sub", a, b, BinaryOp::sub, [](auto x, auto z) { return x - z; });
  record("sub", {a, b}, {y}, [sa = a.shape(), sb = b.shape()](const std::vector<Tensor>& g, const Node& n) {
    return std::vector<Tensor>{n.needs_grad(0) ? sum_to(g[0], sa) : Tensor(),
                               n.needs_grad(1) ? sum_to(neg(g[0]), sb) : Tensor()};
  });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_op("mul", a, b, BinaryOp::mul, [](auto x, auto z) { return x * z; });
  record("mul", {a, b}, {y}, [a, b](const std::vector<Tensor>& g, const Node& n) {
    return std::vector<Tensor>{n.needs_grad(0) ? sum_to(mul(g[0], b), a.shape()) : Tensor(),
                               n.needs_grad(1) ? sum_to(mul(g[0], a), b.shape()) : Tensor()};
  });
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_op("div", a, b, BinaryOp::div, [](auto x, auto z) { return x / z; });
  record("div", {a, b}, {y}, [a, b](const std::vector<Tensor>& g, const Node& n) {
    Tensor ga, gb;
    if (n.needs_grad(0)) ga = sum_to(div(g[0], b), a.shape());
    if (n.needs_grad(1)) gb = sum_to(neg(div(mul(g[0], a), mul(b, b))), b.shape());
    return std::vector<Tensor>{ga, gb};
  });
  return y;
}

Tensor add(const Tensor& a, double s) {
  Tensor y = unary_op(
      "add", a, [s](auto x) { return x + (decltype(x))s; }, UnaryOp::add_scalar, s);
  record("add_scalar", {a}, {y}, [](const std::vector<Tensor>& g, const Node&) { return std::vector<Tensor>{g[0]}; });
  return y;
}

Tensor mul(const Tensor& a, double s) {
  Tensor y = unary_op(
      "mul", a, [s](auto x) { return x * (decltype(x))s; }, UnaryOp::mul_scalar, s);
  record("mul_scalar", {a}, {y},
         [s](const std::vector<Tensor>& g, const Node&) { return std::vector<Tensor>{mul(g[0], s)}; });
  return y;
}

Tensor neg(const Tensor& a) {
  Tensor y = unary_op(
      "neg", a, [](auto x) { return -x; }, UnaryOp::neg);
  record("neg", {a}, {y}, [](const std::vector<Tensor>& g, const Node&) { return std::vector<Tensor>{neg(g[0])}; });
  return y;
}

Tensor exp(const Tensor& a) {
  Tensor y = unary_op(
      "exp", a, [](auto x) { return std::exp(x); }, UnaryOp::exp);
  return with_output_grad("exp", a, y, [](const Tensor& g, const Tensor&, const Tensor& y) { return mul(g, y); });
}

Tensor log(const Tensor& a) {
  Tensor y = unary_op(
      "log", a, [](auto x) { return std::log(x); }, UnaryOp::log);
  record("log", {a}, {y}, [a](const std::vector<Tensor>& g, const Node&) { return std::vector<Tensor>{div(g[0], a)}; });
  return y;
}

Tensor sqrt(const Tensor& a) {
  Tensor y = unary_op(
      "sqrt", a, [](auto x) { return std::sqrt(x); }, UnaryOp::sqrt);
  return with_output_grad("sqrt", a, y,
                          [](const Tensor& g, const Tensor&, const Tensor& y) { return div(mul(g, 0.5), y); });
}

Tensor rsqrt(const Tensor& a) {
  Tensor y = unary_op(
      "rsqrt", a, [](auto x) { return decltype(x)(1) / std::sqrt(x); }, UnaryOp::rsqrt);
  // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
  return with_output_grad("rsqrt", a, y, [](const Tensor& g, const Tensor&, const Tensor& y) {
    return mul(mul(g, mul(y, mul(y, y))), -0.5);
  });
}

Tensor pow(const Tensor& a, double p) {
  Tensor y = unary_op(
      "pow", a, [p](auto x) { return (decltype(x))std::pow(x, (decltype(x))p); }, UnaryOp::pow, p);
  record("pow", {a}, {y}, [a, p](const std::vector<Tensor>& g, const Node&) {
    if (p == 0.0) return std::vector<Tensor>{zeros_like(g[0])};
    if (p == 1.0) return std::vector<Tensor>{g[0]};
    return std::vector<Tensor>{mul(g[0], mul(pow(a, p - 1.0), p))};
  });
  return y;
}

Tensor square(const Tensor& a) {
  Tensor y = unary_op(
      "square", a, [](auto x) { return x * x; }, UnaryOp::square);
  record("square", {a}, {y},
         [a](const std::vector<Tensor>& g, const Node&) { return std::vector<Tensor>{mul(g[0], mul(a, 2.0))}; });
  return y;
}

Tensor sign(const Tensor& a) {
  return unary_op(
      "sign", a, [](auto x) { return (decltype(x))((x > 0) - (x < 0)); }, UnaryOp::sign);
}

Tensor abs(const Tensor& a) {
  Tensor y = unary_op(
      "abs", a, [](auto x) { return std::abs(x); }, UnaryOp::abs);
  record("abs", {a}, {y}, [a](const std::vector<Tensor>& g, const Node&) {
    Tensor s;
    {
      NoGradGuard ng;
      s = sign(a);
    }
    return std::vector<Tensor>{masked(g[0], s)};
  });
  return y;
}

Tensor tanh(const Tensor& a) {
  Tensor y = unary_op(
      "tanh", a, [](auto x) { return std::tanh(x); }, UnaryOp::tanh);
  return with_output_grad(
      "tanh", a, y, [](const Tensor& g, const Tensor&, const Tensor& y) { return mul(g, add(neg(mul(y, y)), 1.0)); });
}

Tensor sigmoid(const Tensor& a) {
  Tensor y = unary_op(
      "sigmoid", a, [](auto x) { return decltype(x)(1) / (decltype(x)(1) + std::exp(-x)); }, UnaryOp::sigmoid);
  return with_output_grad("sigmoid", a, y, [](const Tensor& g, const Tensor&, const Tensor& y) {
    return mul(g, mul(y, add(neg(y), 1.0)));
  });
}

Tensor softplus(const Tensor& a) {
  // log(1 + e^x), computed stably as max(x, 0) + log1p(e^-|x|).
  Tensor y = unary_op(
      "softplus", a, [](auto x) { return std::max(x, decltype(x)(0)) + std::log1p(std::exp(-std::abs(x))); },
      UnaryOp::softplus);
  record("softplus", {a}, {y},
         [a](const std::vector<Tensor>& g, const Node&) { return std::vector<Tensor>{mul(g[0], sigmoid(a))}; });
  return y;
}

Tensor leaky_relu(const Tensor& a, double alpha) {
  Tensor y = unary_op(
      "leaky_relu", a, [alpha](auto x) { return x > 0 ? x : x * (decltype(x))alpha; }, UnaryOp::leaky_relu, alpha);
  record("leaky_relu", {a}, {y}, [a, alpha](const std::vector<Tensor>& g, const Node&) {
    Tensor m;
    {
      NoGradGuard ng;
      m = unary_op(
          "leaky_relu", a, [alpha](auto x) { return x > 0 ? decltype(x)(1) : (decltype(x))alpha; },
          UnaryOp::leaky_relu_mask, alpha);
    }
    return std::vector<Tensor>{masked(g[0], m)};
  });
  return y;
}

Tensor relu(const Tensor& a) { return leaky_relu(a, 0.0); }

Tensor clamp(const Tensor& a, double lo, double hi) {
  SG_CHECK(lo <= hi, "clamp", "lo ", lo, " > hi ", hi);
  Tensor y = unary_op(
      "clamp", a, [lo, hi](auto x) { return std::min(std::max(x, (decltype(x))lo), (decltype(x))hi); }, UnaryOp::clamp,
      lo, hi);
  record("clamp", {a}, {y}, [a, lo, hi](const std::vector<Tensor>& g, const Node&) {
    Tensor m;
    {
      NoGradGuard ng;
      m = unary_op(
          "clamp", a, [lo, hi](auto x) { return (decltype(x))(x > lo && x < hi); }, UnaryOp::clamp_mask, lo, hi);
    }
    return std::vector<Tensor>{masked(g[0], m)};
  });
  return y;
}

Tensor gt(const Tensor& a, const Tensor& b) {
  return binary_op("gt", a, b, BinaryOp::gt, [](auto x, auto z) { return (decltype(x))(x > z); });
}
Tensor lt(const Tensor& a, const Tensor& b) {
  return binary_op("lt", a, b, BinaryOp::lt, [](auto x, auto z) { return (decltype(x))(x < z); });
}
Tensor ge(const Tensor& a, const Tensor& b) {
  return binary_op("ge", a, b, BinaryOp::ge, [](auto x, auto z) { return (decltype(x))(x >= z); });
}
Tensor le(const Tensor& a, const Tensor& b) {
  return binary_op("le", a, b, BinaryOp::le, [](auto x, auto z) { return (decltype(x))(x <= z); });
}
Tensor gt(const Tensor& a, double b) {
  return unary_op(
      "gt", a, [b](auto x) { return (decltype(x))(x > b); }, UnaryOp::gt_scalar, b);
}
Tensor lt(const Tensor& a, double b) {
  return unary_op(
      "lt", a, [b](auto x) { return (decltype(x))(x < b); }, UnaryOp::lt_scalar, b);
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond, "cond");
  check_same("where", {cond, a, b});
  Shape out = ops::broadcast_shapes("where", ops::broadcast_shapes("where", cond.shape(), a.shape()), b.shape());
  Tensor c, y;
  if (ops::is_cuda({cond, a, b})) {
    // One broadcasting kernel, no expanded copies; the backward's where() broadcasts cond.
    c = cond.detach();
    y = empty(out, a.dtype(), a.device());
#ifdef SG_HAVE_CUDA
    auto sc = ops::broadcast_strides(cond.shape(), out), sa = ops::broadcast_strides(a.shape(), out),
         sb = ops::broadcast_strides(b.shape(), out);
    dispatch_dtype(a.dtype(), [&]<class T>() {
      kcu::where<T>(out, c.data<T>(), sc, a.data<T>(), sa, b.data<T>(), sb, y.data<T>());
    });
#endif
  } else {
    c = expand(cond, out).detach();
    Tensor ea = expand(a, out).detach(), eb = expand(b, out).detach();
    y = empty(out, a.dtype(), a.device());
    dispatch_dtype(a.dtype(), [&]<class T>() {
      const T *pc = c.data<T>(), *pa = ea.data<T>(), *pb = eb.data<T>();
      T* py = y.data<T>();
      for (int64_t i = 0; i < y.numel(); ++i) py[i] = pc[i] != 0 ? pa[i] : pb[i];
    });
  }
  record("where", {a, b}, {y}, [c, sa = a.shape(), sb = b.shape()](const std::vector<Tensor>& g, const Node& n) {
    Tensor z = zeros_like(g[0]);
    return std::vector<Tensor>{n.needs_grad(0) ? sum_to(where(c, g[0], z), sa) : Tensor(),
                               n.needs_grad(1) ? sum_to(where(c, z, g[0]), sb) : Tensor()};
  });
  return y;
}

Tensor nan_to_num(const Tensor& a, double nan, std::optional<double> posinf_or, std::optional<double> neginf_or) {
  const double big =
      a.dtype() == DType::f32 ? (double)std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
  const double posinf = posinf_or.value_or(big), neginf = neginf_or.value_or(-big);
  Tensor y = unary_op(
      "nan_to_num", a,
      [=](auto x) {
        using T = decltype(x);
        if (std::isnan(x)) return (T)nan;
        if (std::isinf(x)) return x > 0 ? (T)posinf : (T)neginf;
        return x;
      },
      UnaryOp::nan_to_num, nan, posinf, neginf);
  record("nan_to_num", {a}, {y}, [a](const std::vector<Tensor>& g, const Node&) {
    Tensor m;
    {
      NoGradGuard ng;
      m = unary_op(
          "nan_to_num", a, [](auto x) { return (decltype(x))std::isfinite(x); }, UnaryOp::isfinite_mask);
    }
    return std::vector<Tensor>{masked(g[0], m)};
  });
  return y;
}

Tensor lerp(const Tensor& a, const Tensor& b, const Tensor& t) { return add(a, mul(sub(b, a), t)); }
Tensor lerp(const Tensor& a, const Tensor& b, double t) { return add(a, mul(sub(b, a), t)); }

}  // namespace sg
