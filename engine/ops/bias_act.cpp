// bias_act: y = clamp(act(x + b) * gain, -clamp, clamp) with b broadcast along `dim`, and
// bias_act_grad, its derivative in x written in terms of the output y. Their backward rules
// (engine/derivatives.cpp) use the same two kernels, so gradients of any order do.
//
// Requires gain > 0 and, for lrelu, alpha >= 0: then y > 0 exactly where x + b > 0, which is
// what lets the gradient read y instead of x.
#include <functional>

#include "engine/derivatives.h"
#include "engine/ops/common.h"
#include "kernels/cpu/bias_act.h"
#include "kernels/cuda/bias_act.h"

namespace sg {
using autograd::record;
using ops::check_defined;
using ops::check_same;
namespace kc = kernels::cpu;
namespace kcu = kernels::cuda;

namespace {

kernels::BiasActParams kernel_params(const char* op, Act act, double alpha, double gain, double clamp) {
  SG_CHECK(gain > 0, op, "gain must be > 0, got ", gain);
  SG_CHECK(act != Act::lrelu || alpha >= 0, op, "lrelu alpha must be >= 0, got ", alpha);
  kernels::BiasActParams p;
  p.act = act == Act::linear ? kernels::BiasActKind::linear
          : act == Act::relu ? kernels::BiasActKind::relu
                             : kernels::BiasActKind::lrelu;
  p.alpha = alpha;
  p.gain = gain;
  p.clamp = clamp;
  return p;
}

}  // namespace

Tensor bias_act_grad(const Tensor& dy, const Tensor& y, Act act, double alpha, double gain, double clamp) {
  const char* op = "bias_act_grad";
  check_defined(op, dy, "dy");
  check_defined(op, y, "y");
  check_same(op, {dy, y});
  SG_CHECK(dy.shape() == y.shape(), op, "dy ", shape_str(dy.shape()), " and y ", shape_str(y.shape()),
           " differ in shape");
  const kernels::BiasActParams kp = kernel_params(op, act, alpha, gain, clamp);
  Tensor dx = empty(dy.shape(), dy.dtype(), dy.device());
  ops::run_kernel(
      op, dy.dtype(), {dy, y},
      [&]<class T>() { kc::bias_act_grad<T>(kp, dy.numel(), dy.data<T>(), y.data<T>(), dx.data<T>()); },
      [&]<class T>() { kcu::bias_act_grad<T>(kp, dy.numel(), dy.data<T>(), y.data<T>(), dx.data<T>()); });
  record(op, {dy, y}, {dx}, std::bind_front(derivatives::bias_act_grad, y.detach(), act, alpha, gain, clamp));
  return dx;
}

Tensor bias_act(const Tensor& x, const Tensor& b, Act act, double alpha, double gain, double clamp, int64_t dim) {
  const char* op = "bias_act";
  check_defined(op, x, "x");
  check_same(op, {x, b});
  const kernels::BiasActParams kp = kernel_params(op, act, alpha, gain, clamp);
  int64_t outer = x.numel(), C = 1, inner = 1, d = 0;
  if (b.defined()) {
    SG_CHECK(x.dim() >= 1, op, "x ", shape_str(x.shape()), " has no dim for the bias ", shape_str(b.shape()));
    d = ops::wrap_dim(op, dim, x.dim());
    SG_CHECK(b.dim() == 1 && b.size(0) == x.size(d), op, "b ", shape_str(b.shape()), " must be 1-D with x.shape[", d,
             "] = ", x.size(d), " elements (x ", shape_str(x.shape()), ")");
    outer = 1;
    for (int64_t i = 0; i < d; ++i) outer *= x.size(i);
    C = x.size(d);
    inner = 1;
    for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
  }
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  ops::run_kernel(
      op, x.dtype(), {x, b},
      [&]<class T>() {
        kc::bias_act_forward<T>(kp, outer, C, inner, x.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>());
      },
      [&]<class T>() {
        kcu::bias_act_forward<T>(kp, outer, C, inner, x.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>());
      });
  record(op, {x, b}, {y},
         std::bind_front(derivatives::bias_act, y.detach(), act, alpha, gain, clamp, d,
                         b.defined() ? b.shape() : Shape{}));
  return y;
}

}  // namespace sg
