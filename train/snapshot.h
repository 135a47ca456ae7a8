// Network snapshots (G, D, G_ema in one safetensors file, names prefixed "G.", "D.",
// "G_ema."; the architecture and the image count in the metadata) and the training-state
// file (Adam moments, counters, RNG and data-loader positions, pl_mean), kept apart so that
// weights stay readable by any safetensors reader and a resumed run continues exactly.
//
// A snapshot is the pair network-snapshot-<N>.safetensors + training-state-<N>.safetensors,
// N the number of real images shown (9 digits: 000020000 is 20 kimg). Each file is written
// atomically (a .tmp file, fsync, rename); the network first, the state last, so the state's
// presence commits the pair. Both record N (metadata cur_nimg) and a pair is complete only
// when the two agree: a crash between the two renames leaves a network without its state,
// never a pair that resumes silently from another step.
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

// "000020000" for 20000 images: the N of the file names above.
std::string snapshot_tag(int64_t nimg);
// The training state beside a network snapshot (network-snapshot-N -> training-state-N).
std::string state_path_for(const std::string& network_snapshot);

// The architecture a network snapshot's metadata names (cfg, resolution, img_channels, and
// channel_base, channel_max, mapping_layers, mapping_lr_mul, mbstd_group, c_dim, cmap_layers
// where present), checked: sg::Error naming the file and the key for a missing or bad value.
models::Config snapshot_config(const std::map<std::string, std::string>& meta, const std::string& file);
// The image count a network snapshot was taken at: its cur_nimg (files written before it
// was recorded: kimg x 1000), checked like the rest.
int64_t snapshot_nimg(const std::map<std::string, std::string>& meta, const std::string& file);

// What a training-state file's metadata holds, checked: every counter an integer in
// [0, 2^62], the batch in [1, 4096]; sg::Error naming the file, the key and the value
// otherwise. `stream` holds the data / seed / mirror the run was trained with (absent in
// older files).
struct TrainingStateMeta {
  int64_t cur_nimg = 0, batch_idx = 0, cur_tick = 0, batch = 0, loader_epoch = 0, loader_position = 0;
  uint64_t rng_seed = 0, rng_offset = 0;
  std::map<std::string, std::string> stream;
};
TrainingStateMeta parse_training_state_metadata(const std::map<std::string, std::string>& meta,
                                                const std::string& file);

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
