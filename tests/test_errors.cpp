// Bad input throws sg::Error whose message names the op and the shapes involved; it never
// aborts and never silently broadcasts.
#include <catch2/catch.hpp>

#include "engine/device.h"
#include "engine/ops.h"

using namespace sg;
using Catch::Matchers::Contains;

namespace {
Tensor t(Shape s, DType d = DType::f32) { return ones(s, d); }
}  // namespace

TEST_CASE("elementwise: shapes that do not broadcast", "[errors]") {
  REQUIRE_THROWS_WITH(add(t({2, 3}), t({3, 2})), Contains("add") && Contains("(2, 3)") && Contains("(3, 2)"));
  REQUIRE_THROWS_WITH(mul(t({4}), t({5})), Contains("mul") && Contains("do not broadcast"));
}

TEST_CASE("elementwise: dtype mismatch", "[errors]") {
  REQUIRE_THROWS_WITH(add(t({2}), t({2}, DType::f64)),
                      Contains("add") && Contains("dtype") && Contains("f32") && Contains("f64"));
}

TEST_CASE("devices: no CUDA device is an error, not a crash", "[errors]") {
  if (cuda_available()) return;  // the cuda-labelled tests cover the device
  REQUIRE_THROWS_AS(t({2}).cuda(), Error);
  REQUIRE_THROWS_WITH(zeros({2}, DType::f32, Device::cuda()), Contains("cuda"));
}

TEST_CASE("devices: mixing devices in one op names the op and both devices", "[errors]") {
  if (!cuda_available()) return;
  REQUIRE_THROWS_WITH(add(t({2}), t({2}).cuda()), Contains("add") && Contains("cpu") && Contains("cuda:0"));
}

TEST_CASE("factories: negative sizes", "[errors]") {
  REQUIRE_THROWS_WITH(zeros({2, -1}), Contains("negative") && Contains("(2, -1)"));
}

