// The tensor-core convolution (kernels/cuda/conv_tc.h): each of its paths against the CPU in
// f64, within the error bound of its format. The shapes reach: channels padded to the 16-byte
// chunk (3, 12), k-tiles that span several taps (Cp < 32 bf16 channels), two tiles of output
// channels, a partial pixel tile, stride 2, unequal kernel sides, strides and paddings, split-K
// (with its ordered reduction and epilogue) and the unsplit epilogue, conv_transpose2d as one
// flipped conv per output phase (stride 1 and 2, output padding, padding beyond the kernel), the
// fused epilogue on a plain conv, the fused modulated conv (groups = images, styles applied
// while packing x), and the bf16 weight gradient.
// Tagged [sanitize]: the GPU run kit runs them under compute-sanitizer memcheck; the fused and
// weight-gradient cases also [racecheck] (racecheck is slower; the forward and the weight
// gradient share the pipeline it checks) (scripts/gpu-kit-run.sh, step 3).
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "engine/ops.h"

#ifdef SG_HAVE_CUDA
#include "kernels/cuda/conv.h"
#include "kernels/cuda/conv_tc.h"
#include "kernels/cuda/conv_thin.h"
#include "kernels/cuda/modconv.h"

using namespace sg;
using namespace sgtest;
using namespace sgtest::cuda;
namespace kc = sg::kernels::cuda;
using sg::kernels::Conv2dParams;

namespace {

// check_format_bound (cuda_test_util.h) with slack for the f32 epilogue after the sum.
void check_bound(const std::string& what, double u, int64_t K, const Tensor& got, const Tensor& ref,
                 const Tensor& absref) {
  check_format_bound(what, u, K, got, ref, absref, 1e-6);
}

const double kU[2] = {std::ldexp(1.0, -11), std::ldexp(1.0, -8)};  // tf32, bf16
const kc::ConvMath kMath[2] = {kc::ConvMath::tf32, kc::ConvMath::bf16};
const char* kSuffix[2] = {" <tf32>", " <bf16>"};

}  // namespace

