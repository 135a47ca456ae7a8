#include "train/snapshot.h"

#include <cctype>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "train/run_dir.h"

namespace sg::train {

std::string snapshot_tag(int64_t nimg) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%09lld", (long long)nimg);
  return buf;
}

std::string state_path_for(const std::string& network_snapshot) {
  namespace fs = std::filesystem;
  const fs::path p(network_snapshot);
  const std::string n = p.filename().string(), prefix = "network-snapshot-";
  SG_CHECK(n.rfind(prefix, 0) == 0, "snapshot", "'", network_snapshot, "' is not named ", prefix,
           "<images>.safetensors");
  return (p.parent_path() / ("training-state-" + n.substr(prefix.size()))).string();
}

namespace {
constexpr int64_t kMaxCount = int64_t(1) << 62;

// meta[key] as an integer in [lo, hi]; errors name the file, the key and the value.
int64_t meta_int(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& file,
                 int64_t lo = 0, int64_t hi = kMaxCount) {
  auto it = meta.find(key);
  SG_CHECK(it != meta.end(), "snapshot", "'", file, "' has no '", key, "' in its metadata");
  const std::string& v = it->second;
  bool ok = !v.empty() && v.size() <= 19 && (std::isdigit((unsigned char)v[0]) || (v[0] == '-' && v.size() > 1));
  for (size_t i = 1; ok && i < v.size(); ++i) ok = std::isdigit((unsigned char)v[i]);
  const long long x = ok ? std::strtoll(v.c_str(), nullptr, 10) : 0;
  SG_CHECK(ok && x >= lo && x <= hi, "snapshot", "'", file, "' has a bad '", key, "' value '", v,
           "' in its metadata (expected an integer in [", lo, ", ", hi, "])");
  return x;
}
// meta[key] as a finite number in [lo, hi] (written by data::json_number: the shortest text that
// reads back to the same double).
double meta_double(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& file,
                   double lo, double hi) {
  auto it = meta.find(key);
  SG_CHECK(it != meta.end(), "snapshot", "'", file, "' has no '", key, "' in its metadata");
  const std::string& v = it->second;
  double x = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  SG_CHECK(!v.empty() && r.ec == std::errc() && r.ptr == v.data() + v.size() && std::isfinite(x) && x >= lo && x <= hi,
           "snapshot", "'", file, "' has a bad '", key, "' value '", v, "' in its metadata (expected a number in [", lo,
           ", ", hi, "])");
  return x;
}
// meta[key] as an unsigned 64-bit integer (RNG seeds and offsets use every bit).
uint64_t meta_u64(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& file) {
  auto it = meta.find(key);
  SG_CHECK(it != meta.end(), "snapshot", "'", file, "' has no '", key, "' in its metadata");
  const std::string& v = it->second;
  bool ok = !v.empty() && v.size() <= 20;
  for (size_t i = 0; ok && i < v.size(); ++i) ok = std::isdigit((unsigned char)v[i]);
  errno = 0;
  const unsigned long long x = ok ? std::strtoull(v.c_str(), nullptr, 10) : 0;
  SG_CHECK(ok && errno == 0, "snapshot", "'", file, "' has a bad '", key, "' value '", v,
           "' in its metadata (expected an integer in [0, 2^64))");
  return x;
}
}  // namespace

models::Config snapshot_config(const std::map<std::string, std::string>& meta, const std::string& file) {
  SG_CHECK(meta.count("cfg"), "snapshot", "'", file,
           "' is not a stylegrad network snapshot (no 'cfg' in its metadata)");
  const int64_t res = meta_int(meta, "resolution", file, 1, 1 << 20);
  const int64_t channels = meta_int(meta, "img_channels", file, 1, 4);
  models::Config c;
  try {
    c = models::make_config(meta.at("cfg"), res, channels);
  } catch (const Error& e) {
    throw Error(str("snapshot: '", file, "' names an architecture this build cannot make: ", e.what()));
  }
  // Written since the architecture flags (--cbase, --cmax, --map, --mbstd-group); older
  // snapshots have the named config's.
  if (meta.count("channel_base")) c.channel_base = meta_int(meta, "channel_base", file, 1, 1 << 24);
  if (meta.count("channel_max")) c.channel_max = meta_int(meta, "channel_max", file, 1, 1 << 16);
  if (meta.count("mapping_layers")) c.mapping_layers = meta_int(meta, "mapping_layers", file, 1, 64);
  // --map-lr (it sets how the mapping's weights are stored); absent: the multiplier every config had
  // before the key was written (ada's 0.01, the seed notebook's plain Linear layers 1)
  c.mapping_lr_mul = meta.count("mapping_lr_mul")     ? meta_double(meta, "mapping_lr_mul", file, 1e-6, 1e6)
                     : c.arch == models::Arch::seed32 ? 1.0
                                                      : 0.01;
  if (meta.count("mbstd_group")) c.mbstd_group = meta_int(meta, "mbstd_group", file, 1, 4096);
  if (meta.count("c_dim")) c.c_dim = meta_int(meta, "c_dim", file, 0, 1 << 16);  // --cond; absent: 0
  // --dmap; absent: 8, the depth every conditional D had before the key was written
  c.cmap_layers = meta.count("cmap_layers") ? meta_int(meta, "cmap_layers", file, 0, 64) : 8;
  return c;
}

