// The differentiable op set. Every op: checks its inputs (sg::Error naming the op, shapes,
// dtypes, devices), dispatches on device to kernels/, and records a backward made of these
// same ops, so every gradient is differentiable again.
#pragma once
#include <array>
#include <optional>
#include <vector>

#include "engine/autograd.h"
#include "engine/tensor.h"

namespace sg {

// ---- elementwise (engine/ops/elementwise.cpp), numpy broadcasting ------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor rsqrt(const Tensor& a);
Tensor pow(const Tensor& a, double p);
Tensor square(const Tensor& a);
Tensor abs(const Tensor& a);
Tensor sign(const Tensor& a);  // not differentiable (zero gradient)
Tensor tanh(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor softplus(const Tensor& a);
Tensor softsign(const Tensor& a);  // a / (1 + |a|)
Tensor leaky_relu(const Tensor& a, double alpha = 0.2);
Tensor relu(const Tensor& a);
Tensor clamp(const Tensor& a, double lo, double hi);  // gradient passes where lo < a < hi
// Comparisons return 0/1 in the inputs' dtype and have no gradient.
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
// where(cond, a, b): cond != 0 picks a. Differentiable in a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// Replaces NaN by nan, +inf by posinf, -inf by neginf; gradient is zero where a is not finite.
// Defaults as torch.nan_to_num: NaN -> 0, +inf / -inf -> the dtype's largest / lowest
// finite value.
Tensor nan_to_num(const Tensor& a, double nan = 0.0, std::optional<double> posinf = std::nullopt,
                  std::optional<double> neginf = std::nullopt);
// a + (b - a) * t
Tensor lerp(const Tensor& a, const Tensor& b, const Tensor& t);
Tensor lerp(const Tensor& a, const Tensor& b, double t);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return add(a, -b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return mul(a, 1.0 / b); }
inline Tensor operator+(double a, const Tensor& b) { return add(b, a); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
inline Tensor operator-(double a, const Tensor& b) { return add(neg(b), a); }

// ---- reductions (engine/ops/reduce.cpp) --------------------------------------------------
// dims may be negative; empty dims = all dims.
Tensor sum(const Tensor& a, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& a, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Sums a broadcast gradient back to `shape` (the inverse of expand).
Tensor sum_to(const Tensor& a, const Shape& shape);

// ---- shape (engine/ops/shape.cpp) ----------------------------------------------------------
Tensor reshape(const Tensor& a, const Shape& shape);
Tensor permute(const Tensor& a, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& a, int64_t d0, int64_t d1);
Tensor expand(const Tensor& a, const Shape& shape);  // numpy broadcast to shape
Tensor unsqueeze(const Tensor& a, int64_t dim);
Tensor squeeze(const Tensor& a, int64_t dim);
// Elements start, start+step, ... < end along dim (end clipped to the size).
Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
// The adjoint of slice: zeros of `shape` with `a` written at the slice positions.
Tensor slice_backward(const Tensor& a, const Shape& shape, int64_t dim, int64_t start, int64_t end, int64_t step);
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
Tensor repeat(const Tensor& a, const std::vector<int64_t>& repeats);
Tensor flip(const Tensor& a, const std::vector<int64_t>& dims);
Tensor cast(const Tensor& a, DType t);
// Copies to another device (differentiable: the gradient goes back to the source device).
Tensor to_device(const Tensor& a, Device d);
// Overwrites dst's values with src's (same shape and dtype, any devices), in place and
// outside autograd: for optimizers, EMA, checkpoint loading.
void copy_into(const Tensor& dst, const Tensor& src);
Tensor contiguous_copy(const Tensor& a);  // differentiable copy

// ---- matmul (engine/ops/matmul.cpp) ------------------------------------------------------
// [M,K]x[K,N] or batched [B,M,K]x[B,K,N].
Tensor matmul(const Tensor& a, const Tensor& b);
// x [N, in] @ w[out, in]^T + b[out] (b may be undefined).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

// ---- convolution (engine/ops/conv.cpp) ---------------------------------------------------
// x [N, Cin, H, W], w [Cout, Cin/groups, kh, kw] -> [N, Cout, Ho, Wo]; cross-correlation.
Tensor conv2d(const Tensor& x, const Tensor& w, std::array<int64_t, 2> stride = {1, 1},
              std::array<int64_t, 2> padding = {0, 0}, int64_t groups = 1);
// x [N, Cin, H, W], w [Cin, Cout/groups, kh, kw] -> [N, Cout, Ho, Wo],
// Ho = (H-1)*stride - 2*padding + kh + output_padding.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, std::array<int64_t, 2> stride = {1, 1},
                        std::array<int64_t, 2> padding = {0, 0}, std::array<int64_t, 2> output_padding = {0, 0},
                        int64_t groups = 1);
// The weight gradient of conv2d: dw[co, ci, i, j] = sum dy[n, co, y, x] * x[n, g*Cin/g + ci,
// y*s - p + i, x*s - p + j]. Bilinear in (dy, x); its own backward is conv2d and
// conv_transpose2d again.
Tensor conv2d_weight_grad(const Tensor& dy, const Tensor& x, const Shape& weight_shape, std::array<int64_t, 2> stride,
                          std::array<int64_t, 2> padding, int64_t groups);

// ---- upfirdn2d (engine/ops/upfirdn2d.cpp) --------------------------------------------------
// Upsample (insert zeros), pad (negative crops), FIR filter, downsample, times gain.
// f: 2-D [fh, fw] or 1-D [k] (separable: outer(f, f)). pad = {x0, x1, y0, y1}.
// flip_filter=false gives a true convolution (the filter flipped), as in StyleGAN2.
// The filter is a constant (no gradient).
struct UpFirDn {
  int64_t upx = 1, upy = 1, downx = 1, downy = 1;
  std::array<int64_t, 4> pad = {0, 0, 0, 0};
  double gain = 1.0;
  bool flip_filter = false;
};
Tensor upfirdn2d(const Tensor& x, const Tensor& f, const UpFirDn& p);
// StyleGAN2 conveniences (pad as in stylegan2-ada: keeps the image centred).
Tensor upsample2d(const Tensor& x, const Tensor& f, int64_t up = 2);
Tensor downsample2d(const Tensor& x, const Tensor& f, int64_t down = 2);
// The separable [1,3,3,1] filter normalised to sum 1 (1-D, 4 taps).
Tensor fir_filter(const std::vector<double>& taps = {1, 3, 3, 1}, DType t = DType::f32);

// ---- pooling (engine/ops/pool.cpp): PyTorch's max_pool2d / avg_pool2d (ceil_mode=False) ----
// x [N, C, H, W] -> [N, C, Ho, Wo], Ho = (H + 2 padding - kernel) / stride + 1; padding at
// most half the kernel. Kernels for the CPU and CUDA (kernels/pool2d.h).
// The max of each window (padding never wins; ties: the first in row-major order). With
// `values` (x's shape): the element of values at that position, the gradient going to values
// (x only chooses) — the adjoint of max_pool2d_backward in dy.
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0}, const Tensor& values = Tensor());
// dy [N, C, Ho, Wo] scattered to the positions max_pool2d chose in x (a constant: no gradient).
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& x, std::array<int64_t, 2> kernel,
                           std::array<int64_t, 2> stride, std::array<int64_t, 2> padding);