TEST_CASE("cuda conv_tc: conv2d and conv_transpose2d on tensor cores within their bounds",
          "[cuda][paths][tf32][sanitize]") {
  if (!real_cuda("conv_tc")) return;
  struct Case {
    const char* what;
    Conv2dParams p;
    bool transposed;
    bool split[2];  // split-K expected for tf32, bf16
  };
  const Case cases[] = {
      {"1x1, 6 channels padded", {2, 6, 8, 8, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1}, false, {false, false}},
      {"3x3, 12 channels (tiles across taps)", {2, 12, 7, 9, 20, 3, 3, 1, 1, 1, 1, 0, 0, 1}, false, {false, false}},
      {"3x3 stride 2, 130 outputs (two row tiles), split",
       {1, 40, 9, 9, 130, 3, 3, 2, 2, 1, 1, 0, 0, 1},
       false,
       {true, true}},
      {"3x3, 64 channels, 108 pixels, split", {3, 64, 6, 6, 64, 3, 3, 1, 1, 1, 1, 0, 0, 1}, false, {true, true}},
      {"3x3 unpadded, 200 pixels (partial tile)", {2, 16, 12, 12, 8, 3, 3, 1, 1, 0, 0, 0, 0, 1}, false, {true, false}},
      {"2x3, strides (1, 2), padding (1, 0)", {1, 8, 6, 7, 9, 2, 3, 1, 2, 1, 0, 0, 0, 1}, false, {false, false}},
      {"conv_transpose2d 3x3 pad 1", {2, 24, 5, 6, 33, 3, 3, 1, 1, 1, 1, 0, 0, 1}, true, {true, false}},
      {"conv_transpose2d 2x2 pad 0", {2, 24, 5, 6, 10, 2, 2, 1, 1, 0, 0, 0, 0, 1}, true, {false, false}},
      {"conv_transpose2d 3x3 pad 3 (more than the kernel)",
       {1, 8, 6, 6, 8, 3, 3, 1, 1, 3, 3, 0, 0, 1},
       true,
       {false, false}},
      {"conv_transpose2d 3x3 stride 2 pad 0 (four phases)",
       {2, 24, 5, 6, 33, 3, 3, 2, 2, 0, 0, 0, 0, 1},
       true,
       {false, false}},
      {"conv_transpose2d 3x3 stride 2 pad 1 output_padding 1",
       {2, 16, 4, 4, 20, 3, 3, 2, 2, 1, 1, 1, 1, 1},
       true,
       {false, false}},
      {"conv_transpose2d 4x4 strides (2, 1) pad (1, 2)",
       {1, 8, 5, 4, 12, 4, 4, 2, 1, 1, 2, 0, 0, 1},
       true,
       {false, false}},
  };
  uint64_t seed = 700;
  for (const Case& c : cases) {
    const Conv2dParams& p = c.p;
    const Shape ws_shape = c.transposed ? Shape{p.Cin, p.Cout, p.kh, p.kw} : Shape{p.Cout, p.Cin, p.kh, p.kw};
    Tensor x = rnd({p.N, p.Cin, p.H, p.W}, seed++), w = rnd(ws_shape, seed++);
    const std::array<int64_t, 2> s{p.sy, p.sx}, pad{p.py, p.px};
    const std::array<int64_t, 2> op{p.opy, p.opx};
    Tensor ref = c.transposed ? conv_transpose2d(x, w, s, pad, op) : conv2d(x, w, s, pad);
    Tensor absref = c.transposed ? conv_transpose2d(abs(x), abs(w), s, pad, op) : conv2d(abs(x), abs(w), s, pad);
    const int64_t K = p.Cin * p.kh * p.kw;  // products per output (either way)
    Tensor xd = to_dut(x), wd = to_dut(w), yd = empty(ref.shape(), DType::f32, Device::cuda());
    for (int f = 0; f < 2; ++f) {
      INFO(c.what << kSuffix[f]);
      const int64_t bytes = c.transposed ? kc::conv_transpose2d_forward_workspace<float>(p, kMath[f])
                                         : kc::conv2d_forward_workspace<float>(p, kMath[f]);
      REQUIRE(bytes > 0);
      Tensor ws = empty({(bytes + 3) / 4}, DType::f32, Device::cuda());
      take_launch_log();
      if (c.transposed)
        kc::conv_transpose2d_forward<float>(p, xd.data<float>(), wd.data<float>(), yd.data<float>(), kMath[f],
                                            ws.data<float>());
      else
        kc::conv2d_forward<float>(p, xd.data<float>(), wd.data<float>(), yd.data<float>(), kMath[f], nullptr,
                                  ws.data<float>());
      const auto log = take_launch_log();
#ifdef SG_CUDA_EMU
      CHECK(launched(log, std::string("conv_tc_kernel") + kSuffix[f]));
      CHECK(launched(log, "conv_tc_splitk_epilogue") == c.split[f]);
#endif
      check_bound(c.what, kU[f], K, yd, ref, absref);
    }
  }
  // Called directly, the path names itself and what is wrong.
  kc::TcConv bad;
  bad.N = 1, bad.C = 8, bad.H = bad.W = 4, bad.O = 8;
  float* nowhere = nullptr;
  CHECK_THROWS_WITH(kc::conv_tc_forward(bad, nowhere, nowhere, nowhere, nullptr, kc::ConvMath::bf16),
                    Catch::Contains("conv_tc_forward: needs a 256-byte aligned workspace"));
  CHECK_THROWS_WITH(kc::conv_tc_forward(bad, nowhere, nowhere, nowhere, nullptr, kc::ConvMath::fma),
                    Catch::Contains("conv_tc_forward: math must be tf32 or bf16"));
  bad.O = 0;
  CHECK_THROWS_WITH(kc::conv_tc_forward(bad, nowhere, nowhere, nowhere, nullptr, kc::ConvMath::tf32),
                    Catch::Contains("conv_tc_forward: empty problem"));
  // Without a workspace, or where the path does not apply, the shared-memory kernels run.
  CHECK(kc::conv2d_forward_workspace<float>(cases[1].p, kc::ConvMath::fma) == 0);
  CHECK(kc::conv2d_forward_workspace<double>(cases[1].p, kc::ConvMath::bf16) == 0);
  CHECK(kc::conv2d_forward_workspace<float>(Conv2dParams{1, 8, 6, 6, 8, 3, 3, 1, 1, 1, 1, 0, 0, 2},
                                            kc::ConvMath::bf16) == 0);  // grouped, not a modconv
  CHECK(kc::conv_transpose2d_forward_workspace<float>(Conv2dParams{1, 8, 6, 6, 8, 1, 1, 2, 2, 0, 0, 1, 1, 1},
                                                      kc::ConvMath::bf16) == 0);  // phases without taps
}

