// The op table (see optable.h). Adding an op means adding its entry here.
#include "optable.h"

#include <cmath>

using namespace sg;

namespace sgtest {

namespace {

Input X(Shape s) { return {std::move(s), Kind::normal, {}}; }
Input P(Shape s) { return {std::move(s), Kind::positive, {}}; }
Input A(Shape s) { return {std::move(s), Kind::away_from_zero, {}}; }
Input K(Tensor t) { return {t.shape(), Kind::constant, t}; }

Tensor fir4(DType t = DType::f64) { return fir_filter({1, 3, 3, 1}, t); }
Tensor fir4(const Tensor& like) { return fir4(like.dtype()).to(like.device()); }
// Distinct values (a permutation of a grid, no ties for max_pool2d to break).
Tensor distinct(Shape s) {
  const int64_t n = numel_of(s);
  std::vector<double> v((size_t)n);
  for (int64_t i = 0; i < n; ++i) v[(size_t)i] = 0.1 * (double)((i * 37) % n) - 0.05 * (double)n;
  return from_vector(v, s, DType::f64);
}
Tensor cond_mask(Shape s) {
  std::vector<double> v(numel_of(s));
  for (size_t i = 0; i < v.size(); ++i) v[i] = (i * 7 % 3) == 0;
  return from_vector(v, s, DType::f64);
}

std::vector<OpEntry> build_table() {
  using V = const std::vector<Tensor>&;
  std::vector<OpEntry> t;
  auto binary = [&](const char* name, Tensor (*f)(const Tensor&, const Tensor&), Kind kb) {
    Input b1{{3, 4}, kb, {}}, b2{{4}, kb, {}}, b3{{2, 1, 4}, kb, {}};
    t.push_back({name,
                 {{"same shape", {X({3, 4}), b1}, [f](V x) { return f(x[0], x[1]); }},
                  {"broadcast row", {X({2, 3, 4}), b2}, [f](V x) { return f(x[0], x[1]); }},
                  {"broadcast both", {X({3, 1}), b3}, [f](V x) { return f(x[0], x[1]); }}}});
  };
  binary(
      "add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, Kind::normal);
  binary(
      "sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, Kind::normal);
  binary(
      "mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, Kind::normal);
  binary(
      "div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, Kind::positive);
  auto unary = [&](const char* name, Fn f, Kind k) {
    t.push_back({name,
                 {{"2-D", {Input{{3, 5}, k, {}}}, f},
                  {"odd 3-D", {Input{{2, 3, 7}, k, {}}}, f},
                  {"scalar", {Input{{}, k, {}}}, f}}});
  };
  unary(
      "add_scalar", [](V x) { return add(x[0], 0.75); }, Kind::normal);
  unary(
      "mul_scalar", [](V x) { return mul(x[0], -1.5); }, Kind::normal);
  unary(
      "neg", [](V x) { return neg(x[0]); }, Kind::normal);
  unary(
      "exp", [](V x) { return exp(x[0]); }, Kind::normal);
  unary(
      "log", [](V x) { return log(x[0]); }, Kind::positive);
  unary(
      "sqrt", [](V x) { return sqrt(x[0]); }, Kind::positive);
  unary(
      "rsqrt", [](V x) { return rsqrt(x[0]); }, Kind::positive);
  unary(
      "pow", [](V x) { return pow(x[0], 2.5); }, Kind::positive);
  unary(
      "pow_negative", [](V x) { return pow(x[0], -1.5); }, Kind::positive);
  unary(
      "square", [](V x) { return square(x[0]); }, Kind::normal);
  unary(
      "abs", [](V x) { return abs(x[0]); }, Kind::away_from_zero);
  unary(
      "tanh", [](V x) { return tanh(x[0]); }, Kind::normal);
  unary(
      "sigmoid", [](V x) { return sigmoid(x[0]); }, Kind::normal);
  unary(
      "softplus", [](V x) { return softplus(x[0]); }, Kind::normal);
  unary(
      "softsign", [](V x) { return softsign(x[0]); }, Kind::away_from_zero);
  unary(
      "leaky_relu", [](V x) { return leaky_relu(x[0], 0.2); }, Kind::away_from_zero);
  unary(
      "relu", [](V x) { return relu(x[0]); }, Kind::away_from_zero);
  unary(
      "clamp", [](V x) { return clamp(mul(x[0], 0.5), -0.3, 0.4); }, Kind::away_from_zero);
  unary(
      "nan_to_num", [](V x) { return nan_to_num(x[0]); }, Kind::normal);
  t.push_back({"where",
               {{"broadcast", {K(cond_mask({3, 4})), X({3, 4}), X({4})}, [](V x) { return where(x[0], x[1], x[2]); }},
                {"same", {K(cond_mask({2, 5})), X({2, 5}), X({2, 5})}, [](V x) { return where(x[0], x[1], x[2]); }}}});
  t.push_back({"lerp",
               {{"tensor t", {X({3, 4}), X({3, 4}), X({3, 1})}, [](V x) { return lerp(x[0], x[1], x[2]); }},
                {"scalar t", {X({2, 5}), X({2, 5})}, [](V x) { return lerp(x[0], x[1], 0.3); }}}});

  // reductions
  t.push_back({"sum",
               {{"all", {X({3, 4})}, [](V x) { return sum(x[0]); }},
                {"dim 1 keepdim", {X({2, 3, 5})}, [](V x) { return sum(x[0], {1}, true); }},
                {"dims 0,2", {X({2, 3, 5})}, [](V x) {
                   return sum(x[0], {0, -1});
                 }}}});
  t.push_back(
      {"mean", {{"all", {X({3, 4})}, [](V x) { return mean(x[0]); }}, {"dims 2,3 keepdim", {X({2, 3, 4, 5})}, [](V x) {
                                                                         return mean(x[0], {2, 3}, true);
                                                                       }}}});
  t.push_back({"sum_to", {{"to (3,1)", {X({2, 3, 4})}, [](V x) { return sum_to(x[0], {3, 1}); }}}});

  // shape
  t.push_back({"reshape", {{"(2,6)->(3,4)", {X({2, 6})}, [](V x) { return reshape(x[0], {3, -1}); }}}});
  t.push_back({"permute", {{"(2,3,4)->(2,0,1)", {X({2, 3, 4})}, [](V x) { return permute(x[0], {2, 0, 1}); }}}});
  t.push_back({"transpose", {{"(3,5)", {X({3, 5})}, [](V x) { return transpose(x[0], 0, 1); }}}});
  t.push_back({"expand",
               {{"(3,1)->(2,3,4)",
                 {X({3, 1})},
                 [](V x) {
                   return expand(x[0], {2, 3, 4});
                 }},
                {"scalar", {X({})}, [](V x) {
                   return expand(x[0], {2, 2});
                 }}}});
  t.push_back({"slice",
               {{"dim 1 step 2", {X({3, 7})}, [](V x) { return slice(x[0], 1, 1, 6, 2); }},
                {"negative start", {X({5, 2})}, [](V x) { return slice(x[0], 0, -3, 5); }}}});
  t.push_back({"slice_backward", {{"dim 1 step 2", {X({3, 3})}, [](V x) {
                                     return slice_backward(x[0], {3, 7}, 1, 1, 6, 2);
                                   }}}});
  t.push_back({"cat",
               {{"dim 1",
                 {X({2, 3}), X({2, 1}), X({2, 4})},
                 [](V x) {
                   return cat({x[0], x[1], x[2]}, 1);
                 }},
                {"dim 0", {X({1, 3}), X({2, 3})}, [](V x) {
                   return cat({x[0], x[1]}, 0);
                 }}}});
  t.push_back({"stack", {{"dim 1", {X({2, 3}), X({2, 3})}, [](V x) { return stack({x[0], x[1]}, 1); }}}});
  t.push_back({"repeat", {{"(2,3)x(2,1,2)", {X({2, 3})}, [](V x) { return repeat(x[0], {2, 1, 2}); }}}});
  t.push_back({"flip", {{"dims 0,2", {X({2, 3, 4})}, [](V x) { return flip(x[0], {0, 2}); }}}});
  t.push_back({"clone", {{"(3,4)", {X({3, 4})}, [](V x) { return x[0].clone(); }}}});

  // matmul
  t.push_back({"matmul",
               {{"2-D", {X({3, 4}), X({4, 5})}, [](V x) { return matmul(x[0], x[1]); }},
                {"batched", {X({2, 3, 4}), X({2, 4, 2})}, [](V x) { return matmul(x[0], x[1]); }},
                {"vector-like", {X({1, 5}), X({5, 1})}, [](V x) { return matmul(x[0], x[1]); }}}});
  t.push_back({"linear",
               {{"with bias", {X({3, 4}), X({5, 4}), X({5})}, [](V x) { return linear(x[0], x[1], x[2]); }},
                {"no bias, batch 1", {X({1, 4}), X({2, 4})}, [](V x) { return linear(x[0], x[1]); }}}});

  // convolution
  t.push_back({"conv2d",
               {{"3x3 pad 1",
                 {X({2, 3, 5, 6}), X({4, 3, 3, 3})},
                 [](V x) {
                   return conv2d(x[0], x[1], {1, 1}, {1, 1});
                 }},
                {"groups 2 stride 2 odd",
                 {X({1, 4, 7, 5}), X({6, 2, 3, 3})},
                 [](V x) {
                   return conv2d(x[0], x[1], {2, 2}, {1, 1}, 2);
                 }},
                {"1x1 batch 1", {X({1, 3, 4, 4}), X({2, 3, 1, 1})}, [](V x) { return conv2d(x[0], x[1]); }},
                {"groups 3 stride (2,1)", {X({2, 3, 5, 4}), X({3, 1, 2, 3})}, [](V x) {
                   return conv2d(x[0], x[1], {2, 1}, {0, 1}, 3);
                 }}}});
  t.push_back({"conv_transpose2d",
               {{"stride 2 pad 1 outpad 1",
                 {X({2, 3, 3, 4}), X({3, 2, 3, 3})},
                 [](V x) {
                   return conv_transpose2d(x[0], x[1], {2, 2}, {1, 1}, {1, 1});
                 }},
                {"groups 2",
                 {X({1, 4, 3, 3}), X({4, 3, 3, 3})},
                 [](V x) {
                   return conv_transpose2d(x[0], x[1], {2, 2}, {0, 0}, {0, 0}, 2);
                 }},
                {"stride 1 pad 1", {X({2, 2, 4, 3}), X({2, 3, 3, 3})}, [](V x) {
                   return conv_transpose2d(x[0], x[1], {1, 1}, {1, 1});
                 }}}});
  t.push_back({"conv2d_weight_grad",
               {{"stride 2 groups 2",
                 {X({2, 4, 3, 3}), X({2, 4, 6, 5})},
                 [](V x) {
                   return conv2d_weight_grad(x[0], x[1], {4, 2, 3, 3}, {2, 2}, {1, 1}, 2);
                 }},
                {"3x3 pad 1", {X({1, 2, 4, 4}), X({1, 3, 4, 4})}, [](V x) {
                   return conv2d_weight_grad(x[0], x[1], {2, 3, 3, 3}, {1, 1}, {1, 1}, 1);
                 }}}});

  // upfirdn2d
  auto ufd = [](int64_t up, int64_t down, std::array<int64_t, 4> pad, double gain, bool flip) {
    UpFirDn p;
    p.upx = p.upy = up;
    p.downx = p.downy = down;
    p.pad = pad;
    p.gain = gain;
    p.flip_filter = flip;
    return p;
  };
  t.push_back({"upfirdn2d",
               {{"up 2 fir4",
                 {X({1, 2, 4, 3}), K(fir4())},
                 [=](V x) {
                   return upfirdn2d(x[0], x[1], ufd(2, 1, {2, 1, 2, 1}, 4, false));
                 }},
                {"down 2 fir4",
                 {X({2, 1, 6, 7}), K(fir4())},
                 [=](V x) {
                   return upfirdn2d(x[0], x[1], ufd(1, 2, {1, 1, 1, 1}, 1, false));
                 }},
                {"up 2 down 2 odd pad",
                 {X({1, 2, 5, 4}), K(fir4())},
                 [=](V x) {
                   return upfirdn2d(x[0], x[1], ufd(2, 2, {2, 1, 1, 2}, 2, true));
                 }},
                {"2-D filter, crop",
                 {X({1, 1, 6, 5}), K(from_vector({1, 2, 0.5, -1, 3, 1}, {2, 3}, DType::f64))},
                 [=](V x) {
                   return upfirdn2d(x[0], x[1], ufd(1, 1, {1, -1, 0, 1}, 1, false));
                 }},
                {"anisotropic up x", {X({1, 2, 3, 3}), K(fir4())}, [=](V x) {
                   UpFirDn p = ufd(1, 1, {2, 1, 1, 1}, 2, false);
                   p.upx = 2;
                   p.downy = 2;
                   return upfirdn2d(x[0], x[1], p);
                 }}}});
  t.push_back({"upsample2d", {{"fir4", {X({2, 2, 3, 4})}, [](V x) { return upsample2d(x[0], fir4(x[0])); }}}});
  t.push_back({"downsample2d", {{"fir4", {X({1, 2, 6, 4})}, [](V x) { return downsample2d(x[0], fir4(x[0])); }}}});

  // pooling (the random samples of max_pool2d have no near-ties: gradcheck's steps never
  // change which element a window picks)
  t.push_back({"avg_pool2d",
               {{"3x3 pad 1 exclude pad",
                 {X({1, 2, 5, 6})},
                 [](V x) {
                   return avg_pool2d(x[0], {3, 3}, {1, 1}, {1, 1}, false);
                 }},
                {"3x3 pad 1 include pad",
                 {X({2, 1, 4, 5})},
                 [](V x) {
                   return avg_pool2d(x[0], {3, 3}, {1, 1}, {1, 1}, true);
                 }},
                {"(2,3) stride (2,1) pad (1,0)", {X({1, 2, 5, 4})}, [](V x) {
                   return avg_pool2d(x[0], {2, 3}, {2, 1}, {1, 0}, false);
                 }}}});
  t.push_back({"avg_pool2d_backward",
               {{"3x3 pad 1 exclude pad",
                 {X({1, 2, 5, 6})},
                 [](V x) {
                   return avg_pool2d_backward(x[0], {1, 2, 5, 6}, {3, 3}, {1, 1}, {1, 1}, false);
                 }},
                {"3x3 stride 2", {X({1, 1, 3, 2})}, [](V x) {
                   return avg_pool2d_backward(x[0], {1, 1, 7, 5}, {3, 3}, {2, 2}, {0, 0}, true);
                 }}}});
  t.push_back({"max_pool2d",
               {{"3x3 stride 1 pad 1",
                 {X({1, 2, 5, 6})},
                 [](V x) {
                   return max_pool2d(x[0], {3, 3}, {1, 1}, {1, 1});
                 }},
                {"3x3 stride 2",
                 {X({2, 1, 7, 5})},
                 [](V x) {
                   return max_pool2d(x[0], {3, 3}, {2, 2});
                 }},
                {"(2,3) stride (2,1) pad 1",
                 {X({1, 2, 4, 6})},
                 [](V x) {
                   return max_pool2d(x[0], {2, 3}, {2, 1}, {1, 1});
                 }},
                {"values", {K(distinct({1, 2, 5, 6})), X({1, 2, 5, 6})}, [](V x) {
                   return max_pool2d(x[0], {3, 3}, {1, 1}, {1, 1}, x[1]);
                 }}}});
  t.push_back({"max_pool2d_backward",
               {{"3x3 stride 1 pad 1",
                 {X({1, 2, 5, 6}), K(distinct({1, 2, 5, 6}))},
                 [](V x) {
                   return max_pool2d_backward(x[0], x[1], {3, 3}, {1, 1}, {1, 1});
                 }},
                {"3x3 stride 2", {X({1, 1, 3, 2}), K(distinct({1, 1, 7, 5}))}, [](V x) {
                   return max_pool2d_backward(x[0], x[1], {3, 3}, {2, 2}, {0, 0});
                 }}}});

  // bias_act
  t.push_back({"bias_act",
               {{"linear", {X({2, 3, 4}), X({3})}, [](V x) { return bias_act(x[0], x[1]); }},
                {"lrelu gain",
                 {A({2, 3, 2, 2}), K(zeros({3}, DType::f64))},
                 [](V x) { return bias_act(x[0], x[1], Act::lrelu, 0.2, std::sqrt(2.0)); }},
                {"lrelu bias clamp",
                 {A({2, 3, 3})},
                 [](V x) { return bias_act(mul(x[0], 0.3), Tensor(), Act::lrelu, 0.2, std::sqrt(2.0), 0.35); }},
                {"relu dim 0", {A({4, 2})}, [](V x) { return bias_act(x[0], Tensor(), Act::relu, 0, 1.5, -1, 0); }}}});
  t.push_back({"bias_act_grad",
               {{"lrelu clamp",
                 {X({2, 3, 3}), K(from_vector({0.5, -0.2, 0.9, 2.0, -1.5, 0.1, -0.05, 0.3, 1.2, -0.7, 0.6, 0.8, 1.9,
                                               -2.5, 0.2, 0.4, 0.05, -0.3},
                                              {2, 3, 3}, DType::f64))},
                 [](V x) { return bias_act_grad(x[0], x[1], Act::lrelu, 0.2, std::sqrt(2.0), 1.0); }}}});

  // modulated convolution: both paths, demod on / off, up and down
  auto mc = [](bool demod, int64_t up, int64_t down, int64_t pad, bool fused) {
    ModConv p;
    p.demodulate = demod;
    p.up = up;
    p.down = down;
    p.padding = pad;
    p.fused = fused;
    return p;
  };
  for (bool fused : {true, false}) {
    std::string n = fused ? "modulated_conv2d (fused)" : "modulated_conv2d (modulate activations)";
    t.push_back({n,
                 {{"3x3 demod",
                   {X({2, 3, 4, 4}), X({2, 3, 3, 3}), P({2, 3})},
                   [=](V x) { return modulated_conv2d(x[0], x[1], x[2], mc(true, 1, 1, 1, fused)); }},
                  {"1x1 no demod batch 1",
                   {X({1, 3, 3, 3}), X({2, 3, 1, 1}), P({1, 3})},
                   [=](V x) { return modulated_conv2d(x[0], x[1], x[2], mc(false, 1, 1, 0, fused)); }},
                  {"up 2",
                   {X({2, 2, 3, 3}), X({2, 2, 3, 3}), P({2, 2})},
                   [=](V x) { return modulated_conv2d(x[0], x[1], x[2], mc(true, 2, 1, 1, fused)); }},
                  {"down 2", {X({1, 2, 6, 6}), X({3, 2, 3, 3}), P({1, 2})}, [=](V x) {
                     return modulated_conv2d(x[0], x[1], x[2], mc(true, 1, 2, 1, fused));
                   }}}});
  }
  t.push_back({"conv2d_resample",
               {{"1x1 down 2",
                 {X({1, 2, 6, 6}), X({3, 2, 1, 1})},
                 [](V x) { return conv2d_resample(x[0], x[1], fir4(x[0]), 1, 2, 0, 1); }},
                {"1x1 up 2",
                 {X({1, 2, 3, 3}), X({3, 2, 1, 1})},
                 [](V x) { return conv2d_resample(x[0], x[1], fir4(x[0]), 2, 1, 0, 1); }},
                {"3x3 up 2 groups 2", {X({1, 4, 3, 3}), X({4, 2, 3, 3})}, [](V x) {
                   return conv2d_resample(x[0], x[1], fir4(x[0]), 2, 1, 1, 2);
                 }}}});

  // GAN utilities
  t.push_back({"pixel_norm", {{"dim 1", {X({3, 5})}, [](V x) { return pixel_norm(x[0]); }}}});
  t.push_back({"minibatch_stddev",
               {{"group 2", {X({4, 2, 3, 3})}, [](V x) { return minibatch_stddev(x[0], 2, 1); }},
                {"group 4, 2 channels", {X({4, 4, 2, 2})}, [](V x) { return minibatch_stddev(x[0], 4, 2); }}}});

  // the demodulation's weight term (last, so the entries above keep their seeds): the CPU
  // kernel's one-by-one and 16-channel paths (the latter f32 with AVX-512: the f32 check), and
  // the composite a 5-wide kernel takes
  auto sq_sums = [](V x) { return conv_weight_sq_sums(x[0]); };
  t.push_back({"conv_weight_sq_sums",
               {{"3x3", {X({3, 4, 3, 3})}, sq_sums},
                {"1x1", {X({5, 2, 1, 1})}, sq_sums},
                {"2x4, 17 channels", {X({2, 17, 2, 4})}, sq_sums},
                {"5x5", {X({2, 3, 5, 5})}, sq_sums}}});
  return t;
}

}  // namespace

std::vector<Tensor> make_inputs(const Sample& s, uint64_t seed, std::vector<bool>& diff) {
  Rng g(seed);
  std::vector<Tensor> r;
  diff.clear();
  for (auto& in : s.inputs) {
    if (in.kind == Kind::constant) {
      r.push_back(in.fixed.to(DType::f64));
      diff.push_back(false);
      continue;
    }
    std::vector<double> v = randn(in.shape, g, DType::f64).to_vector();
    for (auto& x : v) {
      if (in.kind == Kind::positive) x = std::abs(x) + 0.5;
      if (in.kind == Kind::away_from_zero) x = (x >= 0 ? 1 : -1) * (std::abs(x) + 0.1);
    }
    r.push_back(from_vector(v, in.shape, DType::f64));
    diff.push_back(true);
  }
  return r;
}

const std::vector<OpEntry>& op_table() {
  static const std::vector<OpEntry> t = build_table();
  return t;
}

}  // namespace sgtest
