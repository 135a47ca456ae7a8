// models/: configs, parameter counts against the closed-form formulas, shapes, w_avg and
// truncation, noise modes, copy_from, and the second-order gradients the regularizers need
// (path length through G, R1 through D) against central finite differences in f64.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "kernels/cpu/gemm.h"
#include "models/stylegan2.h"

using namespace sg;
using namespace sg::models;

namespace {

// A tiny config of the given family: resolution 8, a few channels, f64.
Config tiny(const std::string& name, int64_t img_channels = 3) {
  Config c = make_config(name, 8, img_channels);
  c.dtype = DType::f64;
  c.z_dim = 6, c.w_dim = 5;
  c.mapping_layers = 2;
  if (c.arch == Arch::seed32) {
    c.channel_base = 32, c.channel_max = 8;  // 8 channels at 4x4, 4 at 8x8
  } else {
    c.channel_base = 32, c.channel_max = 6;  // 6 at 4x4, 4 at 8x8
    c.mbstd_group = 2;
  }
  return c;
}

void fill(const Tensor& t, double v) {
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = v;
}

// Small random values in every parameter whose init is a constant (biases, noise strengths), so
// that every term takes part in the checked gradients.
void perturb_constants(ParamList& P, uint64_t seed) {
  Rng r(seed);
  for (auto& [name, t] : P.params) {
    if (name.find("bias") == std::string::npos && name.find("noise_strength") == std::string::npos) continue;
    Tensor n = randn(t.shape(), r, DType::f64);
    const double* src = n.data<double>();
    double* dst = t.data<double>();
    for (int64_t i = 0; i < t.numel(); ++i) dst[i] += 0.3 * src[i];
  }
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

// Checks d(loss)/d(param elements) for a handful of random elements against central
// differences. loss() must rebuild its graph from the current parameter values.
void check_param_grads(ParamList& P, const std::function<Tensor()>& loss, const std::vector<std::string>& names,
                       int per_param, uint64_t seed) {
  std::vector<Tensor> params;
  for (const auto& n : names) params.push_back(P.get(n));
  Tensor L = loss();
  auto grads = autograd::grad({L}, params, {}, false, /*allow_unused=*/true);
  Rng pick(seed);
  const double eps = 1e-6;
  for (size_t k = 0; k < params.size(); ++k) {
    const Tensor& p = params[k];
    auto u = rand({per_param}, pick, DType::f64).to_vector();
    for (int j = 0; j < per_param; ++j) {
      const int64_t idx = std::min<int64_t>((int64_t)(u[j] * (double)p.numel()), p.numel() - 1);
      double* d = p.data<double>();
      const double orig = d[idx];
      d[idx] = orig + eps;
      const double lp = loss().item();
      d[idx] = orig - eps;
      const double lm = loss().item();
      d[idx] = orig;
      const double numeric = (lp - lm) / (2 * eps);
      const double analytic = grads[k].defined() ? grads[k].to_vector()[(size_t)idx] : 0.0;
      INFO(names[k] << "[" << idx << "]: analytic " << analytic << ", numeric " << numeric);
      CHECK(std::abs(analytic - numeric) <= 1e-9 + 1e-4 * std::abs(numeric));
    }
  }
}

}  // namespace

TEST_CASE("models: config names, defaults and errors", "[models]") {
  auto names = config_names();
  REQUIRE(names == std::vector<std::string>{"paper256", "small", "seed32", "stylegan1"});
  CHECK(make_config("paper256").resolution == 256);
  CHECK(make_config("small").resolution == 32);
  CHECK(make_config("seed32").resolution == 32);
  Config p = make_config("paper256", 256, 3);
  CHECK(p.z_dim == 512);
  CHECK(p.w_dim == 512);
  CHECK(p.mapping_layers == 8);
  CHECK(p.mapping_lr_mul == 0.01);
  CHECK(p.channel_base == 16384);
  CHECK(p.channel_max == 512);
  CHECK(p.batch == 64);
  CHECK(p.gamma == 1.0);
  CHECK(p.lr_g == 0.0025);
  CHECK(p.ema_kimg == 20);
  CHECK(channels_at(p, 4) == 512);
  CHECK(channels_at(p, 64) == 256);
  CHECK(channels_at(p, 256) == 64);
  Config s = make_config("seed32", 32, 3);
  CHECK(s.z_dim == 128);
  CHECK(s.w_dim == 192);
  CHECK(s.lr_g == 2e-4);
  CHECK(s.gamma == 0.5);
  CHECK(s.r1_interval == 64);
  CHECK(s.pl_interval == 16);
  CHECK(s.pl_weight == 1.0);
  CHECK(s.mbstd_channels == 0);
  CHECK(s.mbstd_group >= 1);  // safe to divide by
  // the notebook's channel plan: fmap*4, *2, *1, /2 at 4, 8, 16, 32
  CHECK(channels_at(s, 4) == 384);
  CHECK(channels_at(s, 8) == 192);
  CHECK(channels_at(s, 16) == 96);
  CHECK(channels_at(s, 32) == 48);

  try {
    make_config("nope", 32, 3);
    FAIL("no error");
  } catch (const Error& e) {
    std::string m = e.what();
    CHECK(m.find("nope") != std::string::npos);
    for (const auto& n : names) CHECK(m.find(n) != std::string::npos);
  }
  for (int64_t r : {-8, 1, 4, 12, 48, 2048}) CHECK_THROWS_AS(make_config("small", r, 3), Error);
  for (int64_t r : {8, 16, 64, 1024}) CHECK(make_config("small", r, 3).resolution == r);
  CHECK_THROWS_AS(make_config("small", 32, 2), Error);
  CHECK_THROWS_AS(make_config("small", 32, 4), Error);
  Config bad = make_config("small", 32, 3);
  bad.resolution = 24;
  Rng rng(0);
  CHECK_THROWS_AS(Generator(bad, rng), Error);
  CHECK_THROWS_AS(Discriminator(bad, rng), Error);
}

TEST_CASE("models: closed-form parameter counts match the networks", "[models]") {
  // The formula against a published number: stylegan2-ada's 1024x1024 "stylegan2" G
  // (channel_base 32768) has 30,370,060 parameters; its D, summed by hand, 29,012,513.
  Config f = make_config("paper256", 1024, 3);
  f.channel_base = 32768;
  CHECK(expected_param_count_G(f) == 30370060);
  CHECK(expected_param_count_D(f) == 29012513);
  CHECK(expected_num_ws(f) == 18);
  // The notebook (PyTorch, counted with its own classes): G 4,587,996, D 5,520,673.
  Config s = make_config("seed32", 32, 3);
  CHECK(expected_param_count_G(s) == 4587996);
  CHECK(expected_param_count_D(s) == 5520673);

  struct Case {
    std::string name;
    int64_t res, ch;
  };
  std::vector<Case> cases = {{"small", 8, 3},     {"small", 32, 1},     {"seed32", 32, 3},  {"seed32", 16, 1},
                             {"stylegan1", 8, 1}, {"stylegan1", 32, 3}, {"paper256", 8, 3}, {"paper256", 16, 1}};
  for (const auto& k : cases) {
    Config c = make_config(k.name, k.res, k.ch);
    Rng rng(1);
    Generator G(c, rng);
    Discriminator D(c, rng);
    INFO(k.name << " @" << k.res << " x" << k.ch);
    CHECK(G.parameters().count() == expected_param_count_G(c));
    CHECK(D.parameters().count() == expected_param_count_D(c));
    CHECK(G.num_ws() == expected_num_ws(c));
    // names are unique, parameters require grad, buffers do not
    std::set<std::string> seen;
    for (const auto& pl : {&G.parameters(), &D.parameters()}) {
      seen.clear();
      for (const auto& [n, t] : pl->params) {
        CHECK(seen.insert(n).second);
        CHECK(t.requires_grad());
        CHECK(t.is_leaf());
      }
      for (const auto& [n, t] : pl->buffers) {
        CHECK(seen.insert(n).second);
        CHECK_FALSE(t.requires_grad());
      }
      CHECK((int64_t)pl->tensors().size() == (int64_t)pl->params.size());
    }
  }
  // Names as in stylegan2-ada's state_dict.
  Rng rng(2);
  Config c = make_config("small", 32, 3);
  Generator G(c, rng);
  Discriminator D(c, rng);
  for (const char* n :
       {"mapping.fc0.weight", "mapping.fc1.bias", "mapping.w_avg", "synthesis.b4.const", "synthesis.b4.conv1.weight",
        "synthesis.b4.conv1.noise_strength", "synthesis.b4.conv1.noise_const", "synthesis.b8.conv0.affine.weight",
        "synthesis.b8.conv0.affine.bias", "synthesis.b32.torgb.weight"})
    CHECK(G.parameters().has(n));
  for (const char* n : {"b32.fromrgb.weight", "b32.conv0.weight", "b32.conv1.bias", "b32.skip.weight", "b8.skip.weight",
                        "b4.conv.weight", "b4.fc.weight", "b4.out.bias"})
    CHECK(D.parameters().has(n));
  CHECK_FALSE(D.parameters().has("b32.skip.bias"));
  CHECK(G.parameters().get("synthesis.b4.const").shape() == Shape{64, 4, 4});
  CHECK(G.parameters().get("synthesis.b4.conv1.noise_strength").dim() == 0);
  CHECK_THROWS_AS(G.parameters().get("no.such"), Error);
  // Equalized lr: mapping weights are drawn N(0,1)/lr_mul, so their spread is ~1/0.01.
  auto w = G.parameters().get("mapping.fc0.weight").to_vector();
  double ss = 0;
  for (double v : w) ss += v * v;
  CHECK(std::sqrt(ss / (double)w.size()) == Approx(100.0).epsilon(0.1));
  // affine biases start at 1, other biases at 0
  for (double v : G.parameters().get("synthesis.b8.conv0.affine.bias").to_vector()) CHECK(v == 1.0);
  for (double v : G.parameters().get("synthesis.b8.conv0.bias").to_vector()) CHECK(v == 0.0);
}

TEST_CASE("models: output shapes, RGB and grayscale, f32 and f64", "[models]") {
  struct Case {
    std::string name;
    int64_t res, ch;
    DType dt;
  };
  std::vector<Case> cases = {{"small", 32, 3, DType::f32},     {"small", 16, 1, DType::f64},
                             {"seed32", 32, 3, DType::f32},    {"seed32", 16, 1, DType::f32},
                             {"stylegan1", 16, 3, DType::f32}, {"stylegan1", 8, 1, DType::f64},
                             {"paper256", 8, 3, DType::f32}};
  for (const auto& k : cases) {
    INFO(k.name << " @" << k.res << " x" << k.ch);
    Config c = make_config(k.name, k.res, k.ch);
    c.dtype = k.dt;
    Rng rng(3);
    Generator G(c, rng);
    Discriminator D(c, rng);
    const int64_t N = 2;
    Tensor z = randn({N, c.z_dim}, rng, k.dt);
    Tensor ws = G.mapping(z);
    CHECK(ws.shape() == Shape{N, G.num_ws(), c.w_dim});
    Tensor img = G.synthesis(ws, NoiseMode::random, rng);
    CHECK(img.shape() == Shape{N, k.ch, k.res, k.res});
    CHECK(img.dtype() == k.dt);
    Tensor logits = D.forward(img);
    CHECK(logits.shape() == Shape{N, 1});
    auto lv = logits.to_vector(), iv = img.to_vector();
    CHECK(std::all_of(lv.begin(), lv.end(), [](double v) { return std::isfinite(v); }));
    CHECK(std::all_of(iv.begin(), iv.end(), [](double v) { return std::isfinite(v); }));
    if (c.arch == Arch::seed32)  // tanh output
      CHECK(std::all_of(iv.begin(), iv.end(), [](double v) { return std::abs(v) <= 1.0; }));
    // bad inputs are sg::Errors
    CHECK_THROWS_AS(G.mapping(randn({N, c.z_dim + 1}, rng, k.dt)), Error);
    CHECK_THROWS_AS(G.synthesis(randn({N, G.num_ws() - 1, c.w_dim}, rng, k.dt), NoiseMode::none, rng), Error);
    CHECK_THROWS_AS(D.forward(randn({N, k.ch, k.res / 2, k.res / 2}, rng, k.dt)), Error);
  }
}

TEST_CASE("models: w_avg tracking, truncation and style mixing", "[models]") {
  Config c = tiny("small");
  Rng rng(4);
  Generator G(c, rng);
  Tensor w_avg = G.parameters().get("mapping.w_avg");
  for (double v : w_avg.to_vector()) CHECK(v == 0.0);
  Tensor z = randn({5, c.z_dim}, rng, DType::f64);
  Tensor ws = G.mapping(z, 1.0, true);
  // w_avg = lerp(mean w, 0, 0.995) = 0.005 * mean w
  Tensor m = mean(reshape(slice(ws, 1, 0, 1), {5, c.w_dim}), {0});
  CHECK(max_abs_diff(w_avg, mul(m, 0.005)) < 1e-14);
  // without the flag w_avg stays
  auto before = w_avg.to_vector();
  G.mapping(z, 1.0, false);
  CHECK(w_avg.to_vector() == before);
  // psi = 0 gives w_avg everywhere, psi = 0.5 halfway
  Tensor t0 = G.mapping(z, 0.0);
  CHECK(max_abs_diff(t0, expand(reshape(w_avg, {1, 1, c.w_dim}), t0.shape())) == 0.0);
  Tensor t5 = G.mapping(z, 0.5);
  Tensor full = G.mapping(z, 1.0);
  CHECK(max_abs_diff(t5, mul(add(full, reshape(w_avg, {1, 1, c.w_dim})), 0.5)) < 1e-12);
  // every layer gets the same w before mixing
  CHECK(max_abs_diff(slice(full, 1, 0, 1), slice(full, 1, G.num_ws() - 1, G.num_ws())) == 0.0);
  // style mixing: ws taken from a second z after a cutoff changes the image; the same ws
  // give the same image
  Tensor ws2 = G.mapping(randn({5, c.z_dim}, rng, DType::f64));
  const int64_t cut = 2;
  Tensor mixed = cat({slice(full, 1, 0, cut), slice(ws2, 1, cut, G.num_ws())}, 1);
  Rng r1(9), r2(9), r3(9);
  Tensor a = G.synthesis(full, NoiseMode::constant, r1);
  Tensor b = G.synthesis(mixed, NoiseMode::constant, r2);
  Tensor a2 = G.synthesis(full, NoiseMode::constant, r3);
  CHECK(max_abs_diff(a, a2) == 0.0);
  CHECK(max_abs_diff(a, b) > 1e-6);
}

TEST_CASE("models: noise modes and copy_from", "[models]") {
  for (const std::string name : {"small", "stylegan1"}) {
    INFO(name);
    Config c = tiny(name);
    Rng rng(5);
    Generator G(c, rng);
    for (auto& [n, t] : G.parameters().params)
      if (n.find("noise_strength") != std::string::npos) fill(t, 0.7);
    Tensor ws = G.mapping(randn({2, c.z_dim}, rng, DType::f64));
    Rng ra(11), rb(12);
    Tensor c1 = G.synthesis(ws, NoiseMode::constant, ra);
    Tensor c2 = G.synthesis(ws, NoiseMode::constant, rb);
    CHECK(max_abs_diff(c1, c2) == 0.0);  // const: deterministic, ignores the rng
    Tensor n1 = G.synthesis(ws, NoiseMode::none, ra);
    Tensor n2 = G.synthesis(ws, NoiseMode::none, rb);
    CHECK(max_abs_diff(n1, n2) == 0.0);
    Rng rd(11), re(11);
    Tensor r1 = G.synthesis(ws, NoiseMode::random, rd);
    Tensor r2 = G.synthesis(ws, NoiseMode::random, rb);
    Tensor r3 = G.synthesis(ws, NoiseMode::random, re);
    CHECK(max_abs_diff(r1, r3) == 0.0);  // same rng state, same noise
    CHECK(max_abs_diff(r1, r2) > 1e-6);  // different draws
    CHECK(max_abs_diff(r1, n1) > 1e-6);  // none differs from random
    CHECK(max_abs_diff(c1, n1) > 1e-6);  // and from const
    CHECK(rd.offset > 0);                // random mode consumed numbers

    // G_ema-style copy: a generator from another seed becomes identical
    Rng other(77);
    Generator H(c, other);
    Rng s1(3), s2(3);
    CHECK(max_abs_diff(H.synthesis(ws, NoiseMode::constant, s1), c1) > 1e-6);
    H.copy_from(G);
    CHECK(max_abs_diff(H.synthesis(ws, NoiseMode::constant, s2), c1) == 0.0);
    CHECK(H.parameters().params[0].second.impl() != G.parameters().params[0].second.impl());  // a copy, not a share
  }
  // the grouped ("fused") and modulate-activations paths give the same images
  for (const std::string name : {"small", "seed32"}) {
    Config c = tiny(name);
    Config cf = c;
    cf.fused_modconv = true;
    Rng r1(8), r2(8);
    Generator A(c, r1), F(cf, r2);
    Tensor ws = A.mapping(randn({3, c.z_dim}, r1, DType::f64));
    Rng n1(1), n2(1);
    CHECK(max_abs_diff(A.synthesis(ws, NoiseMode::random, n1), F.synthesis(ws, NoiseMode::random, n2)) < 1e-12);
  }
  Rng rng(6);
  Generator A(tiny("small"), rng);
  Generator B(tiny("stylegan1"), rng);
  CHECK_THROWS_AS(A.copy_from(B), Error);
}

// G under no_grad (the D step's fakes, generation) runs its modulated convs as one conv that
// applies the styles and demodulation coefficients inside (engine/ops/modulated_conv.cpp,
// kernels/cpu/conv.h conv2d_forward_scaled, conv_weight_sq_sums); the numbers must be the
// composite's bit for bit: Winograd's small planes (3x3 up to 32 columns), the three-pass
// fallback (1x1 toRGB, wider images, 5x5), with and without demodulation, both paths' flags.
TEST_CASE("models: modulated_conv2d without a graph gives the composite's bits on the CPU", "[models]") {
  struct Case {
    int64_t N, C, O, H, W, k;
  };
  Rng rng(21);
  for (const Case& c :
       {Case{3, 32, 48, 8, 8, 3}, Case{2, 24, 16, 32, 32, 3}, Case{2, 16, 16, 4, 4, 3}, Case{2, 16, 3, 16, 16, 1},
        Case{2, 16, 16, 40, 40, 3}, Case{2, 16, 16, 12, 12, 5}, Case{2, 20, 16, 9, 9, 2}})
    for (const bool demod : {true, false}) {
      INFO("N " << c.N << " C " << c.C << " O " << c.O << " " << c.H << "x" << c.W << " k " << c.k << " demod "
                << demod);
      const Tensor x = randn({c.N, c.C, c.H, c.W}, rng, DType::f32);
      const Tensor w = randn({c.O, c.C, c.k, c.k}, rng, DType::f32);
      const Tensor s = add(mul(randn({c.N, c.C}, rng, DType::f32), 0.3), 1.0);
      ModConv p;
      p.demodulate = demod, p.padding = c.k / 2;
      Tensor ref;
      {
        NoGradGuard ng;  // the modulate-activations formula, op by op
        ref = conv2d(mul(x, reshape(s, {c.N, c.C, 1, 1})), w, {1, 1}, {p.padding, p.padding});
        if (demod) {
          const Tensor wsq = transpose(sum(square(w), {2, 3}), 0, 1);
          ref = mul(ref, reshape(rsqrt(add(matmul(square(s), wsq), p.eps)), {c.N, c.O, 1, 1}));
        }
      }
      for (const bool fused : {false, true}) {
        p.fused = fused;
        Tensor got;
        {
          NoGradGuard ng;
          got = modulated_conv2d(x, w, s, p);
        }
        REQUIRE(got.shape() == ref.shape());
        CHECK(std::memcmp(got.data<float>(), ref.data<float>(), ref.numel() * sizeof(float)) == 0);
        if (fused) continue;
        Tensor xg = x.detach();  // with a graph the act path records the ops: the same numbers
        xg.set_requires_grad(true);
        const Tensor with_graph = modulated_conv2d(xg, w, s, p);
        CHECK(std::memcmp(with_graph.data<float>(), ref.data<float>(), ref.numel() * sizeof(float)) == 0);
      }
    }
}

// With a graph through the weights (every G and PL step) the demodulation's weight term is one
// node (engine/ops/modulated_conv.cpp, conv_weight_sq_sums) where it was three ops: the
// composite's bits forward, in the first derivative and in both second derivatives (doubling
// is exact, so 2 w g is g (2 w)); f32 with the AVX-512 kernels on and off, the 16-channel step,
// its tail, and the 5-wide kernel that takes the composite.
TEST_CASE("models: conv_weight_sq_sums gives the composite's bits to the second derivative", "[models]") {
  auto same = [](const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && std::memcmp(a.data<float>(), b.data<float>(), a.numel() * sizeof(float)) == 0;
  };
  Rng rng(23);
  for (const Shape& shape : {Shape{48, 40, 3, 3}, Shape{6, 16, 1, 1}, Shape{3, 19, 2, 4}, Shape{2, 5, 5, 5}})
    for (const bool wide : {false, true}) {
      INFO("weight " << shape_str(shape) << " AVX-512 " << (wide && sg::kernels::cpu::gemm_avx512_available()));
      const bool before = sg::kernels::cpu::gemm_use_avx512(wide);
      const Tensor w0 = randn(shape, rng, DType::f32);
      const Tensor gy = randn({shape[1], shape[0]}, rng, DType::f32);
      Tensor y[2], dw[2], dh_dw[2], dh_dgy[2];
      for (int composite : {0, 1}) {
        Tensor w = w0.detach(), g = gy.detach();
        w.set_requires_grad(true), g.set_requires_grad(true);
        y[composite] = composite ? transpose(sum(square(w), {2, 3}), 0, 1) : conv_weight_sq_sums(w);
        dw[composite] = autograd::grad({sum(mul(y[composite], g))}, {w}, {}, /*create_graph=*/true)[0];
        const auto g2 = autograd::grad({sum(square(dw[composite]))}, {w, g});
        dh_dw[composite] = g2[0], dh_dgy[composite] = g2[1];
      }
      sg::kernels::cpu::gemm_use_avx512(before);
      CHECK(same(y[0], y[1]));
      CHECK(same(dw[0], dw[1]));
      CHECK(same(dh_dw[0], dh_dw[1]));
      CHECK(same(dh_dgy[0], dh_dgy[1]));
    }
  CHECK_THROWS_WITH(conv_weight_sq_sums(randn({3, 3}, rng)),
                    Catch::Matchers::Contains("conv_weight_sq_sums") && Catch::Matchers::Contains("(3, 3)"));
}

TEST_CASE("models: seed32 ignores noise and broadcasts one w like the notebook", "[models]") {
  Config c = tiny("seed32");
  Rng rng(7);
  Generator G(c, rng);
  CHECK(G.num_ws() == 4);
  CHECK(G.parameters().has("mapping.net.1.weight"));
  CHECK(G.parameters().has("mapping.net.3.bias"));
  CHECK(G.parameters().has("b8.toRGB.style.weight"));
  CHECK(G.parameters().get("const").shape() == Shape{1, 8, 4, 4});
  Tensor ws = G.mapping(randn({2, c.z_dim}, rng, DType::f64));
  Rng a(1), b(2);
  CHECK(max_abs_diff(G.synthesis(ws, NoiseMode::random, a), G.synthesis(ws, NoiseMode::none, b)) == 0.0);
  // PyTorch's default nn.Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  double bound = 1.0 / std::sqrt((double)c.z_dim);
  auto mw = G.parameters().get("mapping.net.1.weight").to_vector();
  CHECK(std::all_of(mw.begin(), mw.end(), [&](double v) { return std::abs(v) <= bound; }));
  Discriminator D(c, rng);
  CHECK(D.parameters().has("fromRGB.weight"));
  CHECK(D.parameters().has("b4.skip.bias"));
  CHECK(D.parameters().get("out.weight").shape() == Shape{1, 8 * 16});
}

TEST_CASE("models: path-length penalty double backward through G matches finite differences", "[models]") {
  for (const std::string name : {"small", "stylegan1", "seed32"}) {
    INFO(name);
    Config c = tiny(name);
    Rng rng(8);
    Generator G(c, rng);
    perturb_constants(G.parameters(), 100);
    Tensor z = randn({2, c.z_dim}, rng, DType::f64);
    Tensor pl_noise = randn({2, c.img_channels, 8, 8}, rng, DType::f64);
    auto loss = [&]() {
      Tensor ws = G.mapping(z);
      Rng nr(0);
      Tensor img = G.synthesis(ws, NoiseMode::constant, nr);
      Tensor g = autograd::grad({sum(mul(img, pl_noise))}, {ws}, {}, /*create_graph=*/true)[0];
      Tensor lengths = sqrt(mean(sum(square(g), {2}), {1}));  // [N]
      return sum(square(add(lengths, -0.3)));
    };
    std::vector<std::string> names;
    if (c.arch == Arch::seed32)
      names = {"const",         "mapping.net.1.weight", "b4.conv1.weight", "b8.conv1.style.weight",
               "b8.conv2.bias", "b8.toRGB.weight"};
    else if (c.arch == Arch::stylegan1)
      names = {"synthesis.b4.const",
               "mapping.fc0.weight",
               "synthesis.b4.style0.affine.weight",
               "synthesis.b8.conv0.weight",
               "synthesis.b8.conv1.noise_strength",
               "synthesis.b8.torgb.weight"};
    else
      names = {"synthesis.b4.const",
               "mapping.fc1.weight",
               "synthesis.b8.conv0.weight",
               "synthesis.b8.conv1.affine.weight",
               "synthesis.b8.conv0.noise_strength",
               "synthesis.b8.conv1.bias",
               "synthesis.b4.torgb.affine.bias"};
    check_param_grads(G.parameters(), loss, names, 3, 21);
  }
}

TEST_CASE("models: R1 penalty double backward through D matches finite differences", "[models]") {
  for (const std::string name : {"small", "seed32"}) {
    for (int64_t ch : {1, 3}) {
      INFO(name << " x" << ch);
      Config c = tiny(name, ch);
      Rng rng(9);
      Discriminator D(c, rng);
      perturb_constants(D.parameters(), 200);
      Tensor x = randn({4, ch, 8, 8}, rng, DType::f64);
      x.set_requires_grad(true);
      auto loss = [&]() {
        Tensor logits = D.forward(x);
        Tensor g = autograd::grad({sum(logits)}, {x}, {}, /*create_graph=*/true)[0];
        return mean(sum(square(g), {1, 2, 3}));
      };
      std::vector<std::string> names;
      if (c.arch == Arch::seed32)
        names = {"fromRGB.weight", "b8.conv1.weight", "b8.skip.weight", "b4.conv2.bias", "out.weight"};
      else
        names = {"b8.fromrgb.weight", "b8.conv0.weight", "b8.conv1.bias", "b8.skip.weight",
                 "b4.conv.weight",    "b4.fc.weight",    "b4.out.weight"};
      check_param_grads(D.parameters(), loss, names, 3, 31);
    }
  }
}

// Class-conditional networks (stylegan2-ada's --cond): G embeds the one-hot label and
// concatenates it with z after both are pixel-normed; D maps the label to cmap [N, C4] with
// a label mapping (ada: 8 layers; Config::cmap_layers) and projects its C4 outputs on it.
TEST_CASE("models: class-conditional G and D, as stylegan2-ada-pytorch builds them", "[models]") {
  // Counted with stylegan2-ada-pytorch's training/networks.py (Generator / Discriminator with
  // z_dim = w_dim = 64, 2 mapping layers, channel_base 2048, channel_max 64, 32x32x1, c_dim 10,
  // D's label mapping at its default depth 8): G 318,667 and D 375,232 (unconditional: 313,867
  // and 337,153).
  Config ada = make_config("small", 32, 1);
  ada.c_dim = 10;
  ada.cmap_layers = 8;
  CHECK(expected_param_count_G(ada) == 318667);
  CHECK(expected_param_count_D(ada) == 375232);
  {
    Rng rng(1);
    Generator G(ada, rng);
    Discriminator D(ada, rng);
    CHECK(G.parameters().count() == 318667);
    CHECK(D.parameters().count() == 375232);
    // ada's names and order: G's embedding before its FCs, the first FC taking z and the
    // embedding; D's label mapping between the blocks and the b4 epilogue.
    const auto& gp = G.parameters().params;
    CHECK(gp[0].first == "mapping.embed.weight");
    CHECK(gp[0].second.shape() == Shape{64, 10});
    CHECK(G.parameters().get("mapping.fc0.weight").shape() == Shape{64, 128});
    std::vector<std::string> dn;
    for (const auto& [n, t] : D.parameters().params) dn.push_back(n);
    const auto at = [&](const std::string& n) { return std::find(dn.begin(), dn.end(), n) - dn.begin(); };
    CHECK(at("b8.skip.weight") < at("mapping.embed.weight"));
    CHECK(at("mapping.embed.weight") < at("mapping.fc7.weight"));
    CHECK(at("mapping.fc7.weight") < at("b4.conv.weight"));
    CHECK(D.parameters().get("b4.out.weight").shape() == Shape{64, 64});
  }
  for (const std::string name : {"small", "stylegan1", "paper256"}) {
    Config c = make_config(name, 8, 1);
    c.c_dim = 4;
    Rng rng(2);
    Generator G(c, rng);
    Discriminator D(c, rng);
    INFO(name);
    CHECK(G.parameters().count() == expected_param_count_G(c));
    CHECK(D.parameters().count() == expected_param_count_D(c));
  }

  // D's label-mapping depth (Config::cmap_layers; docs/training.md). Every random lrelu layer
  // makes the classes' cmap vectors more alike: at initialization their mean pairwise cosine
  // grows with the depth (here, one draw each: 0.007 / 0.23 / 0.40 / 0.65 for 0 / 1 / 2 / 8
  // layers). With 0 layers cmap is the pixel-normed embedding, a plain projection D.
  {
    CHECK(make_config("paper256", 256, 3).cmap_layers == 8);
    CHECK(make_config("small", 32, 1).cmap_layers == 1);  // the main job's (docs/training.md)
    CHECK(make_config("stylegan1", 32, 1).cmap_layers == 8);
    Config one = make_config("small", 32, 1);
    one.c_dim = 10, one.cmap_layers = 1;
    CHECK(expected_param_count_D(one) == 375232 - 7 * (64 * 64 + 64));  // 346,112: 7 FCs fewer than ada's
    std::vector<double> eye(100, 0.0);
    for (int i = 0; i < 10; ++i) eye[(size_t)(i * 11)] = 1.0;
    const Tensor labels = from_vector(eye, {10, 10}, DType::f32);
    std::map<int64_t, double> cosine;
    for (int64_t depth : {0, 1, 2, 8}) {
      Config d = make_config("small", 32, 1);
      d.c_dim = 10, d.cmap_layers = depth;
      Rng rng(11);
      Discriminator D(d, rng);
      INFO("cmap_layers " << depth);
      CHECK(D.parameters().count() == expected_param_count_D(d));
      CHECK(D.parameters().has(str("mapping.fc", depth - 1, ".weight")) == (depth > 0));
      CHECK(!D.parameters().has(str("mapping.fc", depth, ".weight")));
      const Tensor m = D.label_map(labels).to(DType::f64);
      REQUIRE(m.shape() == Shape{10, 64});
      const double* v = m.data<double>();
      double total = 0;
      for (int i = 0; i < 10; ++i)
        for (int j = 0; j < 10; ++j) {
          if (i == j) continue;
          double ab = 0, aa = 0, bb = 0;
          for (int k = 0; k < 64; ++k)
            ab += v[i * 64 + k] * v[j * 64 + k], aa += v[i * 64 + k] * v[i * 64 + k],
                bb += v[j * 64 + k] * v[j * 64 + k];
          total += ab / std::sqrt(aa * bb);
        }
      cosine[depth] = total / 90;
    }
    INFO("mean pairwise cosine: 0 layers " << cosine[0] << ", 1: " << cosine[1] << ", 2: " << cosine[2]
                                           << ", 8: " << cosine[8]);
    CHECK(std::abs(cosine[0]) < 0.1);
    CHECK(cosine[1] < 0.3);
    CHECK(cosine[8] > 0.55);
    CHECK(cosine[0] < cosine[1]);
    CHECK(cosine[1] < cosine[2]);
    CHECK(cosine[2] < cosine[8]);
    Config u = make_config("small", 32, 1);
    Rng rng(12);
    Discriminator Du(u, rng);
    CHECK_THROWS_WITH(Du.label_map(labels), Catch::Matchers::Contains("unconditional"));
  }

  Config c = tiny("small", 1);
  c.c_dim = 3;
  Rng rng(5);
  Generator G(c, rng);
  Discriminator D(c, rng);
  perturb_constants(G.parameters(), 300);
  perturb_constants(D.parameters(), 301);
  const Tensor z = randn({4, c.z_dim}, rng, DType::f64);
  const Tensor c0 = from_vector({1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0}, {4, 3}, DType::f64);
  const Tensor c2 = from_vector({0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1}, {4, 3}, DType::f64);
  const Tensor img = randn({4, 1, 8, 8}, rng, DType::f64);

  // The labels are required, checked, and change the result.
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(G.mapping(z), Contains("conditional (c_dim 3)") && Contains("labels c [N, 3]"));
  CHECK_THROWS_WITH(D.forward(img), Contains("conditional (c_dim 3)"));
  CHECK_THROWS_WITH(G.mapping(z, slice(c0, 1, 0, 2)), Contains("expects labels c [4, 3]"));
  CHECK_THROWS_WITH(D.forward(img, slice(c0, 0, 0, 2)), Contains("expects labels c [4, 3]"));
  CHECK_THROWS_WITH(G.mapping(z, c0.to(DType::f32)), Contains("dtype and device"));
  CHECK(max_abs_diff(G.mapping(z, c0), G.mapping(z, c2)) > 1e-3);
  CHECK(max_abs_diff(D.forward(img, c0), D.forward(img, c2)) > 1e-3);
  {
    Config u = tiny("small", 1);
    Rng r2(5);
    Generator Gu(u, r2);
    CHECK_THROWS_WITH(Gu.mapping(z, c0), Contains("unconditional"));
    Config s = tiny("seed32", 1);
    s.c_dim = 3;
    CHECK_THROWS_WITH(Generator(s, r2), Contains("seed32") && Contains("unconditional"));
  }

  // The projection: give an unconditional D the same blocks and epilogue, copy its one output
  // row into every row of the conditional D's b4.out, and make the label mapping constant
  // (zero weights, biases b: cmap_j = lrelu(0.01 b_j) sqrt 2). Then the conditional logit is
  // the unconditional one times sum_j cmap_j / sqrt(C4), for every label.
  {
    Config u = tiny("small", 1);
    Rng r3(7);
    Discriminator Du(u, r3);
    perturb_constants(Du.parameters(), 302);
    const int64_t c4 = channels_at(c, 4);
    double cmap_sum = 0;
    REQUIRE(c.cmap_layers >= 1);
    const std::string last_bias = str("mapping.fc", c.cmap_layers - 1, ".bias");
    for (auto& [name, t] : D.parameters().params) {
      if (name.rfind("mapping.", 0) == 0) {
        if (name.find("weight") != std::string::npos) fill(t, 0.0);
        if (name == last_bias) {
          for (int64_t j = 0; j < c4; ++j) {
            const double b = 10.0 * (j + 1), a = 0.01 * b;  // the bias is used times lr_mul 0.01
            t.data<double>()[j] = b;
            cmap_sum += a * std::sqrt(2.0);
          }
        }
        continue;
      }
      const Tensor& src = Du.parameters().get(name);
      if (name == "b4.out.weight" || name == "b4.out.bias") {
        const int64_t row = name == "b4.out.weight" ? src.numel() : 1;
        for (int64_t j = 0; j < c4; ++j)
          std::memcpy(t.data<double>() + j * row, src.data<double>(), sizeof(double) * (size_t)row);
      } else {
        REQUIRE(t.shape() == src.shape());
        std::memcpy(t.data<double>(), src.data<double>(), sizeof(double) * (size_t)t.numel());
      }
    }
    const double scale = cmap_sum / std::sqrt((double)c4);
    const Tensor want = mul(Du.forward(img), scale);
    CHECK(max_abs_diff(D.forward(img, c0), want) <= 1e-12 * std::max(1.0, std::abs(scale)));
    CHECK(max_abs_diff(D.forward(img, c2), want) <= 1e-12 * std::max(1.0, std::abs(scale)));
    perturb_constants(D.parameters(), 303);  // back to a label mapping that depends on c
    Rng r4(8);
    for (auto& [name, t] : D.parameters().params)
      if (name.rfind("mapping.", 0) == 0 && name.find("weight") != std::string::npos) {
        Tensor n = randn(t.shape(), r4, DType::f64);
        std::memcpy(t.data<double>(), n.data<double>(), sizeof(double) * (size_t)t.numel());
      }
  }

  // Second order through the labels' parameters: R1 through the conditional D and the path
  // length through the conditional G, against central differences.
  {
    Tensor x = img.detach().set_requires_grad(true);
    auto r1 = [&]() {
      Tensor g = autograd::grad({sum(D.forward(x, c2))}, {x}, {}, /*create_graph=*/true)[0];
      return mean(sum(square(g), {1, 2, 3}));
    };
    check_param_grads(D.parameters(), r1, {"mapping.embed.weight", "mapping.fc0.weight", "b4.out.weight"}, 3, 41);
    const Tensor y = randn({4, 1, 8, 8}, rng, DType::f64);
    auto pl = [&]() {
      Tensor ws = G.mapping(z, c2);
      Tensor out = G.synthesis(ws, NoiseMode::constant, rng);
      Tensor g = autograd::grad({sum(mul(out, y))}, {ws}, {}, /*create_graph=*/true)[0];
      return mean(sqrt(mean(sum(square(g), {2}), {1})));
    };
    check_param_grads(G.parameters(), pl, {"mapping.embed.weight", "mapping.embed.bias", "mapping.fc0.weight"}, 3, 42);
  }
}
