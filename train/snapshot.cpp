#include "train/snapshot.h"

#include <cmath>
#include <cstring>

#include "engine/io/safetensors.h"
#include "engine/ops.h"

namespace sg::train {

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
  SG_CHECK(meta.count("cfg") && meta.count("resolution") && meta.count("img_channels"), "load_snapshot", "'", path,
           "' is not a stylegrad snapshot (no cfg / resolution / img_channels metadata)");
  models::Config cfg =
      models::make_config(meta["cfg"], std::stoll(meta["resolution"]), std::stoll(meta["img_channels"]));
  Networks n = make_networks(cfg, 0);
  load_params(n.G->parameters(), byname, "G.", path);
  load_params(n.D->parameters(), byname, "D.", path);
  load_params(n.G_ema->parameters(), byname, "G_ema.", path);
  if (metadata) *metadata = meta;
  return n;
}

}  // namespace sg::train
