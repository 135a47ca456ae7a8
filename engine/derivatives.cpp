// Every backward rule of the engine, one short function per op, in the order of
// docs/architecture.md's table "Every op and its backward" (the table and this file read
// the same). Conventions: engine/derivatives.h. Each rule is written with the public
// differentiable ops, so its result can be differentiated again: second derivatives (R1,
// path length) need no code of their own.
//
// Not here: ops that are compositions of other ops (mean, linear, transpose, unsqueeze,
// stack, repeat, lerp, pixel_norm, minibatch_stddev, conv2d_resample, modulated_conv2d off
// its CUDA fast path, upsample2d, downsample2d): their gradients come from their parts.
#include "engine/derivatives.h"

#include "engine/ops/common.h"
#include "kernels/elementwise.h"

namespace sg::derivatives {

namespace {
namespace k = kernels;

// f() when input `input` wants a gradient, else undefined (no gradient).
template <class F>
Tensor if_needed(const Node& n, size_t input, F&& f) {
  return n.needs_grad(input) ? f() : Tensor();
}

// g times a mask computed without grad: a piecewise-constant derivative.
template <class F>
Tensor masked(const Tensor& g, const Tensor& a, F mask_fn) {
  Tensor m;
  {
    NoGradGuard ng;
    m = ops::pointwise("mask", a, mask_fn);
  }
  return sg::mul(g, m);
}

// The output_padding that makes conv_transpose2d(grid `out`) land exactly on size `in`,
// where out = conv2d's output size for in. Always in [0, stride).
Pair matching_output_padding(const Shape& in_shape, const Shape& out_shape, int64_t kh, int64_t kw, const Pair& s,
                             const Pair& p) {
  return {in_shape[2] - ((out_shape[2] - 1) * s[0] - 2 * p[0] + kh),
          in_shape[3] - ((out_shape[3] - 1) * s[1] - 2 * p[1] + kw)};
}

// Inside a NoWeightGradientsGuard a leaf weight gets no gradient (R1, path length).
bool wants_weight_grad(const Node& n, size_t input) {
  return n.needs_grad(input) && !(autograd::weight_gradients_disabled() && n.input_is_leaf(input));
}
}  // namespace

// ---- elementwise -------------------------------------------------------------------------
// Broadcasting is undone by sum_to: an input broadcast along a dim gets the sum over it.

// y = a + b:  da = g,  db = g
Grads add(const Shape& sa, const Shape& sb, const Grads& g, const Node& n) {
  return {if_needed(n, 0, [&] { return sum_to(g[0], sa); }), if_needed(n, 1, [&] { return sum_to(g[0], sb); })};
}

// y = a - b:  da = g,  db = -g
Grads sub(const Shape& sa, const Shape& sb, const Grads& g, const Node& n) {
  return {if_needed(n, 0, [&] { return sum_to(g[0], sa); }),
          if_needed(n, 1, [&] { return sum_to(sg::neg(g[0]), sb); })};
}

// y = a * b:  da = g b,  db = g a
Grads mul(const Tensor& a, const Tensor& b, const Grads& g, const Node& n) {
  return {if_needed(n, 0, [&] { return sum_to(sg::mul(g[0], b), a.shape()); }),
          if_needed(n, 1, [&] { return sum_to(sg::mul(g[0], a), b.shape()); })};
}

// y = a / b:  da = g / b,  db = -g a / b^2
Grads div(const Tensor& a, const Tensor& b, const Grads& g, const Node& n) {
  return {if_needed(n, 0, [&] { return sum_to(sg::div(g[0], b), a.shape()); }),
          if_needed(n, 1, [&] { return sum_to(sg::neg(sg::div(sg::mul(g[0], a), sg::mul(b, b))), b.shape()); })};
}

// y = a + s:  da = g
Grads add_scalar(const Grads& g, const Node&) { return {g[0]}; }

// y = a s:  da = g s
Grads mul_scalar(double s, const Grads& g, const Node&) { return {sg::mul(g[0], s)}; }

// y = -a:  da = -g
Grads neg(const Grads& g, const Node&) { return {sg::neg(g[0])}; }

// y = e^a:  da = g y
Grads exp(const Tensor& y, const Grads& g, const Node&) { return {sg::mul(g[0], y)}; }

// y = ln a:  da = g / a
Grads log(const Tensor& a, const Grads& g, const Node&) { return {sg::div(g[0], a)}; }

// y = sqrt a:  da = g / (2 y)
Grads sqrt(const Tensor& y, const Grads& g, const Node&) { return {sg::div(sg::mul(g[0], 0.5), y)}; }

// y = a^-1/2:  da = -1/2 g a^-3/2 = -1/2 g y^3
Grads rsqrt(const Tensor& y, const Grads& g, const Node&) {
  return {sg::mul(sg::mul(g[0], sg::mul(y, sg::mul(y, y))), -0.5)};
}

// y = a^p:  da = g p a^(p-1)   (p = 0: zero; p = 1: g)
Grads pow(const Tensor& a, double p, const Grads& g, const Node&) {
  if (p == 0.0) return {zeros_like(g[0])};
  if (p == 1.0) return {g[0]};
  return {sg::mul(g[0], sg::mul(sg::pow(a, p - 1.0), p))};
}

// y = a^2:  da = 2 g a
Grads square(const Tensor& a, const Grads& g, const Node&) { return {sg::mul(g[0], sg::mul(a, 2.0))}; }

// y = |a|:  da = g sign(a)   (0 at a = 0)
Grads abs(const Tensor& a, const Grads& g, const Node&) { return {masked(g[0], a, k::Sign{})}; }

// y = tanh a:  da = g (1 - y^2)
Grads tanh(const Tensor& y, const Grads& g, const Node&) {
  return {sg::mul(g[0], sg::add(sg::neg(sg::mul(y, y)), 1.0))};
}

// y = 1 / (1 + e^-a):  da = g y (1 - y)
Grads sigmoid(const Tensor& y, const Grads& g, const Node&) {
  return {sg::mul(g[0], sg::mul(y, sg::add(sg::neg(y), 1.0)))};
}

// y = ln(1 + e^a):  da = g sigmoid(a)
Grads softplus(const Tensor& a, const Grads& g, const Node&) { return {sg::mul(g[0], sg::sigmoid(a))}; }

// y = a / (1 + |a|):  da = g / (1 + |a|)^2
Grads softsign(const Tensor& a, const Grads& g, const Node&) {
  return {sg::div(g[0], sg::square(sg::add(sg::abs(a), 1.0)))};
}

// y = a > 0 ? a : alpha a:  da = g (a > 0 ? 1 : alpha)
Grads leaky_relu(const Tensor& a, double alpha, const Grads& g, const Node&) {
  return {masked(g[0], a, k::LeakyReluSlope{alpha})};
}

// y = min(max(a, lo), hi):  da = g (lo < a < hi)
Grads clamp(const Tensor& a, double lo, double hi, const Grads& g, const Node&) {
  return {masked(g[0], a, k::ClampMask{lo, hi})};
}

// y = cond ? a : b:  da = cond ? g : 0,  db = cond ? 0 : g   (cond gets none)
Grads where(const Tensor& cond, const Shape& sa, const Shape& sb, const Grads& g, const Node& n) {
  Tensor z = zeros_like(g[0]);
  return {if_needed(n, 0, [&] { return sum_to(sg::where(cond, g[0], z), sa); }),
          if_needed(n, 1, [&] { return sum_to(sg::where(cond, z, g[0]), sb); })};
}

// y = nan_to_num(a):  da = g where a is finite, else 0
Grads nan_to_num(const Tensor& a, const Grads& g, const Node&) { return {masked(g[0], a, k::IsFinite{})}; }

// ---- reductions --------------------------------------------------------------------------

// y = sum of a over some dims:  da = g broadcast back (keep: y's shape with the dims as 1)
Grads sum(const Shape& keep, const Shape& sa, const Grads& g, const Node&) {
  return {sg::expand(sg::reshape(g[0], keep), sa)};
}

// ---- shape and copies --------------------------------------------------------------------
// Each is linear and its backward is its adjoint, itself one of these ops.

// da = reshape(g, a's shape)
Grads reshape(const Shape& sa, const Grads& g, const Node&) { return {sg::reshape(g[0], sa)}; }

// da = permute(g, the inverse permutation)
Grads permute(const std::vector<int64_t>& inverse, const Grads& g, const Node&) { return {sg::permute(g[0], inverse)}; }

// da = g summed over the expanded dims
Grads expand(const Shape& sa, const Grads& g, const Node&) { return {sum_to(g[0], sa)}; }

// da = g scattered into zeros of a's shape (slice_backward)
Grads slice(const Shape& sa, int64_t dim, int64_t start, int64_t end, int64_t step, const Grads& g, const Node&) {
  return {sg::slice_backward(g[0], sa, dim, start, end, step)};
}

// slice_backward is linear; its adjoint is the slice
Grads slice_backward(int64_t dim, int64_t start, int64_t end, int64_t step, const Grads& g, const Node&) {
  return {sg::slice(g[0], dim, start, end, step)};
}

// da_i = the slice of g that input i filled
Grads cat(int64_t dim, const std::vector<int64_t>& sizes, const Grads& g, const Node& n) {
  Grads r;
  int64_t at = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    r.push_back(if_needed(n, i, [&] { return sg::slice(g[0], dim, at, at + sizes[i]); }));
    at += sizes[i];
  }
  return r;
}

