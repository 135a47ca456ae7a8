// StyleGAN2 (stylegan2-ada-pytorch's training/networks.py, re-derived): the skip generator
// and the residual discriminator. Every conv and FC uses the equalized learning rate
// (weights N(0,1), scaled at run time by lr_mul/sqrt(fan_in)).
//
// Generator (names as in ada's state_dict):
//   mapping.embed          (conditional, c_dim > 0) FC c -> w_dim, linear; its output pixel-
//                          normed and concatenated after pixel_norm(z)
//   mapping.fc{i}          z -> pixel norm -> FC(lrelu, gain sqrt 2, lr x mapping_lr_mul)...
//   mapping.w_avg          buffer, moving average of w (beta 0.995), for truncation
//   synthesis.b4.const     [C4, 4, 4]
//   synthesis.b{r}.conv0   (r > 4) styled 3x3 conv, up 2 (transposed conv + FIR [1,3,3,1])
//   synthesis.b{r}.conv1   styled 3x3 conv
//       styles = affine(w) (FC, bias init 1); modulated conv with demodulation;
//       + noise * noise_strength (random [N,1,r,r], the fixed buffer noise_const, or none);
//       bias + lrelu (gain sqrt 2, clamp conv_clamp) via bias_act
//   synthesis.b{r}.torgb   1x1 modulated conv without demodulation, styles = affine(w)/sqrt(C)
//   img = upsample2d(img) + torgb(x) at every block (skip architecture)
//   ws: block b4 uses ws[0] (conv1) and ws[1] (torgb); block r uses ws[i], ws[i+1], ws[i+2]
//   for conv0, conv1, torgb, and the next block starts at i+2 (num_ws = 2 log2 R - 2).
//
// Discriminator:
//   b{R}.fromrgb           1x1 conv, lrelu
//   b{r}.conv0, .conv1     3x3 lrelu, conv1 with down 2 (FIR blur then stride 2)
//   b{r}.skip              1x1, down 2, no bias, linear
//       x = skip(x) * sqrt(1/2) + conv1(conv0(x)) * sqrt(1/2)   (gain folded into bias_act)
//   b4: minibatch stddev (group mbstd_group, mbstd_channels), conv 3x3, fc (lrelu), out
//   conditional (c_dim > 0): mapping.embed, mapping.fc0..{cmap_layers-1} map c to cmap [N, C4]
//   (ada's MappingNetwork with z_dim 0: 8 layers there, lr x 0.01, registered between the blocks
//   and b4);
//   b4.out has C4 outputs and the logit is sum(out * cmap) / sqrt(C4) (a projection D)
//
// cfg.bf16_res > 0 (bf16-mixed): the blocks of G and D at resolution >= bf16_res run under
// CudaMathGuard(bf16), the mapping and D's b4 epilogue under the process's math.
#include <cmath>
#include <optional>

#include "models/layers.h"

namespace sg::models::detail {

namespace {

// A styled 3x3 conv (ada's SynthesisLayer). clamp and fused come from the Config.
struct SynthesisLayer {
  struct Options {
    int64_t in = 0, out = 0;
    int64_t res = 4;  // output resolution (of the noise)
    int64_t up = 1;   // 1 or 2
  };
  Options opt;
  Param weight, noise_strength, bias;
  EqFC affine;
  Buffer noise_const;
  double clamp = -1;
  bool fused = false;

  static SynthesisLayer make(Builder& B, const Config& c, const std::string& name, const Options& o) {
    SynthesisLayer l;
    l.opt = o, l.clamp = c.conv_clamp, l.fused = c.fused_modconv;
    l.weight = B.param(name + ".weight", B.randn({o.out, o.in, 3, 3}));
    l.noise_strength = B.param(name + ".noise_strength", B.zeros({}));
    l.bias = B.param(name + ".bias", B.zeros({o.out}));
    l.affine = EqFC::make(B, name + ".affine", {.in = c.w_dim, .out = o.in, .bias_init = 1.0});
    l.noise_const = B.buffer(name + ".noise_const", B.randn({o.res, o.res}));
    return l;
  }

