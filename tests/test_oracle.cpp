// PyTorch as an outside oracle. tests/oracle/make_fixtures.py (Debian's python3-torch, float64,
// fixed seeds) writes one safetensors file per case; each TEST_CASE here rebuilds the same
// computation with the sg:: API and compares values, gradients and gradients of gradients:
// relative error <= 1e-10 in f64 and <= 1e-4 in f32 (inputs cast from the f64 fixture).
#include <cmath>
#include <functional>
#include <optional>

#include "oracle_util.h"

using namespace sg;
using sg::oracle::Fixture;

namespace {

const DType kDTypes[] = {DType::f64, DType::f32};
const double kSqrt2 = std::sqrt(2.0);

using BinaryOp = std::function<Tensor(const Tensor&, const Tensor&)>;

// y = op(x, w); first order of sum(y * gy) without and with create_graph; second order of
// h = |dx|^2 + |dw|^2 with respect to x, w and gy.
void run_conv_like(const std::string& name, const BinaryOp& op) {
  Fixture fx(name);
  for (DType dt : kDTypes) {
    INFO("dtype " << dtype_name(dt));
    Tensor x = fx.input("x", dt), w = fx.input("w", dt), gy = fx.input("gy", dt);
    {
      Tensor y = op(x, w);
      SG_ORACLE_CHECK(fx, "y", y, dt);
      auto g = autograd::grad({sum(y * gy)}, {x, w});
      INFO("first order, create_graph=false");
      SG_ORACLE_CHECK(fx, "dx", g[0], dt);
      SG_ORACLE_CHECK(fx, "dw", g[1], dt);
    }
    Tensor y = op(x, w);
    auto g = autograd::grad({sum(y * gy)}, {x, w}, {}, /*create_graph=*/true);
    SG_ORACLE_CHECK(fx, "dx", g[0], dt);
    SG_ORACLE_CHECK(fx, "dw", g[1], dt);
    Tensor h = sum(square(g[0])) + sum(square(g[1]));
    SG_ORACLE_CHECK(fx, "h", h, dt);
    auto g2 = autograd::grad({h}, {x, w, gy}, {}, false, /*allow_unused=*/true);
    SG_ORACLE_CHECK(fx, "dh_dx", g2[0], dt);
    SG_ORACLE_CHECK(fx, "dh_dw", g2[1], dt);
    SG_ORACLE_CHECK(fx, "dh_dgy", g2[2], dt);
  }
}

using ElementOp = std::function<Tensor(const Tensor&)>;

// y = op(x); first order of sum(y * gy) without and with create_graph; second order of
// h = |dx|^2 with respect to x and gy (zero in x for pooling: the engine may give none).
void run_unary(const std::string& name, const ElementOp& op) {
  Fixture fx(name);
  for (DType dt : kDTypes) {
    INFO("dtype " << dtype_name(dt));
    Tensor x = fx.input("x", dt), gy = fx.input("gy", dt);
    {
      Tensor y = op(x);
      SG_ORACLE_CHECK(fx, "y", y, dt);
      auto g = autograd::grad({sum(y * gy)}, {x});
      INFO("first order, create_graph=false");
      SG_ORACLE_CHECK(fx, "dx", g[0], dt);
    }
    Tensor y = op(x);
    Tensor dx = autograd::grad({sum(y * gy)}, {x}, {}, /*create_graph=*/true)[0];
    SG_ORACLE_CHECK(fx, "dx", dx, dt);
    Tensor h = sum(square(dx));
    SG_ORACLE_CHECK(fx, "h", h, dt);
    auto g2 = autograd::grad({h}, {x, gy}, {}, false, /*allow_unused=*/true);
    SG_ORACLE_CHECK(fx, "dh_dx", g2[0], dt);
    SG_ORACLE_CHECK(fx, "dh_dgy", g2[1], dt);
  }
}

using UnaryOp = std::function<Tensor(const Tensor& x, const Tensor& f)>;

void run_upfirdn(const std::string& name, const UnaryOp& op) {
  Fixture fx(name);
  for (DType dt : kDTypes) {
    INFO("dtype " << dtype_name(dt));
    Tensor x = fx.input("x", dt);
    Tensor f = fx.input("f", dt, false);
    Tensor gy = fx.input("gy", dt, false);
    Tensor y = op(x, f);
    SG_ORACLE_CHECK(fx, "y", y, dt);
    auto g = autograd::grad({y}, {x}, {gy});
    SG_ORACLE_CHECK(fx, "dx", g[0], dt);
  }
}

UpFirDn make_upfirdn(int64_t up, int64_t down, std::array<int64_t, 4> pad, double gain) {
  UpFirDn p;
  p.upx = p.upy = up;
  p.downx = p.downy = down;
  p.pad = pad;
  p.gain = gain;
  return p;
}

void run_bias_act(const std::string& name, double clamp_value) {
  Fixture fx(name);
  for (bool composite : {false, true}) {
    INFO((composite ? "composite: clamp(leaky_relu(x + b) * sqrt2)" : "sg::bias_act"));
    for (DType dt : kDTypes) {
      INFO("dtype " << dtype_name(dt));
      Tensor x = fx.input("x", dt), b = fx.input("b", dt), gy = fx.input("gy", dt);
      Tensor y;
      if (composite) {
        y = leaky_relu(x + reshape(b, {1, -1, 1, 1}), 0.2) * kSqrt2;
        if (clamp_value >= 0) y = clamp(y, -clamp_value, clamp_value);
      } else {
        y = bias_act(x, b, Act::lrelu, 0.2, kSqrt2, clamp_value);
      }
      SG_ORACLE_CHECK(fx, "y", y, dt);
      auto g = autograd::grad({sum(y * gy)}, {x, b}, {}, /*create_graph=*/true);
      SG_ORACLE_CHECK(fx, "dx", g[0], dt);
      SG_ORACLE_CHECK(fx, "db", g[1], dt);
      Tensor h = sum(square(g[0]));
      SG_ORACLE_CHECK(fx, "h", h, dt);
      auto g2 = autograd::grad({h}, {gy});
      SG_ORACLE_CHECK(fx, "dh_dgy", g2[0], dt);
    }
  }
}

void run_modconv(const std::string& name, bool demodulate, int64_t up) {
  Fixture fx(name);
  for (bool fused : {true, false}) {
    INFO("fused=" << fused);
    for (DType dt : kDTypes) {
      INFO("dtype " << dtype_name(dt));
      Tensor x = fx.input("x", dt), weight = fx.input("weight", dt), styles = fx.input("styles", dt);
      Tensor gy = fx.input("gy", dt, false);
      ModConv p;
      p.demodulate = demodulate;
      p.up = up;
      p.padding = 1;
      p.fused = fused;
      if (up != 1) p.resample_filter = fx.input("f", dt, false);
      Tensor y = modulated_conv2d(x, weight, styles, p);
      SG_ORACLE_CHECK(fx, "y", y, dt);
      auto g = autograd::grad({y}, {x, weight, styles}, {gy});
      SG_ORACLE_CHECK(fx, "dx", g[0], dt);
      SG_ORACLE_CHECK(fx, "dweight", g[1], dt);
      SG_ORACLE_CHECK(fx, "dstyles", g[2], dt);
    }
  }
}

}  // namespace