// da = flip(g, the same dims)
Grads flip(const std::vector<int64_t>& dims, const Grads& g, const Node&) { return {sg::flip(g[0], dims)}; }

// da = g cast back to a's dtype
Grads cast(DType src, const Grads& g, const Node&) { return {sg::cast(g[0], src)}; }

// da = g
Grads clone(const Grads& g, const Node&) { return {g[0]}; }

// da = g moved back to a's device
Grads to_device(Device src, const Grads& g, const Node&) { return {sg::to_device(g[0], src)}; }

// ---- matmul ------------------------------------------------------------------------------

// y = a @ b (batched over leading dims):  da = g @ b^T,  db = a^T @ g
Grads matmul(const Tensor& a, const Tensor& b, const Grads& g, const Node& n) {
  return {if_needed(n, 0, [&] { return sg::matmul(g[0], transpose(b, -1, -2)); }),
          if_needed(n, 1, [&] { return sg::matmul(transpose(a, -1, -2), g[0]); })};
}

// ---- the convolution family: closed under differentiation ---------------------------------

// y = conv2d(x, w):  dx = conv_transpose2d(g, w),  dw = conv2d_weight_grad(g, x)
Grads conv2d(const Tensor& x, const Tensor& w, Pair stride, Pair padding, int64_t groups, const Grads& g,
             const Node& n) {
  const Tensor& dy = g[0];
  return {if_needed(n, 0,
                    [&] {
                      const Pair op =
                          matching_output_padding(x.shape(), dy.shape(), w.size(2), w.size(3), stride, padding);
                      return sg::conv_transpose2d(dy, w, stride, padding, op, groups);
                    }),
          wants_weight_grad(n, 1) ? sg::conv2d_weight_grad(dy, x, w.shape(), stride, padding, groups) : Tensor()};
}