  Tensor forward(const ParamList& P, const Tensor& x, const Tensor& w, NoiseMode noise, Rng& rng,
                 const Tensor& filter) const {
    Tensor styles = affine.forward(P, w);
    ModConv p;
    p.demodulate = true;
    p.up = opt.up;
    p.padding = 1;
    p.fused = fused;
    p.resample_filter = filter;
    Tensor y = modulated_conv2d(x, weight(P), styles, p);
    const Tensor& s = noise_strength(P);
    const int64_t res = opt.res;
    if (noise == NoiseMode::random)
      y = add(y, mul(sg::randn({x.size(0), 1, res, res}, rng, x.dtype(), x.device()), s));
    else if (noise == NoiseMode::constant)
      y = add(y, mul(noise_const(P), s));  // [res,res] broadcasts over [N,C]
    return bias_act(y, bias(P), Act::lrelu, 0.2, std::sqrt(2.0), clamp, 1);
  }
};

struct ToRGBLayer {
  Param weight, bias;
  EqFC affine;
  int64_t in = 0;
  double clamp = -1;
  bool fused = false;

  static ToRGBLayer make(Builder& B, const Config& c, const std::string& name, int64_t in) {
    ToRGBLayer t;
    t.in = in, t.clamp = c.conv_clamp, t.fused = c.fused_modconv;
    t.weight = B.param(name + ".weight", B.randn({c.img_channels, in, 1, 1}));
    t.bias = B.param(name + ".bias", B.zeros({c.img_channels}));
    t.affine = EqFC::make(B, name + ".affine", {.in = c.w_dim, .out = in, .bias_init = 1.0});
    return t;
  }

  Tensor forward(const ParamList& P, const Tensor& x, const Tensor& w) const {
    Tensor styles = mul(affine.forward(P, w), 1.0 / std::sqrt((double)in));
    ModConv p;
    p.demodulate = false;
    p.fused = fused;
    Tensor y = modulated_conv2d(x, weight(P), styles, p);
    return bias_act(y, bias(P), Act::linear, 0.2, 1.0, clamp, 1);
  }
};

struct SynthesisBlock {
  int64_t res = 4, in = 0, out = 0;
  Param cnst;  // b4 only: synthesis.b4.const
  bool has_conv0 = false;
  SynthesisLayer conv0, conv1;
  ToRGBLayer torgb;
};

struct StyleGAN2Generator : GeneratorNet {
  Config cfg;
  EqMapping map;
  std::vector<SynthesisBlock> blocks;
  Tensor filter;
  void to(Device d) override { filter = filter.to(d); }
  int64_t nws = 0;

  int64_t num_ws() const override { return nws; }

  Tensor mapping(const ParamList& P, const Tensor& z, const Tensor& c) const override { return map.forward(P, z, c); }

  Tensor synthesis(const ParamList& P, const std::vector<Tensor>& ws, NoiseMode noise, Rng& rng) const override {
    const int64_t N = ws[0].size(0);
    Tensor x, img;
    size_t wi = 0;
    for (const auto& b : blocks) {
      std::optional<CudaMathGuard> math;
      if (cfg.bf16_res > 0 && b.res >= cfg.bf16_res) math.emplace(CudaMath::bf16);
      if (!b.has_conv0) {
        const Tensor& c = b.cnst(P);
        x = expand(unsqueeze(c, 0), {N, c.size(0), c.size(1), c.size(2)});
        x = b.conv1.forward(P, x, ws[wi], noise, rng, filter);
        wi += 1;
      } else {
        x = b.conv0.forward(P, x, ws[wi], noise, rng, filter);
        x = b.conv1.forward(P, x, ws[wi + 1], noise, rng, filter);
        wi += 2;
      }
      Tensor y = b.torgb.forward(P, x, ws[wi]);
      img = img.defined() ? add(upsample2d(img, filter, 2), y) : y;
    }
    return img;
  }
};

struct DiscriminatorBlock {
  int64_t res = 0;
  bool has_fromrgb = false;
  EqConv fromrgb, conv0, conv1, skip;
};

struct StyleGAN2Discriminator : DiscriminatorNet {
  Config cfg;
  std::vector<DiscriminatorBlock> blocks;
  EqConv conv;
  EqFC fc, out;
  EqMapping cmap;  // conditional only
  Tensor filter;
  void to(Device d) override { filter = filter.to(d); }

