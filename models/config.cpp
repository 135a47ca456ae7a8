// Named configs, channel counts per resolution, and closed-form parameter counts.
//
//   paper256   stylegan2-ada's "paper256" cfg_spec: z/w 512, 8 mapping layers (lr x0.01),
//              channel_base 16384 (fmaps 0.5), channel_max 512, mbstd group 8, conv_clamp 256
//              (ada sets it whenever mixed precision is on, which is its default), batch 64,
//              gamma 1, lr 0.0025, ema 20 kimg without ramp-up.
//   small      cheap enough to train visibly on a CPU at 32x32: z/w 64, 2 mapping layers,
//              channel_base 2048 / channel_max 64 (64 channels at 4..32, 32 at 64), batch 16,
//              and the rest from ada's "auto" rule (gamma 0.0002 R^2 / batch, ema batch*10/32
//              kimg with ramp 0.05, lr 0.0025, mbstd group min(4, batch)); conditional, ada's
//              8-layer label mapping in D. (`--dmap 1 --ema-rampup 0.2` were measured over five
//              seeds of the main job and were no better: docs/training.md, "Across seeds".)
//   seed32     the 32x32 notebook of seed 002 with its final cfg (fmap 96, z 128, w 192,
//              4 mapping layers): channels 16*fmap/res (384, 192, 96, 48 at 4..32); training
//              as the notebook: Adam(2e-4, betas (0, 0.99)), r1_gamma 0.5 every 64 steps,
//              pl_weight 1 every 16 steps on half the batch, no EMA, no style mixing.
//   stylegan1  `small` with StyleGAN1's AdaIN synthesis in place of (de)modulation; the
//              same mapping and StyleGAN2 discriminator; no path-length regularizer
//              (StyleGAN1 had none).
#include <algorithm>

#include "models/layers.h"

namespace sg::models {

namespace {
bool pow2_in_range(int64_t r) { return r >= 8 && r <= 1024 && (r & (r - 1)) == 0; }
}  // namespace

std::vector<std::string> config_names() { return {"paper256", "small", "seed32", "stylegan1"}; }

Config make_config(const std::string& name, int64_t resolution, int64_t img_channels) {
  auto names = config_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw Error("make_config: unknown config '" + name + "' (valid: " + list + ")");
  }
  Config c;
  c.name = name;
  const int64_t default_res = name == "paper256" ? 256 : 32;
  if (resolution == 0) resolution = default_res;
  SG_CHECK(pow2_in_range(resolution), "make_config", "resolution must be a power of two in [8, 1024], got ", resolution,
           " (config '", name, "')");
  SG_CHECK(img_channels == 1 || img_channels == 3, "make_config", "img_channels must be 1 or 3, got ", img_channels);
  c.resolution = resolution;
  c.img_channels = img_channels;
  // Common stylegan2-ada defaults (StyleGAN2Loss, training_loop, Adam betas).
  c.beta1 = 0.0, c.beta2 = 0.99;
  c.pl_weight = 2.0, c.pl_decay = 0.01, c.pl_batch_shrink = 2;
  c.r1_interval = 16, c.pl_interval = 4;
  c.style_mixing_prob = 0.9;
  c.mbstd_channels = 1;

  if (name == "paper256") {
    c.arch = Arch::stylegan2;
    c.z_dim = c.w_dim = 512;
    c.mapping_layers = 8;
    c.mapping_lr_mul = 0.01;
    c.channel_base = 16384, c.channel_max = 512;
    c.conv_clamp = 256;
    c.mbstd_group = 8;
    c.batch = 64;
    c.gamma = 1.0;
    c.lr_g = c.lr_d = 0.0025;
    c.ema_kimg = 20, c.ema_rampup = 0;
  } else if (name == "small" || name == "stylegan1") {
    c.arch = name == "small" ? Arch::stylegan2 : Arch::stylegan1;
    c.z_dim = c.w_dim = 64;
    c.mapping_layers = 2;
    c.mapping_lr_mul = 0.01;
    c.channel_base = 2048, c.channel_max = 64;
    c.conv_clamp = -1;
    c.batch = 16;
    c.mbstd_group = std::min<int64_t>(4, c.batch);
    c.gamma = 0.0002 * double(resolution * resolution) / double(c.batch);
    c.lr_g = c.lr_d = 0.0025;
    c.ema_kimg = double(c.batch) * 10.0 / 32.0, c.ema_rampup = 0.05;
    if (name == "stylegan1") c.pl_weight = 0.0;
    // D's label mapping: 1 layer, not ada's 8 (--dmap; docs/training.md, "The main job at 64
    // kimg"): with 8 the main job and 1 of 4 other seeds ended with shirts and pullovers merged
    // (one class under 2% of the samples); with 1, those two seeds and seed 1 had all 10 classes
    // and a lower FD.
    if (name == "small") c.cmap_layers = 1;
  } else {  // seed32
    const int64_t fmap = 96;
    c.arch = Arch::seed32;
    c.z_dim = 128, c.w_dim = 192;
    c.mapping_layers = 4;
    c.mapping_lr_mul = 1.0;  // plain nn.Linear
    c.channel_base = 16 * fmap, c.channel_max = 4 * fmap;
    c.conv_clamp = -1;
    c.mbstd_group = 1, c.mbstd_channels = 0;  // the notebook's D has no minibatch-stddev layer
    c.batch = 32;
    c.gamma = 0.5;
    c.lr_g = c.lr_d = 2e-4;
    c.ema_kimg = 0, c.ema_rampup = 0;                                                 // no G_ema in the notebook
    c.pl_weight = 1.0, c.pl_interval = 16, c.pl_decay = 0.01, c.pl_batch_shrink = 2;  // PL on min(16, batch)
    c.r1_interval = 64;
    c.style_mixing_prob = 0.0;
  }
  return c;
}

