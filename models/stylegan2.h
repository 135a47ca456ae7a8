// StyleGAN2 networks on the stylegrad engine: mapping, synthesis, discriminator, configs.
//
// Three architecture families share this API (one .cpp each):
//   Arch::stylegan2  models/stylegan2.cpp  stylegan2-ada-pytorch's networks: equalized lr,
//                                           modulated/demodulated convs, skip G, residual D
//   Arch::stylegan1  models/stylegan1.cpp  AdaIN synthesis (conv + noise + bias + lrelu +
//                                           instance norm + style), the StyleGAN2 mapping and D
//   Arch::seed32     models/seed32.cpp     the 32x32 notebook of seed 002, layer for layer,
//                                           with PyTorch's default init and its parameter names
// Configs, channel counts and the closed-form parameter counts: models/config.cpp.
//
// Parameters live in a ParamList (ordered, named like the PyTorch state_dict). The layers
// hold named handles into it (models/layers.h: Param, Buffer) and read the tensor at every
// forward, so an optimizer or a checkpoint loader may either write into the tensors in
// place or replace them in the list.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "engine/tensor.h"

namespace sg::models {

struct ParamList {                                      // ordered, named
  std::vector<std::pair<std::string, Tensor>> params;   // leaves with requires_grad
  std::vector<std::pair<std::string, Tensor>> buffers;  // no grad: w_avg, const noise
  std::vector<Tensor> tensors() const;                  // params only, in order
  int64_t count() const;                                // total number of parameter elements
  // The parameter or buffer called `name` (sg::Error if there is none).
  Tensor get(const std::string& name) const;
  bool has(const std::string& name) const;
};

enum class Arch { stylegan2, seed32, stylegan1 };
enum class NoiseMode { random, constant, none };
// "random", "const" or "none" (the spelling of ada's --noise-mode); sg::Error naming `flag` and
// the value otherwise.
NoiseMode parse_noise_mode(const std::string& flag, const std::string& v);

struct Config {
  std::string name;
  Arch arch = Arch::stylegan2;
  int64_t resolution = 32, img_channels = 3, z_dim = 512, w_dim = 512, mapping_layers = 8;
  // Class-conditional (stylegan2-ada's --cond): labels c [N, c_dim] (one-hot) enter G's mapping
  // through an embedding and D as a projection on a label mapping's output (stylegan2 and
  // stylegan1 archs). 0: unconditional.
  int64_t c_dim = 0;
  // Depth of the conditional D's label mapping (its FCs, at lr x0.01 like ada's). ada: 8. Each
  // random lrelu layer makes the classes' cmap vectors more alike (mean pairwise cosine at init
  // about 0.2 after 1 layer, 0.4 after 2, 0.65-0.7 after 8; tests/test_models.cpp), and at lr
  // x0.01 they stay so (docs/training.md).
  int64_t cmap_layers = 8;
  double mapping_lr_mul = 0.01;
  int64_t channel_base = 16384, channel_max = 512;
  double conv_clamp = -1;                       // < 0: no clamping
  int64_t mbstd_group = 4, mbstd_channels = 1;  // mbstd_channels 0: no minibatch-stddev layer
  DType dtype = DType::f32;                     // of every parameter and buffer
  bool fused_modconv = false;                   // modulated convs: grouped conv (true) or modulate-activations path
  // bf16-mixed (stylegan2 arch): G and D blocks at resolution >= bf16_res run under CudaMath::bf16
  // (engine/device.h; ada's num_fp16_res); the rest under the process's math. 0: none.
  int64_t bf16_res = 0;
  // training defaults (read by the trainer)
  int64_t batch = 32;
  double gamma = 1, lr_g = 0.0025, lr_d = 0.0025, beta1 = 0, beta2 = 0.99;
  double ema_kimg = 10, ema_rampup = 0;  // ema_rampup 0: none; ema_kimg 0: no averaging (G_ema = G)
  double lr_rampdown = 0;                // both learning rates fall linearly to 0 over this last fraction of training
  double pl_weight = 2, pl_decay = 0.01, style_mixing_prob = 0.9;
  int64_t pl_batch_shrink = 2, r1_interval = 16, pl_interval = 4;
};

// resolution 0 picks the config's default (paper256: 256, others: 32). sg::Error on an
// unknown name (the message lists the valid ones), a resolution that is not a power of two
// in [8, 1024], or img_channels other than 1 or 3.
Config make_config(const std::string& name, int64_t resolution = 0, int64_t img_channels = 3);
std::vector<std::string> config_names();
// min(channel_base / res, channel_max), as in stylegan2-ada (seed32: 16*fmap / res).
int64_t channels_at(const Config& c, int64_t res);
// Closed-form parameter counts, written from the architecture description, independently
// of the module code (tests compare the two).
int64_t expected_param_count_G(const Config&);
int64_t expected_param_count_D(const Config&);
// bf16-mixed, as stylegan2-ada-pytorch runs fp16: the blocks at the 4 highest resolutions
// (not below 8: bf16_res = max(R / 8, 8)) under CudaMath::bf16 and conv_clamp 256 where the
// config has none (bf16 has f32's range; the clamp keeps runs comparable with ada's). sg::Error
// for the seed32 and stylegan1 architectures, which have no such blocks.
void set_bf16_mixed(Config& c);
// Number of per-layer w vectors the synthesis network takes.
int64_t expected_num_ws(const Config&);

namespace detail {
struct GeneratorNet;
struct DiscriminatorNet;
}  // namespace detail

class Generator {
 public:
  Generator(const Config& c, Rng& rng);
  ~Generator();
  Generator(Generator&&) noexcept;
  Generator& operator=(Generator&&) noexcept;
  Generator(const Generator&) = delete;  // would share the parameter storage; use copy_from
  Generator& operator=(const Generator&) = delete;