  Tensor forward(const ParamList& P, const Tensor& img, const Tensor& c) const override {
    const double g = std::sqrt(0.5);
    Tensor x;
    for (const auto& b : blocks) {
      std::optional<CudaMathGuard> math;
      if (cfg.bf16_res > 0 && b.res >= cfg.bf16_res) math.emplace(CudaMath::bf16);
      if (b.has_fromrgb) x = b.fromrgb.forward(P, img, filter);
      Tensor y = b.skip.forward(P, x, filter, g);
      x = b.conv0.forward(P, x, filter);
      x = b.conv1.forward(P, x, filter, g);
      x = add(y, x);
    }
    const int64_t N = x.size(0);
    if (cfg.mbstd_channels > 0) x = minibatch_stddev(x, std::min(cfg.mbstd_group, N), cfg.mbstd_channels);
    x = conv.forward(P, x, filter);
    x = fc.forward(P, reshape(x, {N, -1}));
    x = out.forward(P, x);
    if (cfg.c_dim == 0) return x;
    const Tensor cm = label_map(P, c);  // [N, C4]
    return mul(sum(mul(x, cm), {1}, true), 1.0 / std::sqrt((double)cm.size(1)));
  }
  Tensor label_map(const ParamList& P, const Tensor& c) const override { return cmap.forward(P, Tensor(), c); }
};

}  // namespace

std::unique_ptr<GeneratorNet> make_stylegan2_generator(const Config& c, Builder& B) {
  auto g = std::make_unique<StyleGAN2Generator>();
  g->cfg = c;
  g->filter = fir_filter({1, 3, 3, 1}, c.dtype);
  g->map = EqMapping::make(
      B, "mapping",
      {.z_dim = c.z_dim, .c_dim = c.c_dim, .out = c.w_dim, .layers = c.mapping_layers, .lr_mul = c.mapping_lr_mul});
  for (int64_t r = 4; r <= c.resolution; r *= 2) {
    SynthesisBlock b;
    const std::string name = res_name("synthesis.b", r);
    b.res = r;
    b.in = r > 4 ? channels_at(c, r / 2) : 0;
    b.out = channels_at(c, r);
    if (r == 4) {
      b.cnst = B.param(name + ".const", B.randn({b.out, 4, 4}));
    } else {
      b.has_conv0 = true;
      b.conv0 = SynthesisLayer::make(B, c, name + ".conv0", {.in = b.in, .out = b.out, .res = r, .up = 2});
      g->nws += 1;
    }
    b.conv1 = SynthesisLayer::make(B, c, name + ".conv1", {.in = b.out, .out = b.out, .res = r});
    b.torgb = ToRGBLayer::make(B, c, name + ".torgb", b.out);
    g->nws += 1;
    g->blocks.push_back(std::move(b));
  }
  g->nws += 1;  // the last block's toRGB
  return g;
}

std::unique_ptr<DiscriminatorNet> make_stylegan2_discriminator(const Config& c, Builder& B) {
  auto d = std::make_unique<StyleGAN2Discriminator>();
  d->cfg = c;
  d->filter = fir_filter({1, 3, 3, 1}, c.dtype);
  const double cl = c.conv_clamp;
  for (int64_t r = c.resolution; r >= 8; r /= 2) {
    DiscriminatorBlock b;
    const std::string name = res_name("b", r);
    const int64_t tmp = channels_at(c, r), out = channels_at(c, r / 2);
    b.res = r;
    if (r == c.resolution) {
      b.has_fromrgb = true;
      b.fromrgb = EqConv::make(B, name + ".fromrgb",
                               {.in = c.img_channels, .out = tmp, .k = 1, .act = Act::lrelu, .clamp = cl});
    }
    b.conv0 = EqConv::make(B, name + ".conv0", {.in = tmp, .out = tmp, .k = 3, .act = Act::lrelu, .clamp = cl});
    b.conv1 =
        EqConv::make(B, name + ".conv1", {.in = tmp, .out = out, .k = 3, .act = Act::lrelu, .down = 2, .clamp = cl});
    b.skip = EqConv::make(B, name + ".skip", {.in = tmp, .out = out, .k = 1, .down = 2, .bias = false});
    d->blocks.push_back(std::move(b));
  }
  const int64_t c4 = channels_at(c, 4);
  SG_CHECK(c.mbstd_channels == 0 || c.mbstd_group >= 1, "Discriminator", "mbstd_group must be >= 1, got ",
           c.mbstd_group);
  SG_CHECK(c.c_dim == 0 || c.cmap_layers >= 0, "Discriminator", "cmap_layers must be >= 0, got ", c.cmap_layers);
  if (c.c_dim > 0)
    d->cmap = EqMapping::make(B, "mapping", {.c_dim = c.c_dim, .out = c4, .layers = c.cmap_layers, .lr_mul = 0.01});
  d->conv =
      EqConv::make(B, "b4.conv", {.in = c4 + c.mbstd_channels, .out = c4, .k = 3, .act = Act::lrelu, .clamp = cl});
  d->fc = EqFC::make(B, "b4.fc", {.in = c4 * 16, .out = c4, .act = Act::lrelu});
  d->out = EqFC::make(B, "b4.out", {.in = c4, .out = c.c_dim > 0 ? c4 : 1, .act = Act::linear});
  return d;
}

}  // namespace sg::models::detail
