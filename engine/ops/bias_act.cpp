// bias_act: y = clamp(act(x + b) * gain, -clamp, clamp) with b broadcast along `dim`, and
// bias_act_grad, its derivative in x written in terms of the output y.
//
// Backward of bias_act: dx = bias_act_grad(dy, y), db = sum of dx over every dim but `dim`.
// bias_act_grad is linear in dy with a piecewise-constant mask of y, so its own backward is
// bias_act_grad again (w.r.t. dy) and zero (w.r.t. y): gradients of any order use the same
// two kernels. y is saved detached (it is this node's own output: no reference cycle).
//
// Requires gain > 0 and, for lrelu, alpha >= 0: then y > 0 exactly where x + b > 0, which is
// what lets the gradient read y instead of x.
#include "engine/ops/common.h"
#include "kernels/cpu/bias_act.h"
#ifdef SG_HAVE_CUDA
#include "kernels/cuda/bias_act.h"
#endif

namespace sg {
using autograd::Node;
using autograd::record;
using ops::check_cpu;
using ops::check_defined;
using ops::check_same;
namespace kc = kernels::cpu;
#ifdef SG_HAVE_CUDA
namespace kcu = kernels::cuda;
#endif

namespace {

kc::BiasActParams kernel_params(const char* op, Act act, double alpha, double gain, double clamp) {
  SG_CHECK(gain > 0, op, "gain must be > 0, got ", gain);
  SG_CHECK(act != Act::lrelu || alpha >= 0, op, "lrelu alpha must be >= 0, got ", alpha);
  kc::BiasActParams p;
  p.act = act == Act::linear ? kc::BiasActKind::linear
          : act == Act::relu ? kc::BiasActKind::relu
                             : kc::BiasActKind::lrelu;
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
  const kc::BiasActParams kp = kernel_params(op, act, alpha, gain, clamp);
  Tensor dx = empty(dy.shape(), dy.dtype(), dy.device());
  if (ops::is_cuda({dy, y})) {
#ifdef SG_HAVE_CUDA
    dispatch_dtype(dy.dtype(),
                   [&]<class T>() { kcu::bias_act_grad<T>(kp, dy.numel(), dy.data<T>(), y.data<T>(), dx.data<T>()); });
#else
    check_cpu(op, {dy, y});
#endif
  } else {
    dispatch_dtype(dy.dtype(),
                   [&]<class T>() { kc::bias_act_grad<T>(kp, dy.numel(), dy.data<T>(), y.data<T>(), dx.data<T>()); });
  }
  record(op, {dy, y}, {dx}, [yd = y.detach(), act, alpha, gain, clamp](const std::vector<Tensor>& g, const Node& n) {
    return std::vector<Tensor>{n.needs_grad(0) ? bias_act_grad(g[0], yd, act, alpha, gain, clamp) : Tensor(), Tensor()};
  });
  return dx;
}

Tensor bias_act(const Tensor& x, const Tensor& b, Act act, double alpha, double gain, double clamp, int64_t dim) {
  const char* op = "bias_act";
  check_defined(op, x, "x");
  check_same(op, {x, b});
  const kc::BiasActParams kp = kernel_params(op, act, alpha, gain, clamp);
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
  if (ops::is_cuda({x, b})) {
#ifdef SG_HAVE_CUDA
    dispatch_dtype(x.dtype(), [&]<class T>() {
      kcu::bias_act_forward<T>(kp, outer, C, inner, x.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>());
    });
#else
    check_cpu(op, {x, b});
#endif
  } else {
    dispatch_dtype(x.dtype(), [&]<class T>() {
      kc::bias_act_forward<T>(kp, outer, C, inner, x.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>());
    });
  }
  record(op, {x, b}, {y},
         [yd = y.detach(), act, alpha, gain, clamp, d, rank = x.dim(), bshape = b.defined() ? b.shape() : Shape{}](
             const std::vector<Tensor>& g, const Node& n) {
           Tensor dx = bias_act_grad(g[0], yd, act, alpha, gain, clamp);
           Tensor db;
           if (n.needs_grad(1)) {
             std::vector<int64_t> dims;
             for (int64_t i = 0; i < rank; ++i)
               if (i != d) dims.push_back(i);
             db = dims.empty() ? dx : sum(dx, dims);
             db = reshape(db, bshape);
           }
           return std::vector<Tensor>{n.needs_grad(0) ? dx : Tensor(), db};
         });
  return y;
}

}  // namespace sg
