// The 32x32 StyleGAN2-like model of seed 002 (a CIFAR-10 notebook), layer for layer, with
// PyTorch's default initialisation and the notebook's state_dict names, so a checkpoint can
// be compared one to one with it. Cfg: fmap 96, z 128, w 192 (the notebook's final cells).
//
// Generator:
//   mapping.net.{1,3,5,7}   pixel norm, then 4 x (nn.Linear + LeakyReLU(0.2)), no lr multiplier
//   const                   [1, 4 fmap, 4, 4], randn
//   b{r}.conv1, b{r}.conv2  ModulatedConv2d 3x3: weight randn*0.02, style = Linear(w) (default
//                           init), bias 0; x -> nearest 2x (conv1 of r > 4); styles = style(w)+1;
//                           w' = weight * styles, demodulated (rsqrt(sum w'^2 + 1e-8)); conv,
//                           + bias; then LeakyReLU(0.2) (no gain)
//   b{r}.toRGB              ModulatedConv2d 1x1 without demodulation, on conv2's w
//   rgb = nearest2x(rgb) + toRGB(x) at every block; output tanh(rgb)
//   Channels 16 fmap / r: 384, 192, 96, 48 at 4, 8, 16, 32. No noise inputs (NoiseMode is
//   ignored). The notebook feeds one w to every layer; here each conv takes its own ws entry
//   (num_ws = 2 per block, toRGB sharing conv2's), which equals the notebook when the ws are
//   the broadcast w.
// Discriminator:
//   fromRGB                 Conv2d 1x1 -> 16 fmap / R (fmap/2 at 32), LeakyReLU(0.2)
//   b{r} (r = R..8)         ResBlockD(C(r) -> C(r/2)): h = lrelu(conv1 3x3), lrelu(conv2 3x3),
//                           avg_pool 2; s = avg_pool(skip 1x1 conv with bias); (h + s)/sqrt 2
//   b4                      ResBlockD(C4 -> C4) without pooling
//   out                     Linear(C4 * 16 -> 1) on the flattened [C,H,W] features
// Nearest upsampling is reshape/expand/reshape and 2x2 average pooling is reshape + mean,
// both exact and differentiable to any order.
#include <cmath>

#include "models/layers.h"

namespace sg::models::detail {

namespace {

Tensor nearest_up2(const Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  return reshape(expand(reshape(x, {N, C, H, 1, W, 1}), {N, C, H, 2, W, 2}), {N, C, 2 * H, 2 * W});
}

Tensor avg_pool2(const Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  return mean(reshape(x, {N, C, H / 2, 2, W / 2, 2}), {3, 5});
}

// nn.Linear / nn.Conv2d default init: kaiming_uniform(a = sqrt 5) = U(+-1/sqrt(fan_in)) for the
// weight, and U(+-1/sqrt(fan_in)) for the bias.
struct TorchLinear {
  Param weight, bias;
  static TorchLinear make(Builder& B, const std::string& name, int64_t in, int64_t out) {
    TorchLinear l;
    const double bound = 1.0 / std::sqrt((double)in);
    l.weight = B.param(name + ".weight", B.uniform({out, in}, bound));
    l.bias = B.param(name + ".bias", B.uniform({out}, bound));
    return l;
  }
  Tensor forward(const ParamList& P, const Tensor& x) const { return linear(x, weight(P), bias(P)); }
};

struct TorchConv {
  struct Options {
    int64_t in = 0, out = 0, k = 3;
  };
  Param weight, bias;
  int64_t k = 3;
  static TorchConv make(Builder& B, const std::string& name, const Options& o) {
    TorchConv c;
    c.k = o.k;
    const double bound = 1.0 / std::sqrt((double)(o.in * o.k * o.k));
    c.weight = B.param(name + ".weight", B.uniform({o.out, o.in, o.k, o.k}, bound));
    c.bias = B.param(name + ".bias", B.uniform({o.out}, bound));
    return c;
  }
  // act(conv(x) + bias), LeakyReLU without gain
  Tensor forward(const ParamList& P, const Tensor& x, Act act) const {
    Tensor y = conv2d(x, weight(P), {1, 1}, {k / 2, k / 2}, 1);
    return bias_act(y, bias(P), act, 0.2, 1.0, -1.0, 1);
  }
};

struct NotebookModConv {
  struct Options {
    int64_t in = 0, out = 0, k = 3;
    bool up = false;  // nearest 2x before the conv
    bool demod = true;
  };
  Options opt;
  Param weight, bias;
  TorchLinear style;
  bool fused = false;
  static NotebookModConv make(Builder& B, const Config& c, const std::string& name, const Options& o) {
    NotebookModConv m;
    m.opt = o, m.fused = c.fused_modconv;
    Tensor w = B.randn({o.out, o.in, o.k, o.k});
    {
      NoGradGuard ng;
      w = mul(w, 0.02);
    }
    m.weight = B.param(name + ".weight", w);
    m.bias = B.param(name + ".bias", B.zeros({o.out}));
    m.style = TorchLinear::make(B, name + ".style", c.w_dim, o.in);
    return m;
  }
  Tensor forward(const ParamList& P, Tensor x, const Tensor& w, Act act) const {
    if (opt.up) x = nearest_up2(x);
    Tensor s = add(style.forward(P, w), 1.0);
    ModConv p;
    p.demodulate = opt.demod;
    p.padding = opt.k / 2;
    p.fused = fused;
    p.eps = 1e-8;
    Tensor y = modulated_conv2d(x, weight(P), s, p);
    return bias_act(y, bias(P), act, 0.2, 1.0, -1.0, 1);
  }
};

struct Seed32Generator : GeneratorNet {
  Config cfg;
  std::vector<TorchLinear> map;
  Param cnst;  // "const"
  struct Block {
    NotebookModConv conv1, conv2, torgb;
  };
  std::vector<Block> blocks;