  const Config& config() const { return cfg_; }
  int64_t num_ws() const;
  // z [N, z_dim], c [N, c_dim] (the labels, one-hot; undefined when c_dim is 0) -> ws
  // [N, num_ws, w_dim]. update_w_avg: w_avg <- lerp(mean_n w, w_avg, 0.995) (before
  // truncation). truncation_psi != 1: ws = lerp(w_avg, ws, psi).
  Tensor mapping(const Tensor& z, const Tensor& c, double truncation_psi = 1.0, bool update_w_avg = false);
  // The same for an unconditional generator (sg::Error when c_dim > 0).
  Tensor mapping(const Tensor& z, double truncation_psi = 1.0, bool update_w_avg = false) {
    return mapping(z, Tensor(), truncation_psi, update_w_avg);
  }
  // ws [N, num_ws, w_dim] -> img [N, img_channels, R, R]. Random noise is drawn from rng.
  Tensor synthesis(const Tensor& ws, NoiseMode noise, Rng& rng);
  ParamList& parameters() { return params_; }
  const ParamList& parameters() const { return params_; }
  // Copies every parameter's and buffer's values (for G_ema); same config required.
  void copy_from(const Generator& other);
  // Moves every parameter (as a new leaf), buffer and constant to device d.
  void to(Device d);
  Device device() const;

 private:
  Config cfg_;
  ParamList params_;
  std::unique_ptr<detail::GeneratorNet> net_;
};

class Discriminator {
 public:
  Discriminator(const Config& c, Rng& rng);
  ~Discriminator();
  Discriminator(Discriminator&&) noexcept;
  Discriminator& operator=(Discriminator&&) noexcept;
  Discriminator(const Discriminator&) = delete;
  Discriminator& operator=(const Discriminator&) = delete;

  const Config& config() const { return cfg_; }
  // img [N,C,R,R], c [N, c_dim] (undefined when c_dim is 0) -> [N,1] logits.
  Tensor forward(const Tensor& img, const Tensor& c);
  Tensor forward(const Tensor& img) { return forward(img, Tensor()); }  // unconditional
  // A conditional D's label mapping: c [N, c_dim] -> cmap [N, C4], the vectors its logit
  // projects on (sg::Error when c_dim is 0).
  Tensor label_map(const Tensor& c);
  ParamList& parameters() { return params_; }
  const ParamList& parameters() const { return params_; }
  void to(Device d);  // as Generator::to
  Device device() const;

 private:
  Config cfg_;
  ParamList params_;
  std::unique_ptr<detail::DiscriminatorNet> net_;
};

}  // namespace sg::models
