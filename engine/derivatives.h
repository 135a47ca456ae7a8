// The backward rules of every differentiable op, one function each (engine/derivatives.cpp),
// in the order of docs/architecture.md's table "Every op and its backward".
//
// A rule takes what its op saved (inputs, shapes, parameters, or the op's output y), then
// the gradients of the op's outputs `g` and the node `n` (n.needs_grad(i): does input i want
// a gradient?), and returns one gradient per input (undefined: none). Rules are written with
// the public differentiable ops only, so every gradient can be differentiated again (the
// double-backward rule). The op files (engine/ops/*.cpp) compute the forward and record the
// rule with its saved values bound first:
//   record("add", {a, b}, {y}, std::bind_front(derivatives::add, a.shape(), b.shape()));
// and, for a rule that reads the op's output, record_with_output (y is passed re-attached):
//   record_with_output("exp", {a}, y, derivatives::exp);
//
// Internal to the engine (not installed).
#pragma once
#include <array>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace sg::derivatives {

using Grads = std::vector<Tensor>;
using autograd::Node;
using Pair = std::array<int64_t, 2>;

// ---- elementwise (engine/ops/elementwise.cpp) -------------------------------------------
Grads add(const Shape& sa, const Shape& sb, const Grads& g, const Node& n);
Grads sub(const Shape& sa, const Shape& sb, const Grads& g, const Node& n);
Grads mul(const Tensor& a, const Tensor& b, const Grads& g, const Node& n);
Grads div(const Tensor& a, const Tensor& b, const Grads& g, const Node& n);
Grads add_scalar(const Grads& g, const Node& n);
Grads mul_scalar(double s, const Grads& g, const Node& n);
Grads neg(const Grads& g, const Node& n);
Grads exp(const Tensor& y, const Grads& g, const Node& n);
Grads log(const Tensor& a, const Grads& g, const Node& n);
Grads sqrt(const Tensor& y, const Grads& g, const Node& n);
Grads rsqrt(const Tensor& y, const Grads& g, const Node& n);
Grads pow(const Tensor& a, double p, const Grads& g, const Node& n);
Grads square(const Tensor& a, const Grads& g, const Node& n);
Grads abs(const Tensor& a, const Grads& g, const Node& n);
Grads tanh(const Tensor& y, const Grads& g, const Node& n);
Grads sigmoid(const Tensor& y, const Grads& g, const Node& n);
Grads softplus(const Tensor& a, const Grads& g, const Node& n);
Grads softsign(const Tensor& a, const Grads& g, const Node& n);
Grads leaky_relu(const Tensor& a, double alpha, const Grads& g, const Node& n);
Grads clamp(const Tensor& a, double lo, double hi, const Grads& g, const Node& n);
Grads where(const Tensor& cond, const Shape& sa, const Shape& sb, const Grads& g, const Node& n);
Grads nan_to_num(const Tensor& a, const Grads& g, const Node& n);

// ---- reductions (engine/ops/reduce.cpp) -------------------------------------------------
Grads sum(const Shape& keep, const Shape& sa, const Grads& g, const Node& n);

// ---- shape and copies (engine/ops/shape.cpp, transfer.cpp) ------------------------------
Grads reshape(const Shape& sa, const Grads& g, const Node& n);
Grads permute(const std::vector<int64_t>& inverse, const Grads& g, const Node& n);
Grads expand(const Shape& sa, const Grads& g, const Node& n);
Grads slice(const Shape& sa, int64_t dim, int64_t start, int64_t end, int64_t step, const Grads& g, const Node& n);
Grads slice_backward(int64_t dim, int64_t start, int64_t end, int64_t step, const Grads& g, const Node& n);
Grads cat(int64_t dim, const std::vector<int64_t>& sizes, const Grads& g, const Node& n);
Grads flip(const std::vector<int64_t>& dims, const Grads& g, const Node& n);
Grads cast(DType src, const Grads& g, const Node& n);
Grads clone(const Grads& g, const Node& n);
Grads to_device(Device src, const Grads& g, const Node& n);

// ---- matmul (engine/ops/matmul.cpp) -----------------------------------------------------
Grads matmul(const Tensor& a, const Tensor& b, const Grads& g, const Node& n);

// ---- the convolution family (engine/ops/conv.cpp) ---------------------------------------
Grads conv2d(const Tensor& x, const Tensor& w, Pair stride, Pair padding, int64_t groups, const Grads& g,
             const Node& n);
Grads conv_transpose2d(const Tensor& x, const Tensor& w, Pair stride, Pair padding, int64_t groups, const Grads& g,
                       const Node& n);
Grads conv2d_weight_grad(const Tensor& dy, const Tensor& x, Pair stride, Pair padding, int64_t groups, const Grads& g,
                         const Node& n);

// ---- upfirdn2d (engine/ops/upfirdn2d.cpp) -----------------------------------------------
Grads upfirdn2d(const Tensor& f, const UpFirDn& p, const Shape& x_shape, const Shape& y_shape, const Grads& g,
                const Node& n);

// ---- pooling (engine/ops/pool.cpp): x is saved detached (it only chooses) --------------
Grads avg_pool2d(const Shape& x_shape, Pair kernel, Pair stride, Pair padding, bool count_include_pad, const Grads& g,
                 const Node& n);
Grads avg_pool2d_backward(Pair kernel, Pair stride, Pair padding, bool count_include_pad, const Grads& g,
                          const Node& n);
Grads max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, const Grads& g, const Node& n);
Grads max_pool2d_backward(const Tensor& x, Pair kernel, Pair stride, Pair padding, const Grads& g, const Node& n);

// ---- bias_act (engine/ops/bias_act.cpp): y is saved detached (its gradient is zero) ------
Grads bias_act(const Tensor& y, Act act, double alpha, double gain, double clamp, int64_t dim, const Shape& b_shape,
               const Grads& g, const Node& n);
Grads bias_act_grad(const Tensor& y, Act act, double alpha, double gain, double clamp, const Grads& g, const Node& n);

// ---- the demodulation's weight term and the fused modulated conv, both devices' fast path
// (engine/ops/modulated_conv.cpp) ----------------------------------------------------------
// y[c, o] = sum_{ky, kx} w[o, c, ky, kx]^2:  dw = 2 w g[c, o] (g transposed, broadcast over taps)
Grads conv_weight_sq_sums(const Tensor& w, const Grads& g, const Node& n);
Grads modulated_conv2d_fused(const Tensor& x, const Tensor& weight, const Tensor& styles, const ModConv& p,
                             const Tensor& y, const Grads& g, const Node& n);

}  // namespace sg::derivatives