TEST_CASE("cuda conv_tc: the fused epilogue and the fused modulated conv on tensor cores",
          "[cuda][paths][tf32][sanitize][racecheck]") {
  if (!real_cuda("conv_tc fused")) return;
  // A plain conv (groups 1) with every fusion: w * a_scale, * row_scale + noise + bias, lrelu,
  // gain, clamp; the reference is the same chain of engine ops in f64 on the CPU.
  const int64_t N = 2, Cin = 6, Cout = 70, H = 7, W = 6;
  Tensor x = rnd({N, Cin, H, W}, 720), w = rnd({Cout, Cin, 3, 3}, 721);
  Tensor a_scale = rnd({Cin}, 722), row_scale = rnd({Cout}, 723), noise = rnd({N, H * W}, 724), bias = rnd({Cout}, 725);
  Tensor wa = mul(w, reshape(a_scale, {1, Cin, 1, 1}));
  Tensor pre = mul(conv2d(x, wa, {1, 1}, {1, 1}), reshape(row_scale, {1, Cout, 1, 1}));
  Tensor ref = bias_act(add(pre, reshape(noise, {N, 1, H, W})), bias, Act::lrelu, 0.2, 1.4, 2.0, 1);
  Tensor absref = mul(conv2d(abs(x), abs(wa), {1, 1}, {1, 1}), reshape(mul(abs(row_scale), 1.4), {1, Cout, 1, 1}));
  Tensor xd = to_dut(x), wd = to_dut(w), ad = to_dut(a_scale), rd = to_dut(row_scale), nd = to_dut(noise);
  Tensor bd = to_dut(bias), yd = empty({N, Cout, H, W}, DType::f32, Device::cuda());
  kc::ConvFusion<float> fu;
  fu.a_scale = ad.data<float>(), fu.row_scale = rd.data<float>(), fu.noise = nd.data<float>();
  fu.bias = bd.data<float>(), fu.act = 2, fu.alpha = 0.2, fu.gain = 1.4, fu.clamp = 2.0;
  const Conv2dParams p{N, Cin, H, W, Cout, 3, 3, 1, 1, 1, 1, 0, 0, 1};

  // The fused modulated conv: styles per (image, channel) scale x as it is packed, the
  // demodulation coefficients per (image, output channel) scale the rows; noise [N, Ho*Wo].
  const int64_t Nm = 3, C = 12, O = 20;
  Tensor xm = rnd({Nm, C, H, W}, 730), wm = rnd({O, C, 3, 3}, 731), st = rnd({Nm, C}, 732);
  Tensor nm = rnd({Nm, H * W}, 733), bm = rnd({O}, 734);
  ModConv mc;
  mc.padding = 1;
  Tensor refm = bias_act(add(modulated_conv2d(xm, wm, st, mc), reshape(nm, {Nm, 1, H, W})), bm, Act::lrelu, 0.2,
                         std::sqrt(2.0), 0.5, 1);
  // |terms|: x * s * w * dcoef, dcoef = 1 / sqrt(sum (w s)^2 + eps) per (n, o).
  Tensor dco = rsqrt(add(sum(square(mul(reshape(wm, {1, O, C, 3, 3}), reshape(st, {Nm, 1, C, 1, 1}))), {2, 3, 4}),
                         1e-8));  // [Nm, O]
  mc.demodulate = false;
  Tensor absm = mul(modulated_conv2d(abs(xm), abs(wm), abs(st), mc), mul(reshape(dco, {Nm, O, 1, 1}), std::sqrt(2.0)));
  Tensor xmd = to_dut(xm), wmd = to_dut(wm), std_ = to_dut(st), nmd = to_dut(nm), bmd = to_dut(bm);
  Tensor dcod = empty({Nm, O}, DType::f32, Device::cuda()), ymd = empty({Nm, O, H, W}, DType::f32, Device::cuda());
  kc::modconv_dcoefs<float>(wmd.data<float>(), std_.data<float>(), dcod.data<float>(), Nm, O, C, 9, 1e-8);
  kc::ModConvEpilogue<float> ep;
  ep.noise = nmd.data<float>(), ep.bias = bmd.data<float>(), ep.act = 2, ep.alpha = 0.2, ep.gain = std::sqrt(2.0);
  ep.clamp = 0.5;

  for (int f = 0; f < 2; ++f) {
    INFO(kSuffix[f]);
    const int64_t bytes = kc::conv2d_forward_workspace<float>(p, kMath[f], &fu);
    REQUIRE(bytes > 0);
    Tensor ws = empty({(bytes + 3) / 4}, DType::f32, Device::cuda());
    take_launch_log();
    kc::conv2d_forward<float>(p, xd.data<float>(), wd.data<float>(), yd.data<float>(), kMath[f], &fu, ws.data<float>());
#ifdef SG_CUDA_EMU
    CHECK(launched(take_launch_log(), std::string("conv_tc_kernel") + kSuffix[f]));
#endif
    check_bound("ConvFusion on tensor cores", kU[f], Cin * 9, yd, ref, absref);

    const int64_t mbytes = kc::modconv_forward_workspace<float>(Nm, C, H, W, O, 3, 3, 1, kMath[f]);
    REQUIRE(mbytes > 0);
    Tensor mws = empty({(mbytes + 3) / 4}, DType::f32, Device::cuda());
    take_launch_log();
    kc::modconv_forward<float>(xmd.data<float>(), wmd.data<float>(), std_.data<float>(), dcod.data<float>(),
                               ymd.data<float>(), Nm, C, H, W, O, 3, 3, 1, kMath[f], &ep, mws.data<float>());
#ifdef SG_CUDA_EMU
    CHECK(launched(take_launch_log(), std::string("conv_tc_kernel") + kSuffix[f]));
#endif
    check_bound("fused modulated conv on tensor cores", kU[f], C * 9, ymd, refm, absm);
  }
}