// y = conv_transpose2d(x, w), the adjoint in x of conv2d(., w) from y's grid to x's grid:
//   dx = conv2d(g, w),  dw = conv2d_weight_grad(x, g)
Grads conv_transpose2d(const Tensor& x, const Tensor& w, Pair stride, Pair padding, int64_t groups, const Grads& g,
                       const Node& n) {
  return {if_needed(n, 0, [&] { return sg::conv2d(g[0], w, stride, padding, groups); }),
          wants_weight_grad(n, 1) ? sg::conv2d_weight_grad(x, g[0], w.shape(), stride, padding, groups) : Tensor()};
}

// dw = conv2d_weight_grad(dy, x) is bilinear; with G the gradient of dw (shaped like w):
//   d(dy) = conv2d(x, G),  d(x) = conv_transpose2d(dy, G)
Grads conv2d_weight_grad(const Tensor& dy, const Tensor& x, Pair stride, Pair padding, int64_t groups, const Grads& g,
                         const Node& n) {
  const Tensor& G = g[0];
  return {if_needed(n, 0, [&] { return sg::conv2d(x, G, stride, padding, groups); }), if_needed(n, 1, [&] {
            const Pair op = matching_output_padding(x.shape(), dy.shape(), G.size(2), G.size(3), stride, padding);
            return sg::conv_transpose2d(dy, G, stride, padding, op, groups);
          })};
}

// ---- upfirdn2d ---------------------------------------------------------------------------