// The mean of each window: divided by kernel[0] * kernel[1] (count_include_pad) or by the
// number of in-image positions (count_include_pad = false: TensorFlow's average pooling).
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0}, bool count_include_pad = true);
// The adjoint of avg_pool2d: dy [N, C, Ho, Wo] -> x_shape.
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, std::array<int64_t, 2> kernel,
                           std::array<int64_t, 2> stride, std::array<int64_t, 2> padding, bool count_include_pad);

// ---- bias_act (engine/ops/bias_act.cpp) -----------------------------------------------------
enum class Act { linear, relu, lrelu };
// y = clamp(act(x + b) * gain, -clamp, clamp); b [C] broadcast along dim (undefined: none);
// clamp < 0 disables clamping.
Tensor bias_act(const Tensor& x, const Tensor& b, Act act = Act::linear, double alpha = 0.2, double gain = 1.0,
                double clamp = -1.0, int64_t dim = 1);
// dx = dy * gain * act'(y) * (|y| < clamp) — y the forward's output. Linear in dy; the mask
// is piecewise constant, so its backward is itself (in dy) and zero (in y).
Tensor bias_act_grad(const Tensor& dy, const Tensor& y, Act act, double alpha, double gain, double clamp);

// ---- modulated convolution (engine/ops/modulated_conv.cpp) ---------------------------------
struct ModConv {
  bool demodulate = true;
  int64_t up = 1, down = 1;  // 1 or 2
  int64_t padding = 0;
  bool fused = true;       // grouped ("fused") path, or modulate-activations path
  Tensor resample_filter;  // used when up or down is 2 (default: fir_filter())
  double eps = 1e-8;
};
// x [N, Cin, H, W], weight [Cout, Cin, k, k], styles [N, Cin].
Tensor modulated_conv2d(const Tensor& x, const Tensor& weight, const Tensor& styles, const ModConv& p = {});
// The demodulation's weight term, laid out for s^2 @ it: weight [O, C, kh, kw] -> [C, O],
//   out[c, o] = sum_{ky, kx} weight[o, c, ky, kx]^2
// (the numbers of transpose(sum(square(weight), {2, 3}), 0, 1), as one pass and one autograd
// node whose backward, 2 weight out_grad^T, is one broadcast mul).
Tensor conv_weight_sq_sums(const Tensor& weight);
// conv2d with FIR up/down as in StyleGAN2 (conv2d_resample): groups, up 2 via transposed
// conv + filter, down 2 via filter + strided conv.
// Weight orientation: with up = 1 (and for 1x1 weights) the result is conv2d's
// cross-correlation with w. With up = 2 and k > 1 it is conv_transpose2d with w as given,
// which is a true convolution (w flipped) of the zero-upsampled input: what
// stylegan2-ada-pytorch's modulated_conv2d does (flip_weight = (up == 1)). Learned weights
// absorb the difference; weights copied between the two paths must be flipped.
Tensor conv2d_resample(const Tensor& x, const Tensor& w, const Tensor& f, int64_t up, int64_t down, int64_t padding,
                       int64_t groups);

// ---- normalisation and GAN utilities (engine/ops/gan.cpp) -----------------------------------
// x * rsqrt(mean(x^2, dim) + eps)
Tensor pixel_norm(const Tensor& x, int64_t dim = 1, double eps = 1e-8);
// Appends num_channels feature maps of the per-group standard deviation (StyleGAN2 D).
Tensor minibatch_stddev(const Tensor& x, int64_t group_size = 4, int64_t num_channels = 1);

// ---- random (engine/random.cpp): Philox4x32-10, counter based --------------------------------
struct Rng {
  uint64_t seed = 0;
  uint64_t offset = 0;  // advanced by every draw: a draw of n numbers uses counters offset..
  explicit Rng(uint64_t s = 0, uint64_t o = 0) : seed(s), offset(o) {}
};
Tensor randn(const Shape& s, Rng& g, DType t = DType::f32, Device d = Device::cpu());
Tensor rand(const Shape& s, Rng& g, DType t = DType::f32, Device d = Device::cpu());

}  // namespace sg