  int64_t num_ws() const override { return 2 * (int64_t)blocks.size(); }

  Tensor mapping(const ParamList& P, const Tensor& z, const Tensor&) const override {  // unconditional
    Tensor x = pixel_norm(z, 1, 1e-8);
    for (const auto& l : map) x = leaky_relu(l.forward(P, x), 0.2);
    return x;
  }

  Tensor synthesis(const ParamList& P, const std::vector<Tensor>& ws, NoiseMode, Rng&) const override {
    const int64_t N = ws[0].size(0);
    const Tensor& c = cnst(P);  // [1, C, 4, 4]
    Tensor x = expand(c, {N, c.size(1), 4, 4});
    Tensor rgb;
    for (size_t i = 0; i < blocks.size(); ++i) {
      const auto& b = blocks[i];
      x = b.conv1.forward(P, x, ws[2 * i], Act::lrelu);
      x = b.conv2.forward(P, x, ws[2 * i + 1], Act::lrelu);
      Tensor y = b.torgb.forward(P, x, ws[2 * i + 1], Act::linear);
      rgb = rgb.defined() ? add(nearest_up2(rgb), y) : y;
    }
    return tanh(rgb);
  }
};

struct Seed32Discriminator : DiscriminatorNet {
  TorchConv fromrgb;
  struct Block {
    bool down = true;
    TorchConv conv1, conv2, skip;
  };
  std::vector<Block> blocks;
  TorchLinear out;

  Tensor forward(const ParamList& P, const Tensor& img, const Tensor&) const override {  // unconditional
    Tensor x = fromrgb.forward(P, img, Act::lrelu);
    const double inv_sqrt2 = 1.0 / std::sqrt(2.0);
    for (const auto& b : blocks) {
      Tensor h = b.conv1.forward(P, x, Act::lrelu);
      h = b.conv2.forward(P, h, Act::lrelu);
      Tensor s = b.skip.forward(P, x, Act::linear);
      if (b.down) h = avg_pool2(h), s = avg_pool2(s);
      x = mul(add(h, s), inv_sqrt2);
    }
    return out.forward(P, reshape(x, {x.size(0), -1}));
  }
};

}  // namespace

std::unique_ptr<GeneratorNet> make_seed32_generator(const Config& c, Builder& B) {
  auto g = std::make_unique<Seed32Generator>();
  g->cfg = c;
  // Registration order = the notebook's named_parameters() order (a module's own
  // parameters before its submodules'): const, mapping, then the blocks.
  const int64_t c4 = channels_at(c, 4);
  g->cnst = B.param("const", B.randn({1, c4, 4, 4}));
  for (int64_t i = 0; i < c.mapping_layers; ++i)
    g->map.push_back(
        TorchLinear::make(B, "mapping.net." + std::to_string(2 * i + 1), i == 0 ? c.z_dim : c.w_dim, c.w_dim));
  for (int64_t r = 4; r <= c.resolution; r *= 2) {
    const std::string name = res_name("b", r);
    const int64_t in = r == 4 ? c4 : channels_at(c, r / 2), out = channels_at(c, r);
    Seed32Generator::Block b;
    b.conv1 = NotebookModConv::make(B, c, name + ".conv1", {.in = in, .out = out, .k = 3, .up = r > 4});
    b.conv2 = NotebookModConv::make(B, c, name + ".conv2", {.in = out, .out = out, .k = 3});
    b.torgb = NotebookModConv::make(B, c, name + ".toRGB", {.in = out, .out = c.img_channels, .k = 1, .demod = false});
    g->blocks.push_back(b);
  }
  return g;
}

std::unique_ptr<DiscriminatorNet> make_seed32_discriminator(const Config& c, Builder& B) {
  auto d = std::make_unique<Seed32Discriminator>();
  d->fromrgb = TorchConv::make(B, "fromRGB", {.in = c.img_channels, .out = channels_at(c, c.resolution), .k = 1});
  auto block = [&](const std::string& name, int64_t in, int64_t out, bool down) {
    Seed32Discriminator::Block b;
    b.down = down;
    b.conv1 = TorchConv::make(B, name + ".conv1", {.in = in, .out = out, .k = 3});
    b.conv2 = TorchConv::make(B, name + ".conv2", {.in = out, .out = out, .k = 3});
    b.skip = TorchConv::make(B, name + ".skip", {.in = in, .out = out, .k = 1});
    d->blocks.push_back(b);
  };
  for (int64_t r = c.resolution; r >= 8; r /= 2)
    block(res_name("b", r), channels_at(c, r), channels_at(c, r / 2), true);
  const int64_t c4 = channels_at(c, 4);
  block("b4", c4, c4, false);
  d->out = TorchLinear::make(B, "out", c4 * 16, 1);
  return d;
}

}  // namespace sg::models::detail
