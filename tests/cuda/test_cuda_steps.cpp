// Whole regularization steps and the modulated convolution's paths on CUDA, against the CPU
// in f64 from the same seed (tests/cuda/reg_steps.h describes the networks and the steps).
#include <cmath>

#include "cuda_test_util.h"
#include "reg_steps.h"

using namespace sg;
using namespace sgtest::cuda;

TEST_CASE("cuda: R1 step", "[cuda][steps][sanitize]") {
  for (bool use_bias_act : {false, true}) {
    INFO((use_bias_act ? "bias_act(lrelu, gain sqrt2)" : "conv + b, leaky_relu * sqrt2"));
    RegNet ref = make_r1_net(71), dut = to_dut(ref);
    Adam opt_ref(ref.params), opt_dut(dut.params);
    for (int step = 1; step <= 2; ++step) {  // the second step uses Adam's moments
      INFO("step " << step);
      StepRecord r = r1_step(ref, opt_ref, use_bias_act);
      StepRecord d = r1_step(dut, opt_dut, use_bias_act);
      check_record(d, r);
    }
  }
}

TEST_CASE("cuda: path-length step", "[cuda][steps]") {
  for (bool fused : {true, false}) {
    INFO("fused modconv: " << fused);
    for (bool use_bias_act : {false, true}) {
      INFO((use_bias_act ? "bias_act(lrelu, gain sqrt2)" : "+ bias, leaky_relu * sqrt2"));
      RegNet ref = make_pl_net(72), dut = to_dut(ref);
      Adam opt_ref(ref.params), opt_dut(dut.params);
      Tensor mean_ref = scalar(0.0, DType::f64), mean_dut = scalar(0.0, DType::f32, device());
      for (int step = 1; step <= 2; ++step) {
        INFO("step " << step);
        StepRecord r = pl_step(ref, opt_ref, use_bias_act, fused, mean_ref, 500 + step);
        StepRecord d = pl_step(dut, opt_dut, use_bias_act, fused, mean_dut, 500 + step);
        check_record(d, r);
      }
    }
  }
}

namespace {

// StyleGAN2's fused (grouped) modulated convolution written out with public ops, the way
// engine/ops/modulated_conv.cpp composes it: the reference the fused CUDA kernel must match.
Tensor modconv_grouped_composite(const Tensor& x, const Tensor& weight, const Tensor& styles, const ModConv& p) {
  const int64_t N = x.size(0), C = x.size(1), O = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  Tensor w = mul(unsqueeze(weight, 0), reshape(styles, {N, 1, C, 1, 1}));
  if (p.demodulate) w = mul(w, reshape(rsqrt(add(sum(square(w), {2, 3, 4}), p.eps)), {N, O, 1, 1, 1}));
  Tensor y = conv2d_resample(reshape(x, {1, N * C, x.size(2), x.size(3)}), reshape(w, {N * O, C, kh, kw}),
                             p.resample_filter, p.up, p.down, p.padding, N);
  return reshape(y, {N, O, y.size(2), y.size(3)});
}

struct ModConvCase {
  const char* desc;
  int64_t N, C, O, H, k;
  bool demod;
  int64_t up, down, pad;
};

}  // namespace

