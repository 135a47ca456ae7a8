// The convolution family: conv2d, conv_transpose2d and conv2d_weight_grad: checks and
// dispatch. The three are closed under differentiation; their rules are in
// engine/derivatives.cpp. Devices: CPU tensors go to kernels/cpu/conv.h, CUDA tensors to
// kernels/cuda/conv.h (FMA, or TF32 / bf16 tensor cores for f32 as sg::set_cuda_math says).
#include <functional>

#include "engine/derivatives.h"
#include "engine/device.h"
#include "engine/ops/common.h"
#include "kernels/cpu/conv.h"
#include "kernels/cuda/conv.h"

namespace sg {
using autograd::record;
using ops::check_defined;
using ops::check_same;
using ops::cuda_workspace;
using ops::workspace_ptr;
namespace kc = kernels::cpu;
namespace kcu = kernels::cuda;

namespace {

using Pair = std::array<int64_t, 2>;

std::string pair_str(const Pair& p) { return str("(", p[0], ", ", p[1], ")"); }

void check_params(const char* op, const Pair& stride, const Pair& padding) {
  SG_CHECK(stride[0] >= 1 && stride[1] >= 1, op, "stride must be >= 1, got ", pair_str(stride));
  SG_CHECK(padding[0] >= 0 && padding[1] >= 0, op, "padding must be >= 0, got ", pair_str(padding));
}

void check_4d(const char* op, const Tensor& t, const char* what) {
  SG_CHECK(t.dim() == 4, op, what, " must be 4-D, got ", t.str());
}

void check_groups(const char* op, int64_t groups) { SG_CHECK(groups >= 1, op, "groups must be >= 1, got ", groups); }

// The conv2d output size along one axis (may be < 1: callers check).
int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p) {
  const int64_t span = in + 2 * p - k;
  return span < 0 ? 0 : span / s + 1;
}

// The kernels' parameters (kernels/conv.h).
kernels::Conv2dParams kernel_params(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t kh, int64_t kw,
                                    const Pair& stride, const Pair& padding, const Pair& output_padding,
                                    int64_t groups) {
  kernels::Conv2dParams p;
  p.N = N, p.Cin = Cin, p.H = H, p.W = W, p.Cout = Cout, p.kh = kh, p.kw = kw;
  p.sy = stride[0], p.sx = stride[1], p.py = padding[0], p.px = padding[1];
  p.opy = output_padding[0], p.opx = output_padding[1];
  p.groups = groups;
  return p;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, Pair stride, Pair padding, int64_t groups) {
  const char* op = "conv2d";
  check_defined(op, x, "x");
  check_defined(op, w, "w");
  check_same(op, {x, w});
  check_4d(op, x, "x");
  check_4d(op, w, "w");
  check_params(op, stride, padding);
  check_groups(op, groups);
  const int64_t N = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Cout = w.size(0), kh = w.size(2), kw = w.size(3);
  SG_CHECK(Cin % groups == 0 && Cout % groups == 0, op, "channels not divisible by groups=", groups, ": x ",
           shape_str(x.shape()), ", w ", shape_str(w.shape()));
  SG_CHECK(w.size(1) * groups == Cin, op, "w ", shape_str(w.shape()), " expects ", w.size(1) * groups,
           " input channels (groups=", groups, ") but x ", shape_str(x.shape()), " has ", Cin);
  SG_CHECK(kh >= 1 && kw >= 1, op, "empty kernel w ", shape_str(w.shape()));
  const int64_t Ho = conv_out(H, kh, stride[0], padding[0]), Wo = conv_out(W, kw, stride[1], padding[1]);
  SG_CHECK(Ho >= 1 && Wo >= 1, op, "input x ", shape_str(x.shape()), " with padding ", pair_str(padding),
           " is smaller than the kernel w ", shape_str(w.shape()));

  const kernels::Conv2dParams kp = kernel_params(N, Cin, H, W, Cout, kh, kw, stride, padding, {0, 0}, groups);
  Tensor y = empty({N, Cout, Ho, Wo}, x.dtype(), x.device());
  ops::run_kernel(
      op, x.dtype(), {x, w}, [&]<class T>() { kc::conv2d_forward<T>(kp, x.data<T>(), w.data<T>(), y.data<T>()); },
      [&]<class T>() {
        // The tensor-core path packs x and w into a workspace (freed back to the caching
        // allocator when this scope ends; the stream orders its reuse after the kernels).
        const auto math = ops::cuda_conv_math();
        Tensor ws = cuda_workspace(kcu::conv2d_forward_workspace<T>(kp, math), x.device());
        kcu::conv2d_forward<T>(kp, x.data<T>(), w.data<T>(), y.data<T>(), math, nullptr, workspace_ptr(ws));
      });
  record(op, {x, w}, {y}, std::bind_front(derivatives::conv2d, x, w, stride, padding, groups));
  return y;
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, Pair stride, Pair padding, Pair output_padding,
                        int64_t groups) {
  const char* op = "conv_transpose2d";
  check_defined(op, x, "x");
  check_defined(op, w, "w");
  check_same(op, {x, w});
  check_4d(op, x, "x");
  check_4d(op, w, "w");
  check_params(op, stride, padding);
  check_groups(op, groups);
  SG_CHECK(output_padding[0] >= 0 && output_padding[1] >= 0 && output_padding[0] < stride[0] &&
               output_padding[1] < stride[1],
           op, "output_padding ", pair_str(output_padding), " must be >= 0 and < stride ", pair_str(stride));
  const int64_t N = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t kh = w.size(2), kw = w.size(3), Cout = w.size(1) * groups;
  SG_CHECK(Cin % groups == 0, op, "input channels of x ", shape_str(x.shape()), " not divisible by groups=", groups);
  SG_CHECK(w.size(0) == Cin, op, "w ", shape_str(w.shape()), " expects ", w.size(0), " input channels but x ",
           shape_str(x.shape()), " has ", Cin);
  SG_CHECK(kh >= 1 && kw >= 1 && w.size(1) >= 1, op, "empty kernel w ", shape_str(w.shape()));
  const int64_t Ho = (H - 1) * stride[0] - 2 * padding[0] + kh + output_padding[0];
  const int64_t Wo = (W - 1) * stride[1] - 2 * padding[1] + kw + output_padding[1];
  SG_CHECK(H >= 1 && W >= 1 && Ho >= 1 && Wo >= 1, op, "output size (", Ho, ", ", Wo, ") < 1 for x ",
           shape_str(x.shape()), ", w ", shape_str(w.shape()), ", stride ", pair_str(stride), ", padding ",
           pair_str(padding), ", output_padding ", pair_str(output_padding));

  const kernels::Conv2dParams kp = kernel_params(N, Cin, H, W, Cout, kh, kw, stride, padding, output_padding, groups);
  Tensor y = empty({N, Cout, Ho, Wo}, x.dtype(), x.device());
  ops::run_kernel(
      op, x.dtype(), {x, w},
      [&]<class T>() { kc::conv_transpose2d_forward<T>(kp, x.data<T>(), w.data<T>(), y.data<T>()); },
      [&]<class T>() {
        const auto math = ops::cuda_conv_math();
        Tensor ws = cuda_workspace(kcu::conv_transpose2d_forward_workspace<T>(kp, math), x.device());
        kcu::conv_transpose2d_forward<T>(kp, x.data<T>(), w.data<T>(), y.data<T>(), math, workspace_ptr(ws));
      });
  record(op, {x, w}, {y}, std::bind_front(derivatives::conv_transpose2d, x, w, stride, padding, groups));
  return y;
}

Tensor conv2d_weight_grad(const Tensor& dy, const Tensor& x, const Shape& weight_shape, Pair stride, Pair padding,
                          int64_t groups) {
  const char* op = "conv2d_weight_grad";
  check_defined(op, dy, "dy");
  check_defined(op, x, "x");
  check_same(op, {dy, x});
  check_4d(op, dy, "dy");
  check_4d(op, x, "x");
  SG_CHECK(weight_shape.size() == 4, op, "weight_shape must be 4-D, got ", shape_str(weight_shape));
  check_params(op, stride, padding);
  check_groups(op, groups);
  const int64_t N = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Cout = weight_shape[0], kh = weight_shape[2], kw = weight_shape[3];
  SG_CHECK(kh >= 1 && kw >= 1, op, "empty kernel ", shape_str(weight_shape));
  SG_CHECK(Cin % groups == 0 && Cout % groups == 0 && weight_shape[1] * groups == Cin, op, "weight_shape ",
           shape_str(weight_shape), " does not fit x ", shape_str(x.shape()), " with groups=", groups);
  const int64_t Ho = conv_out(H, kh, stride[0], padding[0]), Wo = conv_out(W, kw, stride[1], padding[1]);
  SG_CHECK(Ho >= 1 && Wo >= 1, op, "input x ", shape_str(x.shape()), " with padding ", pair_str(padding),
           " is smaller than the kernel ", shape_str(weight_shape));
  SG_CHECK(dy.size(0) == N && dy.size(1) == Cout && dy.size(2) == Ho && dy.size(3) == Wo, op, "dy ",
           shape_str(dy.shape()), " is not the conv2d output shape ", shape_str(Shape{N, Cout, Ho, Wo}), " of x ",
           shape_str(x.shape()), " and weight ", shape_str(weight_shape), " (stride ", pair_str(stride), ", padding ",
           pair_str(padding), ")");

  const kernels::Conv2dParams kp = kernel_params(N, Cin, H, W, Cout, kh, kw, stride, padding, {0, 0}, groups);
  Tensor dw = empty(weight_shape, x.dtype(), x.device());
  ops::run_kernel(
      op, x.dtype(), {dy, x},
      [&]<class T>() { kc::conv2d_weight_grad<T>(kp, dy.data<T>(), x.data<T>(), dw.data<T>()); },
      [&]<class T>() {
        // Split-K partial sums (and, on the bf16 tensor-core path, the packed dy and x) live in a
        // workspace tensor, freed back to the caching allocator when this scope ends (the stream
        // orders its reuse after the kernels).
        const auto math = ops::cuda_conv_math();
        const int64_t ws_elems = kcu::conv2d_weight_grad_workspace(kp, math);
        Tensor ws = ws_elems > 0 ? empty({ws_elems}, x.dtype(), x.device()) : Tensor();
        kcu::conv2d_weight_grad<T>(kp, dy.data<T>(), x.data<T>(), dw.data<T>(), ws.defined() ? ws.data<T>() : nullptr,
                                   math);
      });
  record(op, {dy, x}, {dw}, std::bind_front(derivatives::conv2d_weight_grad, dy, x, stride, padding, groups));
  return dw;
}

}  // namespace sg