// ---- convolution -------------------------------------------------------------------------------
TEST_CASE("oracle: conv2d grouped strided", "[oracle]") {
  run_conv_like("conv2d_grouped", [](const Tensor& x, const Tensor& w) { return conv2d(x, w, {2, 2}, {1, 1}, 2); });
}

TEST_CASE("oracle: conv2d ungrouped stride 1", "[oracle]") {
  // Non-square kernel [5,3,3,2] and padding (1, 0).
  run_conv_like("conv2d_plain", [](const Tensor& x, const Tensor& w) { return conv2d(x, w, {1, 1}, {1, 0}, 1); });
}

TEST_CASE("oracle: conv_transpose2d grouped strided output_padding", "[oracle]") {
  run_conv_like("conv_transpose2d", [](const Tensor& x, const Tensor& w) {
    return conv_transpose2d(x, w, {2, 2}, {1, 1}, {1, 1}, 2);
  });
}

// ---- upfirdn2d ---------------------------------------------------------------------------------
TEST_CASE("oracle: upfirdn2d up 2", "[oracle]") {
  run_upfirdn("upfirdn2d_up2", [](const Tensor& x, const Tensor& f) {
    return upfirdn2d(x, f, make_upfirdn(2, 1, {2, 1, 2, 1}, 4.0));
  });
  INFO("sg::upsample2d (StyleGAN2 padding)");
  run_upfirdn("upfirdn2d_up2", [](const Tensor& x, const Tensor& f) { return upsample2d(x, f, 2); });
}

TEST_CASE("oracle: upfirdn2d down 2", "[oracle]") {
  run_upfirdn("upfirdn2d_down2", [](const Tensor& x, const Tensor& f) {
    return upfirdn2d(x, f, make_upfirdn(1, 2, {1, 1, 1, 1}, 1.0));
  });
  INFO("sg::downsample2d (StyleGAN2 padding)");
  run_upfirdn("upfirdn2d_down2", [](const Tensor& x, const Tensor& f) { return downsample2d(x, f, 2); });
}