int64_t snapshot_nimg(const std::map<std::string, std::string>& meta, const std::string& file) {
  if (meta.count("cur_nimg")) return meta_int(meta, "cur_nimg", file);
  auto it = meta.find("kimg");
  SG_CHECK(it != meta.end(), "snapshot", "'", file, "' has neither 'cur_nimg' nor 'kimg' in its metadata");
  char* end = nullptr;
  const double k = std::strtod(it->second.c_str(), &end);
  SG_CHECK(!it->second.empty() && *end == 0 && std::isfinite(k) && k >= 0 && k * 1000 <= (double)kMaxCount, "snapshot",
           "'", file, "' has a bad 'kimg' value '", it->second, "' in its metadata");
  return std::llround(k * 1000);
}

TrainingStateMeta parse_training_state_metadata(const std::map<std::string, std::string>& meta,
                                                const std::string& file) {
  TrainingStateMeta s;
  s.cur_nimg = meta_int(meta, "cur_nimg", file);
  s.batch_idx = meta_int(meta, "batch_idx", file);
  s.cur_tick = meta_int(meta, "cur_tick", file);
  s.batch = meta_int(meta, "batch", file, 1, 4096);
  s.rng_seed = meta_u64(meta, "rng_seed", file);
  s.rng_offset = meta_u64(meta, "rng_offset", file);
  s.loader_epoch = meta_int(meta, "loader_epoch", file);
  s.loader_position = meta_int(meta, "loader_position", file);
  for (const char* k : {"data", "seed", "mirror"})
    if (auto it = meta.find(k); it != meta.end()) s.stream[k] = it->second;
  return s;
}

Networks make_networks(const models::Config& cfg, uint64_t seed) {
  Networks n;
  n.cfg = cfg;
  Rng rng(seed);
  n.G = std::make_unique<models::Generator>(cfg, rng);
  n.D = std::make_unique<models::Discriminator>(cfg, rng);
  Rng ema_rng(seed);
  n.G_ema = std::make_unique<models::Generator>(cfg, ema_rng);
  n.G_ema->copy_from(*n.G);
  return n;
}

namespace {
void append(std::vector<std::pair<std::string, Tensor>>& out, const models::ParamList& p, const std::string& prefix) {
  for (auto& [name, t] : p.params) out.push_back({prefix + name, t});
  for (auto& [name, t] : p.buffers) out.push_back({prefix + name, t});
}

// Every tensor of the three networks, named as in the snapshot file.
std::vector<std::pair<std::string, Tensor>> named_tensors(const Networks& nets) {
  std::vector<std::pair<std::string, Tensor>> all;
  append(all, nets.G->parameters(), "G.");
  append(all, nets.D->parameters(), "D.");
  append(all, nets.G_ema->parameters(), "G_ema.");
  return all;
}
}  // namespace

void save_snapshot(const std::string& path, const Networks& nets, const std::map<std::string, std::string>& extra) {
  const std::vector<std::pair<std::string, Tensor>> all = named_tensors(nets);
  std::map<std::string, std::string> meta = extra;
  meta["format"] = "stylegrad-snapshot-1";
  meta["cfg"] = nets.cfg.name;
  meta["resolution"] = std::to_string(nets.cfg.resolution);
  meta["img_channels"] = std::to_string(nets.cfg.img_channels);
  // What --cbase, --cmax, --map, --map-lr, --dmap and --mbstd-group can change from the named config.
  meta["channel_base"] = std::to_string(nets.cfg.channel_base);
  meta["channel_max"] = std::to_string(nets.cfg.channel_max);
  meta["mapping_layers"] = std::to_string(nets.cfg.mapping_layers);
  meta["mapping_lr_mul"] = data::json_number(nets.cfg.mapping_lr_mul);  // --map-lr: how the stored weights are scaled
  meta["mbstd_group"] = std::to_string(nets.cfg.mbstd_group);
  meta["c_dim"] = std::to_string(nets.cfg.c_dim);              // the label dimension of a --cond run (0: unconditional)
  meta["cmap_layers"] = std::to_string(nets.cfg.cmap_layers);  // --dmap
  io::save_safetensors(path, all, meta);
}

std::string first_non_finite(const Networks& nets) {
  for (auto& [name, t] : named_tensors(nets))
    if (!all_finite(t)) return name;
  return "";
}

bool all_finite(const Tensor& t) {
  NoGradGuard ng;
  return t.numel() == 0 || std::isfinite(sum(abs(t)).item());  // a NaN or an inf makes the sum so
}

void load_params(models::ParamList& dst, const std::map<std::string, Tensor>& src, const std::string& prefix,
                 const std::string& file) {
  auto copy = [&](const std::string& name, const Tensor& t) {
    auto it = src.find(prefix + name);
    SG_CHECK(it != src.end(), "load_snapshot", "'", file, "' has no tensor '", prefix + name, "'");
    const Tensor& s = it->second;
    SG_CHECK(s.shape() == t.shape(), "load_snapshot", "'", file, "': tensor '", prefix + name, "' has shape ",
             shape_str(s.shape()), " but the network expects ", shape_str(t.shape()));
    copy_into(t, s.to(t.dtype()));
  };
  for (auto& [name, t] : dst.params) copy(name, t);
  for (auto& [name, t] : dst.buffers) copy(name, t);
}

Networks load_snapshot(const std::string& path, std::map<std::string, std::string>* metadata) {
  std::map<std::string, std::string> meta;
  auto list = io::load_safetensors(path, &meta);
  std::map<std::string, Tensor> byname(list.begin(), list.end());
  Networks n = make_networks(snapshot_config(meta, path), 0);
  load_params(n.G->parameters(), byname, "G.", path);
  load_params(n.D->parameters(), byname, "D.", path);
  load_params(n.G_ema->parameters(), byname, "G_ema.", path);
  if (metadata) *metadata = meta;
  return n;
}

}  // namespace sg::train