#endif  // SG_HAVE_CUDA

#ifdef SG_HAVE_CUDA
TEST_CASE("cuda conv_tc: the weight gradient on tensor cores within its bound",
          "[cuda][paths][tf32][sanitize][racecheck]") {
  if (!real_cuda("conv_tc wgrad")) return;
  struct Case {
    const char* what;
    Conv2dParams p;
    bool split[2];  // split-K expected for tf32 (16-pixel k-tiles), bf16 (32)
  };
  const Case cases[] = {
      {"3x3 on 8x8, 12 channels", {2, 12, 8, 8, 20, 3, 3, 1, 1, 1, 1, 0, 0, 1}, {true, false}},
      {"3x3 on 4x4: k-tiles across images, 130 outputs", {3, 40, 4, 4, 130, 3, 3, 1, 1, 1, 1, 0, 0, 1}, {false, false}},
      {"3x3, 64 channels (five column tiles)", {4, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 0, 0, 1}, {true, true}},
      {"3x3 stride 2", {2, 16, 8, 8, 24, 3, 3, 2, 2, 1, 1, 0, 0, 1}, {false, false}},
      {"1x1, 6 channels padded", {2, 6, 8, 8, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1}, {true, false}},
      {"3x3, 3 channels padded", {2, 3, 8, 8, 16, 3, 3, 1, 1, 1, 1, 0, 0, 1}, {true, false}},
      // (1x1 with at most 4 channels on a side takes conv_thin.h's weight gradient instead)
      {"2x3, strides (1, 2), padding (1, 0)", {1, 8, 7, 9, 9, 2, 3, 1, 2, 1, 0, 0, 0, 1}, {false, false}},
  };
  uint64_t seed = 800;
  for (const Case& c : cases) {
    const Conv2dParams& p = c.p;
    const int64_t Ho = (p.H + 2 * p.py - p.kh) / p.sy + 1, Wo = (p.W + 2 * p.px - p.kw) / p.sx + 1;
    Tensor x = rnd({p.N, p.Cin, p.H, p.W}, seed++), dy = rnd({p.N, p.Cout, Ho, Wo}, seed++);
    const Shape wshape{p.Cout, p.Cin, p.kh, p.kw};
    const std::array<int64_t, 2> s{p.sy, p.sx}, pad{p.py, p.px};
    Tensor ref = conv2d_weight_grad(dy, x, wshape, s, pad, 1);
    Tensor absref = conv2d_weight_grad(abs(dy), abs(x), wshape, s, pad, 1);
    Tensor xd = to_dut(x), dyd = to_dut(dy), dw = empty(wshape, DType::f32, Device::cuda());
    for (int f = 0; f < 2; ++f) {
      INFO(c.what << kSuffix[f]);
      const int64_t elems = kc::conv2d_weight_grad_workspace(p, kMath[f]);
      REQUIRE(elems > kc::conv2d_weight_grad_workspace(p, kc::ConvMath::fma));
      Tensor ws = empty({elems}, DType::f32, Device::cuda());
      take_launch_log();
      kc::conv2d_weight_grad<float>(p, dyd.data<float>(), xd.data<float>(), dw.data<float>(), ws.data<float>(),
                                    kMath[f]);
      const auto log = take_launch_log();
#ifdef SG_CUDA_EMU
      CHECK(launched(log, std::string("conv_tc_wgrad_kernel") + kSuffix[f]));
      CHECK(launched(log, "conv_tc_wgrad_splitk") == c.split[f]);
#endif
      check_bound(c.what, kU[f], p.N * Ho * Wo, dw, ref, absref);
    }
  }
  // Ho*Wo % 8 != 0, FMA, or groups: the shared-memory kernels (no extra workspace).
  const Conv2dParams odd{2, 8, 5, 5, 8, 3, 3, 1, 1, 1, 1, 0, 0, 1};
  CHECK(kc::conv2d_weight_grad_workspace(odd, kc::ConvMath::bf16) ==
        kc::conv2d_weight_grad_workspace(odd, kc::ConvMath::fma));
  CHECK(kc::conv2d_weight_grad_workspace(Conv2dParams{2, 8, 8, 8, 8, 3, 3, 1, 1, 1, 1, 0, 0, 2}, kc::ConvMath::bf16) ==
        kc::conv2d_weight_grad_workspace(Conv2dParams{2, 8, 8, 8, 8, 3, 3, 1, 1, 1, 1, 0, 0, 2}, kc::ConvMath::fma));
  kc::TcWgrad bad{2, 8, 5, 5, 8, 3, 3, 1, 1, 1, 1};
  float* nowhere = nullptr;
  CHECK_THROWS_WITH(kc::conv_tc_wgrad(bad, nowhere, nowhere, nowhere, nullptr, kc::ConvMath::bf16),
                    Catch::Contains("conv_tc_wgrad: sizes it does not take"));
  bad.H = bad.W = 8;
  CHECK_THROWS_WITH(kc::conv_tc_wgrad(bad, nowhere, nowhere, nowhere, nullptr, kc::ConvMath::tf32),
                    Catch::Contains("conv_tc_wgrad: needs a 256-byte aligned workspace"));
  CHECK_THROWS_WITH(kc::conv_tc_wgrad(bad, nowhere, nowhere, nowhere, nullptr, kc::ConvMath::fma),
                    Catch::Contains("conv_tc_wgrad: math must be tf32 or bf16"));
}
TEST_CASE("cuda conv thin: toRGB and fromRGB 1x1 convs in exact f32 whatever the math", "[cuda][paths][sanitize]") {
  if (!real_cuda("conv thin")) return;
  struct Case {
    const char* what;
    Conv2dParams p;
    bool transposed;
    const char* kernel;
  };
  const Case cases[] = {
      {"toRGB: 20 -> 3", {2, 20, 5, 7, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1}, false, "conv1x1_thin_kernel (thin output)"},
      {"fromRGB: 3 -> 70", {2, 3, 5, 7, 70, 1, 1, 1, 1, 0, 0, 0, 0, 1}, false, "conv1x1_thin_kernel (thin input)"},
      {"toRGB's data gradient: 3 -> 20 transposed",
       {2, 3, 5, 7, 20, 1, 1, 1, 1, 0, 0, 0, 0, 1},
       true,
       "conv1x1_thin_kernel (thin input)"},
      {"4 -> 4", {1, 4, 6, 6, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1}, false, "conv1x1_thin_kernel (thin output)"},
  };
  uint64_t seed = 900;
  for (const Case& c : cases) {
    const Conv2dParams& p = c.p;
    Tensor x = rnd({p.N, p.Cin, p.H, p.W}, seed++);
    Tensor w = rnd(c.transposed ? Shape{p.Cin, p.Cout, 1, 1} : Shape{p.Cout, p.Cin, 1, 1}, seed++);
    Tensor ref = c.transposed ? conv_transpose2d(x, w) : conv2d(x, w);
    for (kc::ConvMath math : {kc::ConvMath::fma, kc::ConvMath::tf32, kc::ConvMath::bf16}) {
      INFO(c.what << ", math " << (int)math);
      CHECK((c.transposed ? kc::conv_transpose2d_forward_workspace<float>(p, math)
                          : kc::conv2d_forward_workspace<float>(p, math)) == 0);
      Tensor xd = to_dut(x), wd = to_dut(w), yd = empty(ref.shape(), DType::f32, Device::cuda());
      take_launch_log();
      if (c.transposed)
        kc::conv_transpose2d_forward<float>(p, xd.data<float>(), wd.data<float>(), yd.data<float>(), math);
      else
        kc::conv2d_forward<float>(p, xd.data<float>(), wd.data<float>(), yd.data<float>(), math);
#ifdef SG_CUDA_EMU
      CHECK(launched(take_launch_log(), c.kernel));
#endif
      SG_DEVICE_CHECK(c.what, yd, ref);
    }
  }
  // f64 takes it too; a fused conv does not (the fusion needs the GEMM's epilogue)
  Tensor x = rnd({2, 20, 5, 7}, 950), w = rnd({3, 20, 1, 1}, 951);
  Tensor x64 = x.to(Device::cuda()), w64 = w.to(Device::cuda()), y64 = empty({2, 3, 5, 7}, DType::f64, Device::cuda());
  take_launch_log();
  kc::conv2d_forward<double>(Conv2dParams{2, 20, 5, 7, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1}, x64.data<double>(),
                             w64.data<double>(), y64.data<double>(), kc::ConvMath::fma);
#ifdef SG_CUDA_EMU
  CHECK(launched(take_launch_log(), "conv1x1_thin_kernel (thin output)"));
#endif
  const Tensor ref64 = conv2d(x, w);
  CHECK(max_abs(sub(y64.to(Device::cpu()), ref64)) <= 1e-12 * max_abs(ref64));
  float* nowhere = nullptr;
  CHECK_THROWS_WITH(kc::conv1x1_thin<float>(nowhere, nowhere, nowhere, 1, 8, 8, 4, false),
                    Catch::Contains("conv1x1_thin: neither side is thin"));
}