TEST_CASE("cuda: modulated_conv2d fused equals the composite and the modulate-activations path",
          "[cuda][modconv][sanitize][racecheck]") {
  const ModConvCase cases[] = {{"3x3 demod", 4, 32, 32, 8, 3, true, 1, 1, 1},
                               {"3x3 demod, 48 -> 40 channels, odd 7x7", 3, 48, 40, 7, 3, true, 1, 1, 1},
                               {"1x1 toRGB no demod", 2, 16, 3, 8, 1, false, 1, 1, 0},
                               {"3x3 up 2 demod", 2, 16, 16, 8, 3, true, 2, 1, 1},
                               {"3x3 down 2 demod", 2, 16, 16, 8, 3, true, 1, 2, 1}};
  uint64_t seed = 900;
  for (const ModConvCase& c : cases) {
    INFO(c.desc);
    Rng g(seed++);
    Tensor x = randn({c.N, c.C, c.H, c.H}, g, DType::f64);
    Tensor weight = randn({c.O, c.C, c.k, c.k}, g, DType::f64);
    Tensor styles = add(mul(randn({c.N, c.C}, g, DType::f64), 0.2), 1.0);
    auto run = [&](Device d, DType dt, int path) {  // 0 engine fused, 1 grouped composite, 2 modulate activations
      Tensor xl = (dt == DType::f64 ? leaf64(x, true) : to_dut(x, true));
      Tensor wl = (dt == DType::f64 ? leaf64(weight, true) : to_dut(weight, true));
      Tensor sl = (dt == DType::f64 ? leaf64(styles, true) : to_dut(styles, true));
      ModConv p;
      p.demodulate = c.demod;
      p.up = c.up;
      p.down = c.down;
      p.padding = c.pad;
      p.fused = path != 2;
      p.resample_filter = fir_filter({1, 3, 3, 1}, dt).to(d);
      Tensor y_nograd;
      {
        NoGradGuard ng;  // inference: where a fused forward kernel is most likely taken
        y_nograd = path == 1 ? modconv_grouped_composite(xl, wl, sl, p) : modulated_conv2d(xl, wl, sl, p);
      }
      Tensor y = path == 1 ? modconv_grouped_composite(xl, wl, sl, p) : modulated_conv2d(xl, wl, sl, p);
      Rng gg(77);
      Tensor gy = randn(y.shape(), gg, DType::f64).to(dt).to(d);
      auto grads = autograd::grad({y}, {xl, wl, sl}, {gy});
      return std::vector<Tensor>{y_nograd, y, grads[0], grads[1], grads[2]};
    };
    const char* what[] = {"y (no grad)", "y", "dx", "dweight", "dstyles"};
    auto ref = run(Device::cpu(), DType::f64, 0);
    const char* paths[] = {"engine fused", "grouped composite", "modulate activations"};
    std::vector<Tensor> dut[3];
    for (int path = 0; path < 3; ++path) {
      INFO(paths[path] << " on " << device_name(device()) << " vs cpu f64");
      try {
        dut[path] = run(device(), DType::f32, path);
        for (int k = 0; k < 5; ++k) SG_DEVICE_CHECK(what[k], dut[path][k], ref[k]);
      } catch (const std::exception& e) {
        FAIL_CHECK("threw: " << e.what());
      }
    }
    if (dut[0].empty() || dut[1].empty()) continue;
    INFO("engine fused vs grouped composite, both " << device_name(device()) << " f32");
    for (int k = 0; k < 5; ++k) SG_DEVICE_CHECK(what[k], dut[0][k], dut[1][k]);
  }
}

TEST_CASE("cuda: TF32 is off (matmul and conv2d agree with f64 to fp32 accuracy)", "[cuda][tf32]") {
  // With TF32 (10-bit mantissa inputs) these long reductions miss f64 by ~1e-3; in fp32 by ~1e-6.
  CHECK_FALSE(cuda_tf32());
  Rng g(31);
  Tensor a = randn({128, 4096}, g, DType::f64), b = randn({4096, 64}, g, DType::f64);
  Tensor y64 = matmul(a, b), yd = matmul(to_dut(a), to_dut(b));
  double err = sgtest::max_rel_error(yd, y64);
  INFO("matmul K=4096: max rel error " << err);
  CHECK(err < 1e-5);
  Tensor x = randn({2, 256, 12, 12}, g, DType::f64), w = randn({32, 256, 3, 3}, g, DType::f64);
  Tensor c64 = conv2d(x, w, {1, 1}, {1, 1}), cd = conv2d(to_dut(x), to_dut(w), {1, 1}, {1, 1});
  err = sgtest::max_rel_error(cd, c64);
  INFO("conv2d K=2304: max rel error " << err);
  CHECK(err < 1e-5);
}
