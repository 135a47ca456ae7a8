// The convolution family: conv2d, conv_transpose2d and conv2d_weight_grad. Dispatch to
// kernels/cpu/conv.h and the backward formulas side by side. The three are closed under
// differentiation (the double-backward rule):
//   conv2d(x, w)               dx = conv_transpose2d(dy, w)   dw = conv2d_weight_grad(dy, x)
//   conv_transpose2d(x, w)     dx = conv2d(dy, w)             dw = conv2d_weight_grad(x, dy)
//   conv2d_weight_grad(dy, x)  bilinear; with G the gradient of dw:
//                              d(dy) = conv2d(x, G)           d(x) = conv_transpose2d(dy, G)
// Inside a NoWeightGradientsGuard the backwards of conv2d and conv_transpose2d skip dw.
// Devices: CPU tensors go to kernels/cpu/conv.h, CUDA tensors to kernels/cuda/conv.h (FMA,
// or TF32 tensor cores for f32 when sg::set_cuda_tf32(true)).
#include "engine/device.h"
#include "engine/ops/common.h"
#include "kernels/cpu/conv.h"
#ifdef SG_HAVE_CUDA
#include "kernels/cuda/conv.h"
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

// The output_padding that makes conv_transpose2d(grid `out`) land exactly on size `in`,
// where out = conv_out(in, k, s, p). Always in [0, s).
Pair matching_output_padding(const Shape& in_shape, const Shape& out_shape, int64_t kh, int64_t kw, const Pair& s,
                             const Pair& p) {
  return {in_shape[2] - ((out_shape[2] - 1) * s[0] - 2 * p[0] + kh),
          in_shape[3] - ((out_shape[3] - 1) * s[1] - 2 * p[1] + kw)};
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

  Tensor y = empty({N, Cout, Ho, Wo}, x.dtype(), x.device());
  if (ops::is_cuda({x, w})) {
#ifdef SG_HAVE_CUDA
    dispatch_dtype(x.dtype(), [&]<class T>() {
      kcu::conv2d_forward<T>(x.data<T>(), w.data<T>(), y.data<T>(), N, Cin, H, W, Cout, kh, kw, stride[0], stride[1],
                             padding[0], padding[1], groups, cuda_tf32());
    });
#else
    check_cpu(op, {x, w});
#endif
  } else {
    dispatch_dtype(x.dtype(), [&]<class T>() {
      kc::conv2d_forward<T>(x.data<T>(), w.data<T>(), y.data<T>(), N, Cin, H, W, Cout, kh, kw, stride[0], stride[1],
                            padding[0], padding[1], groups);
    });
  }
  record(op, {x, w}, {y}, [x, w, stride, padding, groups](const std::vector<Tensor>& g, const Node& n) {
    const Tensor& dy = g[0];
    Tensor dx, dw;
    if (n.needs_grad(0)) {
      Pair op_pad = matching_output_padding(x.shape(), dy.shape(), w.size(2), w.size(3), stride, padding);
      dx = conv_transpose2d(dy, w, stride, padding, op_pad, groups);
    }
    if (n.needs_grad(1) && !(autograd::weight_gradients_disabled() && n.input_is_leaf(1)))
      dw = conv2d_weight_grad(dy, x, w.shape(), stride, padding, groups);
    return std::vector<Tensor>{dx, dw};
  });
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

  Tensor y = empty({N, Cout, Ho, Wo}, x.dtype(), x.device());
  if (ops::is_cuda({x, w})) {
#ifdef SG_HAVE_CUDA
    dispatch_dtype(x.dtype(), [&]<class T>() {
      kcu::conv_transpose2d_forward<T>(x.data<T>(), w.data<T>(), y.data<T>(), N, Cin, H, W, Cout, kh, kw, stride[0],
                                       stride[1], padding[0], padding[1], output_padding[0], output_padding[1], groups,
                                       cuda_tf32());
    });
#else
    check_cpu(op, {x, w});
#endif
  } else {
    dispatch_dtype(x.dtype(), [&]<class T>() {
      kc::conv_transpose2d_forward<T>(x.data<T>(), w.data<T>(), y.data<T>(), N, Cin, H, W, Cout, kh, kw, stride[0],
                                      stride[1], padding[0], padding[1], output_padding[0], output_padding[1], groups);
    });
  }
  record(op, {x, w}, {y}, [x, w, stride, padding, groups](const std::vector<Tensor>& g, const Node& n) {
    const Tensor& dy = g[0];
    Tensor dx, dw;
    // conv_transpose2d is the adjoint (in x) of conv2d(., w) from dy's grid to x's grid.
    if (n.needs_grad(0)) dx = conv2d(dy, w, stride, padding, groups);
    if (n.needs_grad(1) && !(autograd::weight_gradients_disabled() && n.input_is_leaf(1)))
      dw = conv2d_weight_grad(x, dy, w.shape(), stride, padding, groups);
    return std::vector<Tensor>{dx, dw};
  });
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

  Tensor dw = empty(weight_shape, x.dtype(), x.device());
  if (ops::is_cuda({dy, x})) {
#ifdef SG_HAVE_CUDA
    // Split-K partial sums live in a workspace tensor (freed back to the caching allocator
    // when this scope ends; the stream orders its reuse after the reduction).
    const int64_t ws_elems = kcu::conv2d_weight_grad_workspace(N, Cin, H, W, Cout, kh, kw, stride[0], stride[1],
                                                               padding[0], padding[1], groups);
    Tensor ws = ws_elems > 0 ? empty({ws_elems}, x.dtype(), x.device()) : Tensor();
    dispatch_dtype(x.dtype(), [&]<class T>() {
      kcu::conv2d_weight_grad<T>(dy.data<T>(), x.data<T>(), dw.data<T>(), ws.defined() ? ws.data<T>() : nullptr, N, Cin,
                                 H, W, Cout, kh, kw, stride[0], stride[1], padding[0], padding[1], groups, cuda_tf32());
    });
#else
    check_cpu(op, {dy, x});
#endif
  } else {
    dispatch_dtype(x.dtype(), [&]<class T>() {
      kc::conv2d_weight_grad<T>(dy.data<T>(), x.data<T>(), dw.data<T>(), N, Cin, H, W, Cout, kh, kw, stride[0],
                                stride[1], padding[0], padding[1], groups);
    });
  }
  record(op, {dy, x}, {dw}, [dy, x, stride, padding, groups](const std::vector<Tensor>& g, const Node& n) {
    const Tensor& G = g[0];  // gradient of dw, shaped like the weight
    Tensor gdy, gx;
    if (n.needs_grad(0)) gdy = conv2d(x, G, stride, padding, groups);
    if (n.needs_grad(1)) {
      Pair op_pad = matching_output_padding(x.shape(), dy.shape(), G.size(2), G.size(3), stride, padding);
      gx = conv_transpose2d(dy, G, stride, padding, op_pad, groups);
    }
    return std::vector<Tensor>{gdy, gx};
  });
  return dw;
}

}  // namespace sg