TEST_CASE("cuda conv thin: the weight gradients of toRGB and fromRGB in exact f32 whatever the math",
          "[cuda][paths][sanitize][racecheck]") {
  if (!real_cuda("conv thin weight gradient")) return;
  struct Case {
    const char* what;
    Conv2dParams p;
    bool split;  // pixels split into slices (from 8192 pixels: 2 slices of at least 4096)
  };
  const Case cases[] = {
      {"toRGB 20 -> 3, 35-pixel images (a thread's stride spans several)", {2, 20, 5, 7, 3, 1, 1}, false},
      {"toRGB 20 -> 3, two 72 x 72 images", {2, 20, 72, 72, 3, 1, 1}, true},
      {"toRGB 9 -> 3, slices across images of 41 x 43", {5, 9, 41, 43, 3, 1, 1}, true},
      {"fromRGB 3 -> 70", {2, 3, 6, 5, 70, 1, 1}, false},
      {"fromRGB 3 -> 70, split", {3, 3, 60, 50, 70, 1, 1}, true},
      {"4 -> 4", {1, 4, 6, 6, 4, 1, 1}, false},
  };
  uint64_t seed = 960;
  for (const Case& c : cases) {
    const Conv2dParams& p = c.p;
    Tensor x = rnd({p.N, p.Cin, p.H, p.W}, seed++), dy = rnd({p.N, p.Cout, p.H, p.W}, seed++);
    const Shape ws{p.Cout, p.Cin, 1, 1};
    const Tensor ref = conv2d_weight_grad(dy, x, ws, {1, 1}, {0, 0}, 1);
    for (kc::ConvMath math : {kc::ConvMath::fma, kc::ConvMath::tf32, kc::ConvMath::bf16}) {
      INFO(c.what << ", math " << (int)math);
      const int64_t wse = kc::conv2d_weight_grad_workspace(p, math);
      CHECK((wse > 0) == c.split);
      Tensor xd = to_dut(x), dyd = to_dut(dy), dw = empty(ws, DType::f32, Device::cuda());
      Tensor work = empty({std::max<int64_t>(wse, 1)}, DType::f32, Device::cuda());
      take_launch_log();
      kc::conv2d_weight_grad<float>(p, dyd.data<float>(), xd.data<float>(), dw.data<float>(), work.data<float>(), math);
#ifdef SG_CUDA_EMU
      const auto log = take_launch_log();
      CHECK(launched(log, "conv1x1_thin_wgrad_kernel"));
      CHECK(launched(log, "conv1x1_thin_wgrad_sum") == c.split);
#endif
      SG_DEVICE_CHECK(c.what, dw, ref);
    }
  }
  // f64 takes it too
  const Conv2dParams p{5, 9, 41, 43, 3, 1, 1};
  Tensor x = rnd({5, 9, 41, 43}, 990), dy = rnd({5, 3, 41, 43}, 991);
  Tensor x64 = x.to(Device::cuda()), dy64 = dy.to(Device::cuda()),
         dw64 = empty({3, 9, 1, 1}, DType::f64, Device::cuda());
  Tensor work = empty({kc::conv2d_weight_grad_workspace(p, kc::ConvMath::fma)}, DType::f64, Device::cuda());
  take_launch_log();
  kc::conv2d_weight_grad<double>(p, dy64.data<double>(), x64.data<double>(), dw64.data<double>(), work.data<double>(),
                                 kc::ConvMath::fma);
#ifdef SG_CUDA_EMU
  CHECK(launched(take_launch_log(), "conv1x1_thin_wgrad_sum"));
#endif
  const Tensor ref64 = conv2d_weight_grad(dy, x, {3, 9, 1, 1}, {1, 1}, {0, 0}, 1);
  CHECK(max_abs(sub(dw64.to(Device::cpu()), ref64)) <= 1e-12 * max_abs(ref64));
  double* none = nullptr;
  CHECK_THROWS_WITH(kc::conv1x1_thin_wgrad<double>(none, none, none, none, 1, 8, 8, 4),
                    Catch::Contains("conv1x1_thin_wgrad: neither side is thin"));
  CHECK_THROWS_WITH(kc::conv1x1_thin_wgrad<double>(none, none, none, none, 5, 9, 3, 41 * 43),
                    Catch::Contains("conv1x1_thin_wgrad: needs its workspace"));
}

#endif  // SG_HAVE_CUDA