TEST_CASE("shape ops: invalid arguments", "[errors]") {
  REQUIRE_THROWS_WITH(reshape(t({2, 3}), {4, 2}), Contains("reshape") && Contains("(2, 3)") && Contains("(4, 2)"));
  REQUIRE_THROWS_WITH(permute(t({2, 3}), {0, 0}), Contains("permute"));
  REQUIRE_THROWS_WITH(expand(t({2, 3}), {4, 3}), Contains("expand") && Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(cat({t({2, 3}), t({3, 3})}, 1), Contains("cat") && Contains("(3, 3)"));
  REQUIRE_THROWS_WITH(slice(t({4}), 0, 3, 1), Contains("slice"));
  REQUIRE_THROWS_WITH(sum(t({2, 3}), {2}), Contains("sum") && Contains("out of range"));
  REQUIRE_THROWS_WITH(squeeze(t({2, 3}), 0), Contains("squeeze"));
}

TEST_CASE("matmul and linear: mismatched inner sizes", "[errors]") {
  REQUIRE_THROWS_WITH(matmul(t({2, 3}), t({4, 5})), Contains("matmul") && Contains("(2, 3)") && Contains("(4, 5)"));
  REQUIRE_THROWS_WITH(matmul(t({2, 3}), t({2, 3, 4})), Contains("matmul"));
  REQUIRE_THROWS_WITH(linear(t({2, 3}), t({4, 5})), Contains("linear") && Contains("(4, 5)"));
}

TEST_CASE("conv2d: invalid parameters", "[errors]") {
  REQUIRE_THROWS_WITH(conv2d(t({1, 3, 8, 8}), t({4, 2, 3, 3})), Contains("conv2d") && Contains("(4, 2, 3, 3)"));
  REQUIRE_THROWS_WITH(conv2d(t({1, 4, 8, 8}), t({3, 2, 3, 3}), {1, 1}, {0, 0}, 2), Contains("conv2d"));
  REQUIRE_THROWS_WITH(conv2d(t({1, 3, 8, 8}), t({4, 3, 3, 3}), {0, 1}), Contains("conv2d") && Contains("stride"));
  REQUIRE_THROWS_WITH(conv2d(t({1, 3, 8, 8}), t({4, 3, 3, 3}), {1, 1}, {-1, 0}),
                      Contains("conv2d") && Contains("padding"));
  REQUIRE_THROWS_WITH(conv2d(t({1, 3, 2, 2}), t({4, 3, 3, 3})), Contains("conv2d") && Contains("(1, 3, 2, 2)"));
  REQUIRE_THROWS_WITH(conv2d(t({3, 8, 8}), t({4, 3, 3, 3})), Contains("conv2d") && Contains("(3, 8, 8)"));
  REQUIRE_THROWS_WITH(conv2d(t({1, 3, 8, 8}), t({4, 3, 3, 3}, DType::f64)), Contains("conv2d") && Contains("dtype"));
}

TEST_CASE("conv_transpose2d and conv2d_weight_grad: invalid parameters", "[errors]") {
  REQUIRE_THROWS_WITH(conv_transpose2d(t({1, 3, 4, 4}), t({3, 2, 3, 3}), {2, 2}, {0, 0}, {2, 2}),
                      Contains("conv_transpose2d") && Contains("output_padding"));
  REQUIRE_THROWS_WITH(conv_transpose2d(t({1, 3, 4, 4}), t({4, 2, 3, 3})), Contains("conv_transpose2d"));
  REQUIRE_THROWS_WITH(conv2d_weight_grad(t({1, 4, 4, 4}), t({1, 3, 5, 5}), {4, 3, 3, 3}, {1, 1}, {0, 0}, 1),
                      Contains("conv2d_weight_grad"));
}

TEST_CASE("upfirdn2d: invalid parameters", "[errors]") {
  Tensor f = fir_filter();
  UpFirDn p;
  p.upx = 0;
  REQUIRE_THROWS_WITH(upfirdn2d(t({1, 1, 4, 4}), f, p), Contains("upfirdn2d"));
  UpFirDn crop;
  crop.pad = {-3, -3, 0, 0};
  REQUIRE_THROWS_WITH(upfirdn2d(t({1, 1, 4, 4}), f, crop), Contains("upfirdn2d") && Contains("(1, 1, 4, 4)"));
  REQUIRE_THROWS_WITH(upfirdn2d(t({1, 4, 4}), f, UpFirDn{}), Contains("upfirdn2d") && Contains("(1, 4, 4)"));
  REQUIRE_THROWS_WITH(upfirdn2d(t({1, 1, 4, 4}), t({2, 2, 2}), UpFirDn{}), Contains("upfirdn2d"));
}

TEST_CASE("bias_act, modulated_conv2d, minibatch_stddev: invalid parameters", "[errors]") {
  REQUIRE_THROWS_WITH(bias_act(t({2, 3, 4}), t({4})), Contains("bias_act") && Contains("(4,)"));
  REQUIRE_THROWS_WITH(modulated_conv2d(t({2, 3, 4, 4}), t({5, 3, 3, 3}), t({2, 4})),
                      Contains("modulated_conv2d") && Contains("(2, 4)"));
  ModConv bad;
  bad.up = 3;
  REQUIRE_THROWS_WITH(modulated_conv2d(t({2, 3, 4, 4}), t({5, 3, 3, 3}), t({2, 3}), bad), Contains("up"));
  REQUIRE_THROWS_WITH(minibatch_stddev(t({6, 2, 4, 4}), 4), Contains("minibatch_stddev") && Contains("divisible"));
}

TEST_CASE("autograd: misuse", "[errors]") {
  Tensor x = t({2});
  REQUIRE_THROWS_WITH(sum(x).backward(), Contains("does not require grad"));
  Tensor y = t({2}).set_requires_grad(true);
  REQUIRE_THROWS_WITH(mul(y, 2.0).backward(), Contains("one-element"));
  REQUIRE_THROWS_WITH(autograd::grad({sum(y)}, {x}), Contains("does not require grad"));
  REQUIRE_THROWS_AS(Tensor().shape(), Error);
}
