// Network snapshots (G, D, G_ema in one safetensors file, names prefixed "G.", "D.",
// "G_ema."; the architecture in the metadata) and the training-state file (Adam moments,
// counters, RNG and data-loader positions, pl_mean), kept apart so that weights stay
// readable by any safetensors reader and a resumed run continues exactly.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "models/stylegan2.h"

namespace sg::train {

struct Networks {
  models::Config cfg;
  std::unique_ptr<models::Generator> G, G_ema;
  std::unique_ptr<models::Discriminator> D;
};

// Builds fresh networks (G_ema starts as a copy of G).
Networks make_networks(const models::Config& cfg, uint64_t seed);

void save_snapshot(const std::string& path, const Networks& nets, const std::map<std::string, std::string>& extra = {});
// Rebuilds the networks from the architecture stored in the file and loads every tensor.
// Throws sg::Error naming the file on a missing tensor or a shape mismatch.
Networks load_snapshot(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

// The name ("G.", "D.", "G_ema." prefixed) of the first tensor of the networks holding a NaN
// or an infinity; "" when every value is finite.
std::string first_non_finite(const Networks& nets);
// Whether every value of t is finite (no NaN, no infinity).
bool all_finite(const Tensor& t);

// Copies values from `src` (name -> tensor) into `dst` (params and buffers), with names
// prefixed by `prefix`. Every destination tensor must be present with the same shape.
void load_params(models::ParamList& dst, const std::map<std::string, Tensor>& src, const std::string& prefix,
                 const std::string& file);

}  // namespace sg::train