// y = upfirdn2d(x, f, up, down, pad) is linear in x; its adjoint is upfirdn2d again with up
// and down swapped, the filter flipped and the pads
//   {fw - x0 - 1, W*upx - Wo*downx + x0 - upx + 1, fh - y0 - 1, H*upy - Ho*downy + y0 - upy + 1}.
// f is a constant (no gradient).
Grads upfirdn2d(const Tensor& f, const UpFirDn& p, const Shape& x_shape, const Shape& y_shape, const Grads& g,
                const Node&) {
  const int64_t fh = f.size(0), fw = f.dim() == 1 ? f.size(0) : f.size(1);
  const int64_t H = x_shape[2], W = x_shape[3], Ho = y_shape[2], Wo = y_shape[3];
  UpFirDn q;
  q.upx = p.downx, q.upy = p.downy, q.downx = p.upx, q.downy = p.upy;
  q.pad = {fw - p.pad[0] - 1, W * p.upx - Wo * p.downx + p.pad[0] - p.upx + 1, fh - p.pad[2] - 1,
           H * p.upy - Ho * p.downy + p.pad[2] - p.upy + 1};
  q.gain = p.gain;
  q.flip_filter = !p.flip_filter;
  Tensor dx = sg::upfirdn2d(g[0], f, q);
  SG_CHECK(dx.shape() == x_shape, "upfirdn2d backward", "gradient shape ", shape_str(dx.shape()), " != input shape ",
           shape_str(x_shape), " (up (", p.upx, ", ", p.upy, "), down (", p.downx, ", ", p.downy, "), pad (", p.pad[0],
           ", ", p.pad[1], ", ", p.pad[2], ", ", p.pad[3], "))");
  return {dx};
}

// ---- pooling --------------------------------------------------------------------------

// avg_pool2d is linear:  dx = avg_pool2d_backward(g)  (its adjoint)
Grads avg_pool2d(const Shape& x_shape, Pair kernel, Pair stride, Pair padding, bool count_include_pad, const Grads& g,
                 const Node&) {
  return {sg::avg_pool2d_backward(g[0], x_shape, kernel, stride, padding, count_include_pad)};
}

// avg_pool2d_backward is linear:  d dy = avg_pool2d(g)  (the adjoint of the adjoint)
Grads avg_pool2d_backward(Pair kernel, Pair stride, Pair padding, bool count_include_pad, const Grads& g, const Node&) {
  return {sg::avg_pool2d(g[0], kernel, stride, padding, count_include_pad)};
}

// y = the element each window of x chooses (x's max), of x or of `values`; the choice is
// piecewise constant:  d(picked) = max_pool2d_backward(g, x)  (g scattered to the choices)
Grads max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, const Grads& g, const Node&) {
  return {sg::max_pool2d_backward(g[0], x, kernel, stride, padding)};
}

// dx = dy scattered to x's choices, linear in dy:  d dy = g gathered at the same choices,
// max_pool2d(x, values = g); x gets none (a constant)
Grads max_pool2d_backward(const Tensor& x, Pair kernel, Pair stride, Pair padding, const Grads& g, const Node&) {
  return {sg::max_pool2d(x, kernel, stride, padding, g[0])};
}

// ---- bias_act ----------------------------------------------------------------------------

// y = clamp(act(x + b) gain):  dx = bias_act_grad(g, y),  db = dx summed over every dim but
// `dim`. The gradient reads y (gain > 0, alpha >= 0: y > 0 exactly where x + b > 0).
Grads bias_act(const Tensor& y, Act act, double alpha, double gain, double clamp, int64_t dim, const Shape& b_shape,
               const Grads& g, const Node& n) {
  Tensor dx = sg::bias_act_grad(g[0], y, act, alpha, gain, clamp);
  Tensor db;
  if (n.needs_grad(1)) {
    std::vector<int64_t> dims;
    for (int64_t i = 0; i < y.dim(); ++i)
      if (i != dim) dims.push_back(i);
    db = sg::reshape(dims.empty() ? dx : sg::sum(dx, dims), b_shape);
  }
  return {n.needs_grad(0) ? dx : Tensor(), db};
}

// dx = bias_act_grad(dy, y) is linear in dy with a piecewise-constant mask of y:
//   d(dy) = bias_act_grad(g, y),  d(y) = 0
Grads bias_act_grad(const Tensor& y, Act act, double alpha, double gain, double clamp, const Grads& g, const Node& n) {
  return {if_needed(n, 0, [&] { return sg::bias_act_grad(g[0], y, act, alpha, gain, clamp); }), Tensor()};
}

// ---- the demodulation's weight term and the fused modulated conv ---------------------------

// y[c, o] = sum_{ky,kx} w[o, c, ky, kx]^2:  dw = 2 w g^T[:, :, None, None], one broadcast mul
// over the weight (2 g^T is [O, C], small): the bits of square's and sum's backwards, g (2 w),
// since doubling is exact.
Grads conv_weight_sq_sums(const Tensor& w, const Grads& g, const Node&) {
  const Tensor g2 = sg::mul(sg::transpose(g[0], 0, 1), 2.0);  // [O, C]
  return {sg::mul(w, sg::reshape(g2, {w.size(0), w.size(1), 1, 1}))};
}