void set_bf16_mixed(Config& c) {
  SG_CHECK(c.arch == Arch::stylegan2, "bf16-mixed", "is for the stylegan2 configs (small, paper256), not '", c.name,
           "'");
  c.bf16_res = std::max<int64_t>(c.resolution / 8, 8);
  if (c.conv_clamp < 0) c.conv_clamp = 256;
}

int64_t channels_at(const Config& c, int64_t res) {
  SG_CHECK(res >= 4, "channels_at", "resolution ", res, " < 4");
  return std::min(c.channel_base / res, c.channel_max);
}

int64_t expected_num_ws(const Config& c) {
  const int64_t L = detail::log2_exact(c.resolution);  // blocks at 4, 8, ..., R: L - 1 of them
  if (c.arch == Arch::seed32) return 2 * (L - 1);      // two styled convs per block, toRGB reuses the 2nd
  return 2 * L - 2;  // stylegan2: 1 + 2 (L - 2) convs + the last toRGB; stylegan1: 2 layers per block
}

// ---- closed-form parameter counts ------------------------------------------------------------
// Written from the layer descriptions (see the header comments of the model files), not from
// the module code. C(r) = channels_at(c, r); w = w_dim; k = img_channels.
int64_t expected_param_count_G(const Config& c) {
  const int64_t w = c.w_dim, z = c.z_dim, k = c.img_channels, R = c.resolution;
  auto C = [&](int64_t r) { return channels_at(c, r); };
  // mapping: first FC z->w, then (layers-1) FCs w->w, each with a bias; conditional: the
  // embedding c_dim->w (+bias), and the first FC takes z and the embedding (z + w inputs)
  int64_t n = (z * w + w) + (c.mapping_layers - 1) * (w * w + w);
  if (c.c_dim > 0) n += (c.c_dim * w + w) + w * w;
  if (c.arch == Arch::stylegan2) {
    // styled 3x3 layer in->out: affine (w->in, bias) + weight + bias + noise strength
    auto layer = [&](int64_t in, int64_t out) { return (w + 1) * in + 9 * in * out + out + 1; };
    // toRGB in->k: affine (w->in, bias) + 1x1 weight + bias
    auto torgb = [&](int64_t in) { return (w + 1) * in + k * in + k; };
    n += 16 * C(4) + layer(C(4), C(4)) + torgb(C(4));
    for (int64_t r = 8; r <= R; r *= 2) n += layer(C(r / 2), C(r)) + layer(C(r), C(r)) + torgb(C(r));
  } else if (c.arch == Arch::stylegan1) {
    // AdaIN epilogue on `ch` channels: per-channel noise strength, bias, affine w->2ch (+bias)
    auto epi = [&](int64_t ch) { return ch + ch + (w + 1) * 2 * ch; };
    auto conv = [&](int64_t in, int64_t out) { return 9 * in * out + epi(out); };
    n += 16 * C(4) + epi(C(4)) + conv(C(4), C(4));
    for (int64_t r = 8; r <= R; r *= 2) n += conv(C(r / 2), C(r)) + conv(C(r), C(r));
    n += k * C(R) + k;  // final 1x1 toRGB, unstyled
  } else {              // seed32
    // ModulatedConv2d in->out, kernel kk: weight, style Linear(w->in), bias
    auto mconv = [&](int64_t in, int64_t out, int64_t kk) { return out * in * kk * kk + (w * in + in) + out; };
    n += 16 * C(4);
    n += mconv(C(4), C(4), 3) + mconv(C(4), C(4), 3) + mconv(C(4), k, 1);
    for (int64_t r = 8; r <= R; r *= 2) n += mconv(C(r / 2), C(r), 3) + mconv(C(r), C(r), 3) + mconv(C(r), k, 1);
  }
  return n;
}

int64_t expected_param_count_D(const Config& c) {
  const int64_t k = c.img_channels, R = c.resolution;
  auto C = [&](int64_t r) { return channels_at(c, r); };
  int64_t n = 0;
  if (c.arch == Arch::seed32) {
    auto conv = [](int64_t in, int64_t out, int64_t kk) { return out * in * kk * kk + out; };
    auto resblock = [&](int64_t in, int64_t out) { return conv(in, out, 3) + conv(out, out, 3) + conv(in, out, 1); };
    n += conv(k, C(R), 1);  // fromRGB
    for (int64_t r = R; r >= 8; r /= 2) n += resblock(C(r), C(r / 2));
    n += resblock(C(4), C(4));  // b4, no downsampling
    n += 16 * C(4) + 1;         // out Linear
    return n;
  }
  // stylegan2 residual D
  n += k * C(R) + C(R);  // fromrgb 1x1 + bias
  for (int64_t r = R; r >= 8; r /= 2) {
    const int64_t t = C(r), o = C(r / 2);
    n += 9 * t * t + t;  // conv0
    n += 9 * t * o + o;  // conv1 (down)
    n += t * o;          // skip 1x1, no bias
  }
  const int64_t c4 = C(4), f = c.mbstd_channels;
  n += 9 * (c4 + f) * c4 + c4;          // epilogue conv (+ mbstd channels in)
  n += 16 * c4 * c4 + c4;               // fc
  if (c.c_dim == 0) return n + c4 + 1;  // out
  // conditional: out has C4 outputs, and the label mapping: embedding c_dim->C4, cmap_layers FCs C4->C4
  n += c4 * c4 + c4;
  n += (c.c_dim * c4 + c4) + c.cmap_layers * (c4 * c4 + c4);
  return n;
}

}  // namespace sg::models
