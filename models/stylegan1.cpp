// StyleGAN1-style synthesis (AdaIN), the baseline StyleGAN2 replaced: the same equalized-lr
// mapping as StyleGAN2 and the StyleGAN2 residual discriminator (models/stylegan2.cpp), so a
// run of `stylegan1` against `small` shows what weight demodulation fixed.
//
// Every style layer (names synthesis.b{r}.*):
//   x = conv(x)                      equalized-lr 3x3 (conv0 of r > 4: up 2, transposed conv +
//                                    FIR [1,3,3,1]); b4's first layer has no conv (the const)
//   x = x + noise * noise_strength   per-channel strength [C] (as StyleGAN1), noise as in StyleGAN2
//   x = lrelu(x + bias) * sqrt 2     bias_act (conv_clamp applies)
//   x = (x - mean_hw x) * rsqrt(mean_hw (x - mean)^2 + 1e-8)     instance norm
//   x = x * (1 + s) + t,  [s, t] = affine(w)  (equalized FC w -> 2C, bias 0)      AdaIN
// Layers: b4.style0 (on the const), b4.conv1, then b{r}.conv0 and b{r}.conv1; one w each
// (num_ws = 2 log2 R - 2). Output: one unstyled 1x1 toRGB at the last resolution (StyleGAN1
// after progressive growing), named synthesis.b{R}.torgb.
#include <cmath>

#include "models/layers.h"

namespace sg::models::detail {

namespace {

struct AdaINLayer {
  struct Options {
    int64_t in = 0, out = 0;
    int64_t res = 4;       // output resolution (of the noise)
    int64_t up = 1;        // 1 or 2
    bool has_conv = true;  // false: b4.style0, on the const
  };
  Options opt;
  EqConv conv;  // linear, no bias (the bias comes after the noise); its weight is name.weight
  Param noise_strength, bias;
  EqFC affine;
  Buffer noise_const;
  double clamp = -1;

  static AdaINLayer make(Builder& B, const Config& c, const std::string& name, const Options& o) {
    AdaINLayer l;
    l.opt = o, l.clamp = c.conv_clamp;
    if (o.has_conv) l.conv = EqConv::make(B, name, {.in = o.in, .out = o.out, .k = 3, .up = o.up, .bias = false});
    l.noise_strength = B.param(name + ".noise_strength", B.zeros({o.out}));
    l.bias = B.param(name + ".bias", B.zeros({o.out}));
    l.affine = EqFC::make(B, name + ".affine", {.in = c.w_dim, .out = 2 * o.out, .bias_init = 0.0});
    l.noise_const = B.buffer(name + ".noise_const", B.randn({o.res, o.res}));
    return l;
  }

  Tensor forward(const ParamList& P, Tensor x, const Tensor& w, NoiseMode noise, Rng& rng, const Tensor& filter) const {
    const int64_t N = x.size(0), ch = opt.out, res = opt.res;
    if (opt.has_conv) x = conv.forward(P, x, filter);
    const Tensor s = reshape(noise_strength(P), {1, ch, 1, 1});
    if (noise == NoiseMode::random)
      x = add(x, mul(sg::randn({N, 1, res, res}, rng, x.dtype(), x.device()), s));
    else if (noise == NoiseMode::constant)
      x = add(x, mul(reshape(noise_const(P), {1, 1, res, res}), s));
    x = bias_act(x, bias(P), Act::lrelu, 0.2, std::sqrt(2.0), clamp, 1);
    x = sub(x, mean(x, {2, 3}, true));
    x = mul(x, rsqrt(add(mean(square(x), {2, 3}, true), 1e-8)));
    Tensor st = affine.forward(P, w);  // [N, 2C]
    Tensor scale = reshape(slice(st, 1, 0, ch), {N, ch, 1, 1});
    Tensor shift = reshape(slice(st, 1, ch, 2 * ch), {N, ch, 1, 1});
    return add(mul(x, add(scale, 1.0)), shift);
  }
};

struct StyleGAN1Generator : GeneratorNet {
  Config cfg;
  EqMapping map;
  Param cnst;                      // synthesis.b4.const
  std::vector<AdaINLayer> layers;  // in order, one w each
  EqConv torgb;
  Tensor filter;
  void to(Device d) override { filter = filter.to(d); }

  int64_t num_ws() const override { return (int64_t)layers.size(); }
  Tensor mapping(const ParamList& P, const Tensor& z, const Tensor& c) const override { return map.forward(P, z, c); }

  Tensor synthesis(const ParamList& P, const std::vector<Tensor>& ws, NoiseMode noise, Rng& rng) const override {
    const int64_t N = ws[0].size(0);
    const Tensor& c = cnst(P);
    Tensor x = expand(unsqueeze(c, 0), {N, c.size(0), c.size(1), c.size(2)});
    for (size_t i = 0; i < layers.size(); ++i) x = layers[i].forward(P, x, ws[i], noise, rng, filter);
    return torgb.forward(P, x, filter);
  }
};

}  // namespace

std::unique_ptr<GeneratorNet> make_stylegan1_generator(const Config& c, Builder& B) {
  auto g = std::make_unique<StyleGAN1Generator>();
  g->cfg = c;
  g->filter = fir_filter({1, 3, 3, 1}, c.dtype);
  g->map = EqMapping::make(
      B, "mapping",
      {.z_dim = c.z_dim, .c_dim = c.c_dim, .out = c.w_dim, .layers = c.mapping_layers, .lr_mul = c.mapping_lr_mul});
  const int64_t c4 = channels_at(c, 4);
  g->cnst = B.param("synthesis.b4.const", B.randn({c4, 4, 4}));
  g->layers.push_back(
      AdaINLayer::make(B, c, "synthesis.b4.style0", {.in = c4, .out = c4, .res = 4, .has_conv = false}));
  g->layers.push_back(AdaINLayer::make(B, c, "synthesis.b4.conv1", {.in = c4, .out = c4, .res = 4}));
  for (int64_t r = 8; r <= c.resolution; r *= 2) {
    const std::string name = res_name("synthesis.b", r);
    const int64_t in = channels_at(c, r / 2), out = channels_at(c, r);
    g->layers.push_back(AdaINLayer::make(B, c, name + ".conv0", {.in = in, .out = out, .res = r, .up = 2}));
    g->layers.push_back(AdaINLayer::make(B, c, name + ".conv1", {.in = out, .out = out, .res = r}));
  }
  g->torgb = EqConv::make(B, res_name("synthesis.b", c.resolution) + ".torgb",
                          {.in = channels_at(c, c.resolution), .out = c.img_channels, .k = 1, .clamp = c.conv_clamp});
  return g;
}

}  // namespace sg::models::detail