// The fused op computes, per image n (one grouped conv, the weight modulated per image),
//   y[n] = conv2d(x[n], w * s[n] * d[n]),  d = rsqrt(s^2 @ sum_{kh,kw}(w^2)^T + eps)   (demodulate)
// which is the same function as the modulate-activations form
//   y = d[:, :, None, None] * z,   z = conv2d(x * s[:, :, None, None], w)          (groups = 1)
// Its gradient is written in that form, so every conv in it shares one weight across the batch
// (groups = 1: the tensor-core implicit GEMM on CUDA, one batched GEMM on the CPU) instead of
// N per-image convs. For the cotangent dy, with u = dy * d and wsq = sum_{kh,kw} w^2 [O, C]:
//   gx      = conv_transpose2d(u, w)                     the gradient of x * s
//   dx      = gx * s
//   dstyles = sum_{h,w}(gx * x)        + 2 s * (dq @ wsq)
//   dweight = conv2d_weight_grad(u, x * s) + 2 w * (dq^T @ s^2)[:, :, None, None]
// where dq = -d^3 / 2 * sum_{h,w}(dy * z) = -d^2 / 2 * sum_{h,w}(dy * y) is the gradient of the
// sum under the rsqrt (the demodulation's terms), read from the op's output y (handed in
// re-attached to this node, autograd::record_with_output: no second forward conv for z), and wsq
// comes from conv_weight_sq_sums (transposed). Every term is a differentiable op, y included, so
// the second derivative is the composite's too.
// The up layers (p.up > 1; p.padding is then the transposed conv's) have z =
// conv_transpose2d(x * s, w^T, stride up) instead, whose adjoints swap: gx = conv2d(u, w^T,
// stride up) and dweight's conv term = conv2d_weight_grad(x * s, u)^T.
Grads modulated_conv2d_fused(const Tensor& x, const Tensor& weight, const Tensor& styles, const ModConv& p,
                             const Tensor& y, const Grads& g, const Node& n) {
  const Tensor& dy = g[0];
  const bool need_x = n.needs_grad(0), need_weight = n.needs_grad(1), need_styles = n.needs_grad(2);
  const int64_t N = x.size(0), C = x.size(1), O = weight.size(0);
  const bool up = p.up > 1;
  const std::array<int64_t, 2> one{1, 1}, stride{p.up, p.up}, pad{p.padding, p.padding};
  const Tensor wt = up ? sg::transpose(weight, 0, 1) : Tensor();  // [C, O, kh, kw]
  const Tensor s4 = sg::reshape(styles, {N, C, 1, 1});
  Tensor u = dy, d, wsq_t;
  if (p.demodulate) {
    wsq_t = sg::conv_weight_sq_sums(weight);                               // [C, O]
    d = sg::rsqrt(sg::add(sg::matmul(sg::square(styles), wsq_t), p.eps));  // [N, O]
    u = sg::mul(dy, sg::reshape(d, {N, O, 1, 1}));
  }
  Grads out(3);
  if (need_x || need_styles) {
    const Tensor gx = up ? sg::conv2d(u, wt, stride, pad, 1)
                         : sg::conv_transpose2d(u, weight, one, pad, {0, 0}, 1);  // stride 1: lands on H x W
    if (need_x) out[0] = sg::mul(gx, s4);
    if (need_styles) out[2] = sg::sum(sg::mul(gx, x), {2, 3});
  }
  if (need_weight) {
    const Tensor xs = sg::mul(x, s4);
    out[1] = up ? sg::transpose(sg::conv2d_weight_grad(xs, u, wt.shape(), stride, pad, 1), 0, 1)
                : sg::conv2d_weight_grad(u, xs, weight.shape(), one, pad, 1);
  }
  if (p.demodulate && (need_weight || need_styles)) {
    const Tensor dq = sg::mul(sg::sum(sg::mul(dy, y), {2, 3}), sg::mul(sg::square(d), -0.5));  // [N, O]
    if (need_styles)
      out[2] = sg::add(out[2], sg::mul(sg::mul(styles, 2.0), sg::matmul(dq, sg::transpose(wsq_t, 0, 1))));
    if (need_weight) {
      const Tensor dwsq = sg::matmul(sg::transpose(dq, 0, 1), sg::square(styles));  // [O, C]
      out[1] = sg::add(out[1], sg::mul(sg::mul(weight, 2.0), sg::reshape(dwsq, {O, C, 1, 1})));
    }
  }
  return out;
}

}  // namespace sg::derivatives