TEST_CASE("oracle: upfirdn2d asymmetric padding", "[oracle]") {
  run_upfirdn("upfirdn2d_pad_asym", [](const Tensor& x, const Tensor& f) {
    return upfirdn2d(x, f, make_upfirdn(1, 1, {2, 1, 1, 0}, 1.0));
  });
}

TEST_CASE("oracle: upfirdn2d 2-D asymmetric filter", "[oracle]") {
  // f [3, 4] random: a missing or doubled filter flip shows here (the [1,3,3,1] filter is
  // symmetric and cannot tell).
  run_upfirdn("upfirdn2d_filter2d", [](const Tensor& x, const Tensor& f) {
    return upfirdn2d(x, f, make_upfirdn(2, 2, {1, 2, 2, 1}, 1.5));
  });
}

// ---- bias_act ----------------------------------------------------------------------------------
TEST_CASE("oracle: bias_act lrelu clamp", "[oracle]") { run_bias_act("bias_act_clamp", 0.5); }

TEST_CASE("oracle: bias_act lrelu no clamp", "[oracle]") { run_bias_act("bias_act_noclamp", -1.0); }

// ---- modulated convolution ---------------------------------------------------------------------
TEST_CASE("oracle: modulated_conv2d demodulate", "[oracle]") { run_modconv("modconv_demod", true, 1); }

TEST_CASE("oracle: modulated_conv2d no demodulation", "[oracle]") { run_modconv("modconv_nodemod", false, 1); }

TEST_CASE("oracle: modulated_conv2d up 2 demodulate", "[oracle]") { run_modconv("modconv_up2", true, 2); }

// ---- R1: second order through a small conv discriminator ---------------------------------------
TEST_CASE("oracle: R1 penalty second order", "[oracle]") {
  Fixture fx("r1");
  const char* names[] = {"w1", "b1", "w2", "b2", "w3", "b3"};
  for (bool use_bias_act : {false, true}) {
    INFO((use_bias_act ? "bias_act(lrelu, gain sqrt2)" : "conv + b, leaky_relu * sqrt2"));
    for (bool guard : {false, true}) {
      INFO("NoWeightGradientsGuard around the inner gradient: " << guard);
      for (DType dt : kDTypes) {
        INFO("dtype " << dtype_name(dt));
        std::map<std::string, Tensor> p;
        std::vector<Tensor> params;
        for (const char* n : names) params.push_back(p[n] = fx.input(n, dt));
        Tensor x = fx.input("x", dt);
        auto act = [&](const Tensor& h, const Tensor& b) {
          if (use_bias_act) return bias_act(h, b, Act::lrelu, 0.2, kSqrt2);
          return leaky_relu(h + reshape(b, {1, -1, 1, 1}), 0.2) * kSqrt2;
        };
        auto D = [&](const Tensor& img) {
          Tensor h = act(conv2d(img, p["w1"], {1, 1}, {1, 1}), p["b1"]);
          h = act(conv2d(h, p["w2"], {2, 2}, {1, 1}), p["b2"]);
          return linear(reshape(h, {h.size(0), -1}), p["w3"], p["b3"]);
        };
        Tensor logits = D(x);
        SG_ORACLE_CHECK(fx, "logits", logits, dt);
        Tensor r1_grads;
        {
          std::optional<NoWeightGradientsGuard> g;
          if (guard) g.emplace();
          r1_grads = autograd::grad({sum(logits)}, {x}, {}, /*create_graph=*/true)[0];
        }
        SG_ORACLE_CHECK(fx, "r1_grads", r1_grads, dt);
        Tensor r1 = mean(sum(square(r1_grads), {1, 2, 3}));
        SG_ORACLE_CHECK(fx, "r1", r1, dt);
        // b1, b2 only move the piecewise-constant lrelu masks and b3 does not enter the
        // gradient at all: their second-order gradients are zero (or undefined).
        auto gp = autograd::grad({r1}, params, {}, false, /*allow_unused=*/true);
        for (size_t i = 0; i < params.size(); ++i) SG_ORACLE_CHECK(fx, std::string("d_r1_d_") + names[i], gp[i], dt);
      }
    }
  }
}

