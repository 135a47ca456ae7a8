// Shared model machinery: ParamList, the parameter Builder, the equalized-lr layers, the
// stylegan2-ada mapping network, and the arch-independent parts of Generator and
// Discriminator (w_avg tracking, truncation, broadcasting to num_ws, copy_from).
#include <cstring>

#include "models/layers.h"

namespace sg::models {

// ---- ParamList ---------------------------------------------------------------------------
std::vector<Tensor> ParamList::tensors() const {
  std::vector<Tensor> r;
  r.reserve(params.size());
  for (const auto& p : params) r.push_back(p.second);
  return r;
}

int64_t ParamList::count() const {
  int64_t n = 0;
  for (const auto& p : params) n += p.second.numel();
  return n;
}

bool ParamList::has(const std::string& name) const {
  for (const auto& p : params)
    if (p.first == name) return true;
  for (const auto& p : buffers)
    if (p.first == name) return true;
  return false;
}

Tensor ParamList::get(const std::string& name) const {
  for (const auto& p : params)
    if (p.first == name) return p.second;
  for (const auto& p : buffers)
    if (p.first == name) return p.second;
  throw Error("ParamList::get: no parameter or buffer named '" + name + "'");
}

namespace detail {

int64_t log2_exact(int64_t v) {
  int64_t l = 0;
  while ((int64_t(1) << l) < v) ++l;
  return l;
}

// ---- handles and Builder -----------------------------------------------------------------
namespace {
const Tensor& lookup(const std::vector<std::pair<std::string, Tensor>>& list, int index, const std::string& name,
                     const char* kind) {
  SG_CHECK(index >= 0, "models", "read of an undefined ", kind, " handle",
           name.empty() ? std::string() : " '" + name + "'", " (the layer was built without it)");
  SG_CHECK((size_t)index < list.size() && list[(size_t)index].first == name, "models", kind, " '", name, "' (index ",
           index, ") is not in this ParamList");
  return list[(size_t)index].second;
}
}  // namespace

const Tensor& Param::operator()(const ParamList& P) const { return lookup(P.params, index, name, "parameter"); }
const Tensor& Buffer::operator()(const ParamList& P) const { return lookup(P.buffers, index, name, "buffer"); }

Param Builder::param(const std::string& name, Tensor init) {
  SG_CHECK(!P.has(name), "models", "parameter '", name, "' registered twice");
  init.set_requires_grad(true);
  P.params.emplace_back(name, init);
  return Param{(int)P.params.size() - 1, name};
}

Buffer Builder::buffer(const std::string& name, Tensor init) {
  SG_CHECK(!P.has(name), "models", "buffer '", name, "' registered twice");
  P.buffers.emplace_back(name, init);
  return Buffer{(int)P.buffers.size() - 1, name};
}

Tensor Builder::uniform(const Shape& s, double bound) {
  Tensor u = sg::rand(s, rng, dt);  // U[0, 1)
  NoGradGuard ng;
  return add(mul(u, 2.0 * bound), -bound);
}

std::vector<Tensor> unbind_ws(const Tensor& ws, int64_t num_ws, int64_t w_dim, const char* who) {
  SG_CHECK(ws.defined() && ws.dim() == 3 && ws.size(1) == num_ws && ws.size(2) == w_dim, who, "expects ws [N, ", num_ws,
           ", ", w_dim, "], got ", ws.defined() ? ws.str() : std::string("undefined"));
  std::vector<Tensor> r;
  const int64_t N = ws.size(0);
  for (int64_t i = 0; i < num_ws; ++i) r.push_back(reshape(slice(ws, 1, i, i + 1), {N, w_dim}));
  return r;
}

// ---- equalized layers --------------------------------------------------------------------
EqFC EqFC::make(Builder& B, const std::string& name, const Options& o) {
  EqFC f;
  f.opt = o;
  f.weight_gain = o.lr_mul / std::sqrt((double)o.in);
  Tensor w = B.randn({o.out, o.in});
  if (o.lr_mul != 1.0) {
    NoGradGuard ng;
    w = mul(w, 1.0 / o.lr_mul);
  }
  f.weight = B.param(name + ".weight", w);
  if (o.bias) f.bias = B.param(name + ".bias", B.full({o.out}, o.bias_init));
  return f;
}

Tensor EqFC::forward(const ParamList& P, const Tensor& x) const {
  Tensor w = mul(weight(P), weight_gain);
  Tensor b;
  if (bias.defined()) b = opt.lr_mul != 1.0 ? mul(bias(P), opt.lr_mul) : bias(P);
  if (opt.act == Act::linear) return linear(x, w, b);
  return bias_act(linear(x, w), b, opt.act, 0.2, act_gain(opt.act), -1.0, 1);
}

EqConv EqConv::make(Builder& B, const std::string& name, const Options& o) {
  EqConv c;
  c.opt = o;
  c.weight_gain = 1.0 / std::sqrt((double)(o.in * o.k * o.k));
  c.weight = B.param(name + ".weight", B.randn({o.out, o.in, o.k, o.k}));
  if (o.bias) c.bias = B.param(name + ".bias", B.zeros({o.out}));
  return c;
}

Tensor EqConv::forward(const ParamList& P, const Tensor& x, const Tensor& filter, double gain) const {
  Tensor w = mul(weight(P), weight_gain);
  Tensor y = conv2d_resample(x, w, filter, opt.up, opt.down, opt.k / 2, 1);
  Tensor b = bias.defined() ? bias(P) : Tensor();
  const double g = act_gain(opt.act) * gain;
  const double cl = opt.clamp >= 0 ? opt.clamp * gain : -1.0;
  if (!b.defined() && opt.act == Act::linear && cl < 0) return g == 1.0 ? y : mul(y, g);
  return bias_act(y, b, opt.act, 0.2, g, cl, 1);
}

// ---- mapping -----------------------------------------------------------------------------
EqMapping EqMapping::make(Builder& B, const std::string& prefix, const Options& o) {
  EqMapping m;
  m.opt = o;
  if (o.c_dim > 0) m.embed = EqFC::make(B, prefix + ".embed", {.in = o.c_dim, .out = o.out});
  for (int64_t i = 0; i < o.layers; ++i) {
    const int64_t in = i > 0 ? o.out : o.z_dim + (o.c_dim > 0 ? o.out : 0);
    m.fcs.push_back(EqFC::make(B, prefix + ".fc" + std::to_string(i),
                               {.in = in, .out = o.out, .act = Act::lrelu, .lr_mul = o.lr_mul}));
  }
  return m;
}

Tensor EqMapping::forward(const ParamList& P, const Tensor& z, const Tensor& c) const {
  Tensor x;
  if (opt.z_dim > 0) x = pixel_norm(z, 1, 1e-8);
  if (opt.c_dim > 0) {
    Tensor y = pixel_norm(embed.forward(P, c), 1, 1e-8);
    x = x.defined() ? cat({x, y}, 1) : y;
  }
  for (const auto& fc : fcs) x = fc.forward(P, x);
  return x;
}

}  // namespace detail

// ---- Generator ---------------------------------------------------------------------------
namespace {
void check_config(const Config& c, const char* who) {
  SG_CHECK(c.resolution >= 8 && c.resolution <= 1024 && (c.resolution & (c.resolution - 1)) == 0, who,
           "resolution must be a power of two in [8, 1024], got ", c.resolution);
  SG_CHECK(c.img_channels == 1 || c.img_channels == 3, who, "img_channels must be 1 or 3, got ", c.img_channels);
  SG_CHECK(c.z_dim > 0 && c.w_dim > 0 && c.mapping_layers >= 1, who, "bad z_dim/w_dim/mapping_layers ", c.z_dim, "/",
           c.w_dim, "/", c.mapping_layers);
  SG_CHECK(c.channel_base > 0 && c.channel_max > 0 && channels_at(c, c.resolution) >= 1, who,
           "channel_base/channel_max give no channels at resolution ", c.resolution);
  SG_CHECK(c.c_dim >= 0, who, "c_dim must be >= 0, got ", c.c_dim);
  SG_CHECK(c.c_dim == 0 || c.arch != Arch::seed32, who,
           "the seed32 architecture (the notebook's) is unconditional; c_dim must be 0, got ", c.c_dim);
}

// c as a conditional network of this config takes it: [N, c_dim] of its dtype and device;
// undefined for an unconditional one.
void check_labels(const Config& cfg, const Tensor& c, int64_t N, const Tensor& like, const char* who) {
  if (cfg.c_dim == 0) {
    SG_CHECK(!c.defined(), who, "the network is unconditional (c_dim 0), but labels c ", c.str(), " were given");
    return;
  }
  SG_CHECK(c.defined(), who, "the network is conditional (c_dim ", cfg.c_dim, "): labels c [N, ", cfg.c_dim,
           "] are required");
  SG_CHECK(c.dim() == 2 && c.size(0) == N && c.size(1) == cfg.c_dim, who, "expects labels c [", N, ", ", cfg.c_dim,
           "], got ", c.str());
  SG_CHECK(c.dtype() == like.dtype() && c.device() == like.device(), who, "labels c ", c.str(), " must match ",
           like.str(), " in dtype and device");
}

void copy_values(const Tensor& dst, const Tensor& src, const std::string& name) {
  SG_CHECK(dst.shape() == src.shape() && dst.dtype() == src.dtype() && dst.device() == src.device(),
           "Generator::copy_from", "'", name, "': ", dst.str(), " vs ", src.str());
  copy_into(dst, src);
}
}  // namespace

Generator::Generator(const Config& c, Rng& rng) : cfg_(c) {
  check_config(c, "Generator");
  detail::Builder B{params_, rng, c.dtype};
  B.buffer("mapping.w_avg", sg::zeros({c.w_dim}, c.dtype));  // buffer 0
  switch (c.arch) {
    case Arch::stylegan2:
      net_ = detail::make_stylegan2_generator(c, B);
      break;
    case Arch::stylegan1:
      net_ = detail::make_stylegan1_generator(c, B);
      break;
    case Arch::seed32:
      net_ = detail::make_seed32_generator(c, B);
      break;
  }
  SG_CHECK(net_ != nullptr, "Generator", "unknown architecture");
}

Generator::~Generator() = default;
Generator::Generator(Generator&&) noexcept = default;
Generator& Generator::operator=(Generator&&) noexcept = default;

int64_t Generator::num_ws() const { return net_->num_ws(); }

Tensor Generator::mapping(const Tensor& z, const Tensor& c, double truncation_psi, bool update_w_avg) {
  SG_CHECK(z.defined() && z.dim() == 2 && z.size(1) == cfg_.z_dim, "Generator::mapping", "expects z [N, ", cfg_.z_dim,
           "], got ", z.defined() ? z.str() : std::string("undefined"));
  SG_CHECK(z.dtype() == cfg_.dtype, "Generator::mapping", "z is ", dtype_name(z.dtype()), ", the model ",
           dtype_name(cfg_.dtype));
  check_labels(cfg_, c, z.size(0), z, "Generator::mapping");
  Tensor w = net_->mapping(params_, z, c);  // [N, w_dim]
  const Tensor& w_avg = params_.buffers[0].second;
  if (update_w_avg) {
    NoGradGuard ng;
    const double beta = 0.995;
    Tensor upd = lerp(mean(w.detach(), {0}), w_avg, beta);  // mean + (w_avg - mean) * beta
    copy_values(w_avg, upd, "mapping.w_avg");
  }
  const int64_t N = w.size(0), L = num_ws();
  Tensor ws = expand(unsqueeze(w, 1), {N, L, cfg_.w_dim});
  if (truncation_psi != 1.0) ws = lerp(reshape(w_avg, {1, 1, cfg_.w_dim}), ws, truncation_psi);
  return ws;
}

NoiseMode parse_noise_mode(const std::string& flag, const std::string& v) {
  if (v == "random") return NoiseMode::random;
  if (v == "const") return NoiseMode::constant;
  if (v == "none") return NoiseMode::none;
  throw Error(str(flag, ": expected const, random or none, got '", v, "'"));
}

Tensor Generator::synthesis(const Tensor& ws, NoiseMode noise, Rng& rng) {
  auto list = detail::unbind_ws(ws, num_ws(), cfg_.w_dim, "Generator::synthesis");
  SG_CHECK(ws.dtype() == cfg_.dtype, "Generator::synthesis", "ws is ", dtype_name(ws.dtype()), ", the model ",
           dtype_name(cfg_.dtype));
  return net_->synthesis(params_, list, noise, rng);
}

void Generator::copy_from(const Generator& other) {
  const ParamList& o = other.parameters();
  SG_CHECK(o.params.size() == params_.params.size() && o.buffers.size() == params_.buffers.size(),
           "Generator::copy_from", "different networks: ", o.params.size(), " vs ", params_.params.size(),
           " parameters");
  for (size_t i = 0; i < params_.params.size(); ++i) {
    SG_CHECK(o.params[i].first == params_.params[i].first, "Generator::copy_from", "parameter ", i, " is '",
             o.params[i].first, "' there, '", params_.params[i].first, "' here");
    copy_values(params_.params[i].second, o.params[i].second, params_.params[i].first);
  }
  for (size_t i = 0; i < params_.buffers.size(); ++i) {
    SG_CHECK(o.buffers[i].first == params_.buffers[i].first, "Generator::copy_from", "buffer ", i, " is '",
             o.buffers[i].first, "' there, '", params_.buffers[i].first, "' here");
    copy_values(params_.buffers[i].second, o.buffers[i].second, params_.buffers[i].first);
  }
}

// ---- Discriminator -----------------------------------------------------------------------
Discriminator::Discriminator(const Config& c, Rng& rng) : cfg_(c) {
  check_config(c, "Discriminator");
  detail::Builder B{params_, rng, c.dtype};
  switch (c.arch) {
    case Arch::stylegan2:
    case Arch::stylegan1:
      net_ = detail::make_stylegan2_discriminator(c, B);
      break;
    case Arch::seed32:
      net_ = detail::make_seed32_discriminator(c, B);
      break;
  }
  SG_CHECK(net_ != nullptr, "Discriminator", "unknown architecture");
}

Discriminator::~Discriminator() = default;
Discriminator::Discriminator(Discriminator&&) noexcept = default;
Discriminator& Discriminator::operator=(Discriminator&&) noexcept = default;

Tensor Discriminator::forward(const Tensor& img, const Tensor& c) {
  const int64_t R = cfg_.resolution;
  SG_CHECK(img.defined() && img.dim() == 4 && img.size(1) == cfg_.img_channels && img.size(2) == R && img.size(3) == R,
           "Discriminator::forward", "expects img [N, ", cfg_.img_channels, ", ", R, ", ", R, "], got ",
           img.defined() ? img.str() : std::string("undefined"));
  SG_CHECK(img.dtype() == cfg_.dtype, "Discriminator::forward", "img is ", dtype_name(img.dtype()), ", the model ",
           dtype_name(cfg_.dtype));
  check_labels(cfg_, c, img.size(0), img, "Discriminator::forward");
  return net_->forward(params_, img, c);
}

Tensor Discriminator::label_map(const Tensor& c) {
  SG_CHECK(cfg_.c_dim > 0, "Discriminator::label_map", "the network is unconditional (c_dim 0)");
  SG_CHECK(c.defined(), "Discriminator::label_map", "labels c [N, ", cfg_.c_dim, "] are required");
  check_labels(cfg_, c, c.size(0), params_.params.front().second, "Discriminator::label_map");
  return net_->label_map(params_, c);
}

}  // namespace sg::models

namespace sg::models {
namespace {
void move_params(ParamList& P, Device d) {
  for (auto& [name, t] : P.params) {
    if (t.device() == d) continue;
    Tensor m = t.detach().to(d);
    m.set_requires_grad(true);
    t = m;
  }
  for (auto& [name, t] : P.buffers)
    if (t.device() != d) t = t.to(d);
}
Device device_of(const ParamList& P) { return P.params.empty() ? Device::cpu() : P.params[0].second.device(); }
}  // namespace

void Generator::to(Device d) {
  move_params(params_, d);
  net_->to(d);
}
Device Generator::device() const { return device_of(params_); }
void Discriminator::to(Device d) {
  move_params(params_, d);
  net_->to(d);
}
Device Discriminator::device() const { return device_of(params_); }
}  // namespace sg::models
