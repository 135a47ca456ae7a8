// 2-D max and average pooling (PyTorch's max_pool2d / avg_pool2d with ceil_mode=False and
// dilation 1), and their backward ops. Kernels: kernels/pool2d.h (CPU and CUDA).
//
// Backward (engine/derivatives.cpp), closed under differentiation:
//   avg_pool2d is linear; its adjoint is avg_pool2d_backward, whose adjoint is avg_pool2d.
//   max_pool2d picks one element per window, a choice that is piecewise constant in x, so
//   dx = max_pool2d_backward(g, x) (g scattered to the chosen positions, x a constant); its
//   adjoint in g gathers at the same positions: max_pool2d(x, ..., values = g).
#include <functional>

#include "engine/derivatives.h"
#include "engine/ops/common.h"
#include "kernels/cpu/pool2d.h"
#include "kernels/cuda/pool2d.h"

namespace sg {
using autograd::record;
using ops::check_defined;
using ops::check_same;
namespace kc = kernels::cpu;
namespace kcu = kernels::cuda;
using Pair = std::array<int64_t, 2>;

namespace {

// Checks x [N, C, H, W] (the pooled input's shape) and the window, returns the kernel params.
kernels::Pool2dParams pool_params(const char* op, const Shape& x, Pair kernel, Pair stride, Pair padding) {
  SG_CHECK(x.size() == 4, op, "expected a 4-D input [N, C, H, W], got ", shape_str(x));
  for (int i = 0; i < 2; ++i) {
    SG_CHECK(kernel[i] >= 1 && stride[i] >= 1 && padding[i] >= 0, op, "kernel (", kernel[0], ", ", kernel[1],
             ") and stride (", stride[0], ", ", stride[1], ") must be >= 1, padding (", padding[0], ", ", padding[1],
             ") >= 0");
    SG_CHECK(2 * padding[i] <= kernel[i], op, "padding (", padding[0], ", ", padding[1],
             ") must be at most half the kernel (", kernel[0], ", ", kernel[1], ")");
  }
  kernels::Pool2dParams p;
  p.planes = x[0] * x[1];
  p.H = x[2], p.W = x[3];
  p.kh = kernel[0], p.kw = kernel[1], p.sy = stride[0], p.sx = stride[1], p.py = padding[0], p.px = padding[1];
  SG_CHECK(p.H + 2 * p.py >= p.kh && p.W + 2 * p.px >= p.kw, op, "the kernel (", p.kh, ", ", p.kw,
           ") is larger than the padded input ", shape_str(x), " (padding (", p.py, ", ", p.px, "))");
  p.Ho = (p.H + 2 * p.py - p.kh) / p.sy + 1;
  p.Wo = (p.W + 2 * p.px - p.kw) / p.sx + 1;
  return p;
}

Shape out_shape(const Shape& x, const kernels::Pool2dParams& p) { return {x[0], x[1], p.Ho, p.Wo}; }

}  // namespace

Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, const Tensor& values) {
  const char* op = "max_pool2d";
  check_defined(op, x, "x");
  check_same(op, {x, values});
  const kernels::Pool2dParams p = pool_params(op, x.shape(), kernel, stride, padding);
  SG_CHECK(!values.defined() || values.shape() == x.shape(), op, "values ", shape_str(values.shape()),
           " must have x's shape ", shape_str(x.shape()));
  Tensor y = empty(out_shape(x.shape(), p), x.dtype(), x.device());
  ops::run_kernel(
      op, x.dtype(), {x, values},
      [&]<class T>() {
        kc::max_pool2d_forward<T>(p, x.data<T>(), values.defined() ? values.data<T>() : nullptr, y.data<T>());
      },
      [&]<class T>() {
        kcu::max_pool2d_forward<T>(p, x.data<T>(), values.defined() ? values.data<T>() : nullptr, y.data<T>());
      });
  // The gradient goes to what was picked: x itself, or values (x then only chooses).
  const Tensor& source = values.defined() ? values : x;
  record(op, {source}, {y}, std::bind_front(derivatives::max_pool2d, x.detach(), kernel, stride, padding));
  return y;
}

Tensor max_pool2d_backward(const Tensor& dy, const Tensor& x, Pair kernel, Pair stride, Pair padding) {
  const char* op = "max_pool2d_backward";
  check_defined(op, dy, "dy");
  check_defined(op, x, "x");
  check_same(op, {dy, x});
  const kernels::Pool2dParams p = pool_params(op, x.shape(), kernel, stride, padding);
  SG_CHECK(dy.shape() == out_shape(x.shape(), p), op, "dy ", shape_str(dy.shape()), " must be the pooled shape ",
           shape_str(out_shape(x.shape(), p)), " of x ", shape_str(x.shape()));
  Tensor dx = empty(x.shape(), x.dtype(), x.device());
  ops::run_kernel(
      op, x.dtype(), {dy, x},
      [&]<class T>() { kc::max_pool2d_backward<T>(p, dy.data<T>(), x.data<T>(), dx.data<T>()); },
      [&]<class T>() { kcu::max_pool2d_backward<T>(p, dy.data<T>(), x.data<T>(), dx.data<T>()); });
  record(op, {dy}, {dx}, std::bind_front(derivatives::max_pool2d_backward, x.detach(), kernel, stride, padding));
  return dx;
}

Tensor avg_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, bool count_include_pad) {
  const char* op = "avg_pool2d";
  check_defined(op, x, "x");
  kernels::Pool2dParams p = pool_params(op, x.shape(), kernel, stride, padding);
  p.count_include_pad = count_include_pad;
  Tensor y = empty(out_shape(x.shape(), p), x.dtype(), x.device());
  ops::run_kernel(
      op, x.dtype(), {x}, [&]<class T>() { kc::avg_pool2d_forward<T>(p, x.data<T>(), y.data<T>()); },
      [&]<class T>() { kcu::avg_pool2d_forward<T>(p, x.data<T>(), y.data<T>()); });
  record(op, {x}, {y}, std::bind_front(derivatives::avg_pool2d, x.shape(), kernel, stride, padding, count_include_pad));
  return y;
}

Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, Pair kernel, Pair stride, Pair padding,
                           bool count_include_pad) {
  const char* op = "avg_pool2d_backward";
  check_defined(op, dy, "dy");
  kernels::Pool2dParams p = pool_params(op, x_shape, kernel, stride, padding);
  p.count_include_pad = count_include_pad;
  SG_CHECK(dy.shape() == out_shape(x_shape, p), op, "dy ", shape_str(dy.shape()), " must be the pooled shape ",
           shape_str(out_shape(x_shape, p)), " of ", shape_str(x_shape));
  Tensor dx = empty(x_shape, dy.dtype(), dy.device());
  ops::run_kernel(
      op, dy.dtype(), {dy}, [&]<class T>() { kc::avg_pool2d_backward<T>(p, dy.data<T>(), dx.data<T>()); },
      [&]<class T>() { kcu::avg_pool2d_backward<T>(p, dy.data<T>(), dx.data<T>()); });
  record(op, {dy}, {dx}, std::bind_front(derivatives::avg_pool2d_backward, kernel, stride, padding, count_include_pad));
  return dx;
}

}  // namespace sg