// ---- path length: second order through a small modulated-conv generator -------------------------
TEST_CASE("oracle: path length second order", "[oracle]") {
  Fixture fx("path_length");
  const char* names[] = {"affine_w", "affine_b", "const", "conv_w", "conv_b", "rgb_affine_w", "rgb_affine_b", "rgb_w"};
  for (bool fused : {true, false}) {
    INFO("fused=" << fused);
    for (bool use_bias_act : {false, true}) {
      INFO((use_bias_act ? "bias_act(lrelu, gain sqrt2)" : "+ bias, leaky_relu * sqrt2"));
      for (bool guard : {false, true}) {
        // The guard skips only the gradients of leaf weights: in the fused path the grouped
        // conv's weight is computed from the styles, and its gradient (d img / d w itself)
        // must survive the guard.
        INFO("NoWeightGradientsGuard around the inner gradient: " << guard);
        for (DType dt : kDTypes) {
          INFO("dtype " << dtype_name(dt));
          std::map<std::string, Tensor> p;
          std::vector<Tensor> params;
          for (const char* n : names) params.push_back(p[n] = fx.input(n, dt));
          Tensor w = fx.input("w", dt);
          Tensor pl_noise = fx.input("pl_noise", dt, false);
          const int64_t batch = w.size(0);
          auto G = [&](const Tensor& ws) {
            Tensor styles = linear(ws, p["affine_w"], p["affine_b"]);
            Tensor x = repeat(p["const"], {batch, 1, 1, 1});
            ModConv conv;
            conv.demodulate = true;
            conv.padding = 1;
            conv.fused = fused;
            x = modulated_conv2d(x, p["conv_w"], styles, conv);
            if (use_bias_act)
              x = bias_act(x, p["conv_b"], Act::lrelu, 0.2, kSqrt2);
            else
              x = leaky_relu(x + reshape(p["conv_b"], {1, -1, 1, 1}), 0.2) * kSqrt2;
            Tensor rgb_styles = linear(ws, p["rgb_affine_w"], p["rgb_affine_b"]);
            ModConv torgb;
            torgb.demodulate = false;
            torgb.padding = 0;
            torgb.fused = fused;
            return modulated_conv2d(x, p["rgb_w"], rgb_styles, torgb);
          };
          Tensor img = G(w);
          SG_ORACLE_CHECK(fx, "img", img, dt);
          Tensor pl_grads;
          {
            std::optional<NoWeightGradientsGuard> g;
            if (guard) g.emplace();
            pl_grads = autograd::grad({sum(img * pl_noise)}, {w}, {}, /*create_graph=*/true)[0];
          }
          SG_ORACLE_CHECK(fx, "pl_grads", pl_grads, dt);
          Tensor pl_lengths = sqrt(sum(square(pl_grads), {1}));
          SG_ORACLE_CHECK(fx, "pl_lengths", pl_lengths, dt);
          Tensor loss = mean(square(pl_lengths - 0.5));
          SG_ORACLE_CHECK(fx, "loss", loss, dt);
          std::vector<Tensor> inputs = params;
          inputs.push_back(w);
          auto g = autograd::grad({loss}, inputs, {}, false, /*allow_unused=*/true);
          for (size_t i = 0; i < params.size(); ++i) SG_ORACLE_CHECK(fx, std::string("d_loss_d_") + names[i], g[i], dt);
          SG_ORACLE_CHECK(fx, "d_loss_d_w", g.back(), dt);
        }
      }
    }
  }
}

// ---- softsign and pooling: first and second order ----------------------------------------------
TEST_CASE("oracle: softsign", "[oracle]") {
  run_unary("softsign", [](const Tensor& x) { return softsign(x); });
}

TEST_CASE("oracle: max_pool2d kernel 3 stride 2 padding 1", "[oracle]") {
  // x [2, 3, 9, 8] a scaled permutation: every window's maximum is unique.
  run_unary("max_pool2d", [](const Tensor& x) { return max_pool2d(x, {3, 3}, {2, 2}, {1, 1}); });
}

TEST_CASE("oracle: avg_pool2d kernel 3 stride 2 padding 1 count_include_pad", "[oracle]") {
  run_unary("avg_pool2d_pad_counted", [](const Tensor& x) {
    return avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, /*count_include_pad=*/true);
  });
}

TEST_CASE("oracle: avg_pool2d kernel 3 stride 2 padding 1 padding not counted", "[oracle]") {
  run_unary("avg_pool2d_pad_uncounted", [](const Tensor& x) {
    return avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, /*count_include_pad=*/false);
  });
}

TEST_CASE("oracle: avg_pool2d kernel 2 stride 2", "[oracle]") {
  // H = 9: the last row is in no window (its gradient is zero).
  run_unary("avg_pool2d_k2", [](const Tensor& x) { return avg_pool2d(x, {2, 2}, {2, 2}); });
}

// ---- the demodulation's weight term: first and second order --------------------------------------
TEST_CASE("oracle: conv_weight_sq_sums", "[oracle]") {
  // w [3, 17, 3, 3]: the CPU kernel's 16-channel step (f32) and its one-by-one tail.
  run_unary("conv_weight_sq_sums", [](const Tensor& w) { return conv_weight_sq_sums(w); });
}
