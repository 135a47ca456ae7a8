// The StyleGAN2 loss, with its four phases as data (stylegan2-ada-pytorch's
// training/loss.py StyleGAN2Loss and the phase list of training/training_loop.py):
//
//   phase  network  every         loss
//   Gmain  G        minibatch     softplus(-D(G(z)))                    non-saturating
//   Greg   G        pl_interval   pl_weight * (|J_w^T y| - pl_mean)^2   path length, y ~ N(0, 1/(H W))
//   Dmain  D        minibatch     softplus(D(G(z))) + softplus(-D(x))   logistic
//   Dreg   D        r1_interval   gamma/2 * |grad_x D(x)|^2             R1 on reals
//
// A lazy regularizer (Greg, Dreg) runs every `interval` minibatches and its loss is scaled by
// the interval, so that it weighs as if it ran every time; the optimizers' lr and betas are
// adjusted to match (lazy_adam). G(z) draws style-mixing cutoffs and noise from the training
// RNG; the regularizers differentiate through G or D twice (create_graph), which is why the
// engine has double backward.
//
// Schedule::notebook is the loop of the seed notebook (models/seed32.cpp; docs/training.md,
// "seed32 and the schedules"): per minibatch one D step (Dmain, plus R1 every r1_interval
// added to the same loss, not scaled by the interval), then one G step (Gmain, plus every
// pl_interval the notebook's simplified path length on Gmain's own images, not scaled);
// plain Adam (no lazy correction), no style mixing, no EMA.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/optim.h"
#include "models/stylegan2.h"

namespace sg::train {

// Per-tick statistics: name -> running sum and count; the tick logs each mean. A loss is added
// as the scalar tensor it is, on its device (summed there in f64), so recording it does not
// wait for the device: the tick reads each sum once (stat_mean). Values known on the host
// (pl_mean) are added as doubles.
struct TickStat {
  Tensor sum;       // f64 scalar on the losses' device, or undefined
  double host = 0;  // the sum of the host values
  int64_t count = 0;
};
using TickStats = std::map<std::string, TickStat>;
// value: a scalar tensor (no gradient is kept), times scale in f64.
void add_stat(TickStats& stats, const std::string& name, const Tensor& value, double scale = 1.0);
void add_stat(TickStats& stats, const std::string& name, double value);
double stat_mean(const TickStat& s);  // reads the device sum (a device sync)

enum class PhaseKind { Gmain, Greg, Dmain, Dreg };

// n labels, each that of a uniformly random entry of `pool` (so the classes come in the pool's
// proportions), one-hot [n, c_dim] f32 on dev (data::one_hot: sg::Error for a class not below
// c_dim); one uniform draw from rng per label. How the conditional trainer and the metrics
// label generated images.
Tensor sample_labels(const std::vector<uint8_t>& pool, int64_t n, int64_t c_dim, Rng& rng, Device dev);

// The training schedule (stylegan2-train --schedule).
enum class Schedule { stylegan2, notebook };
const char* schedule_name(Schedule s);
// "stylegan2", "notebook", or "auto": notebook for the seed32 config, stylegan2 otherwise.
// sg::Error naming the value otherwise.
Schedule resolve_schedule(const std::string& name, const std::string& cfg_name);
// The notebook's hyperparameters on top of a config (lr 2e-4, betas (0, 0.99), R1 gamma 0.5
// every 64, path length 1.0 every 16 on the whole batch, no style mixing, no EMA, batch 32);
// stylegan2 leaves the config as it is.
void apply_schedule(models::Config& cfg, Schedule s);

struct Phase {
  std::string name;  // "Gmain", "Greg", "Dmain", "Dreg"
  PhaseKind kind;
  Adam* opt;                   // the optimizer of the phase's network
  std::vector<Tensor> params;  // what the phase's loss is differentiated for
  int64_t interval;            // runs when batch_idx % interval == 0
  // Its loss is added to the previous due phase's and the two take one optimizer step
  // (the notebook's D and G steps); otherwise each phase is a step of its own.
  bool joins_previous = false;
};

// The optimizer steps of minibatch batch_idx, in order: the due phases, grouped by
// joins_previous (each group's losses are summed into one step).
std::vector<std::vector<const Phase*>> steps_at(const std::vector<Phase>& phases, int64_t batch_idx);

// Adam with the lazy-regularization correction c = k / (k + 1): lr * c, beta ** c; the step
// reads the gradients through nan_to_num (NaN -> 0, +-inf -> +-1e5: AdamConfig::grad_nan_to_num).
AdamConfig lazy_adam(double lr, double beta1, double beta2, int64_t interval);

class StyleGAN2Loss {
 public:
  StyleGAN2Loss(models::Generator& G, models::Discriminator& D, const models::Config& cfg, double r1_gamma,
                Schedule schedule = Schedule::stylegan2);

  // The phases to run, in order: Gmain, Greg (when pl_weight > 0), Dmain, Dreg (when
  // gamma > 0), with the optimizers of G and D. Notebook: Dmain, Dreg joining it, Gmain,
  // Greg joining it.
  std::vector<Phase> phases(Adam& opt_G, Adam& opt_D) const;

  // The loss of one optimizer step (a group of steps_at): the sum of its phases' losses.
  // real_c: the reals' labels [N, c_dim] one-hot when the networks are conditional, else
  // undefined.
  Tensor step_loss(const std::vector<const Phase*>& group, const Tensor& real, const Tensor& real_c, Rng& rng,
                   TickStats& stats);

  // The loss of one phase on this minibatch of reals (already scaled by its interval);
  // latents, mixing, noise and the generated images' labels come from rng. Adds the phase's
  // statistics to stats.
  Tensor phase_loss(PhaseKind kind, const Tensor& real, const Tensor& real_c, Rng& rng, TickStats& stats);

  // Conditional networks (cfg.c_dim > 0): the training set's labels (class indices), from
  // which each phase draws its generated images' labels, as stylegan2-ada-pytorch draws them
  // (a uniformly random training image's label, so the classes come in the data's proportions).
  void set_label_pool(std::vector<uint8_t> labels);
  // n labels drawn that way, one-hot [n, c_dim] f32 on dev (undefined when unconditional).
  Tensor sample_labels(int64_t n, Rng& rng, Device dev) const;

  // The path-length running mean (part of the training state). The notebook schedule keeps it
  // here, on the host. The stylegan2 schedule keeps it as an f64 scalar on the losses' device,
  // so a Greg step does not wait for the device (same arithmetic, same numbers); this field is
  // then only its starting value. pl_mean_value() reads the current one (for saving the
  // state), set_pl_mean() sets it (resume).
  double pl_mean = 0;
  double pl_mean_value() const;
  void set_pl_mean(double v);

  // The notebook's path-length penalty on images `img` made from `ws` [N, num_ws, w_dim] (the
  // one w of each image, broadcast): pl = mean_i |d sum(img * y) / d w_i|, y ~ N(0, 1/(C H W)),
  // w_i's gradient the sum over the layers; penalty (pl - pl_mean)^2, then pl_mean lerps
  // toward pl by pl_decay. pl_mean 0 means not yet measured (the notebook's None): it is set
  // to the first pl, whose penalty is 0. Not scaled by pl_weight.
  Tensor notebook_pl_penalty(const Tensor& img, const Tensor& ws, Rng& rng);

  // For CUDA graphs (stylegan2-train --cuda-graph, stylegan2 schedule): every phase's device
  // work then depends on no host value that changes from step to step. Style mixing is
  // decided on the device: u and v are drawn there (the same numbers as the host draws),
  // both mappings always run and where() takes ws2's layers from cutoff on (the same values
  // and gradients as the slices), and pl_mean is updated in place. Off: the loss runs as it
  // always has.
  void set_graph_safe(bool on) { graph_safe_ = on; }

 private:
  // G(z, c) with style mixing: the images and the ws they came from.
  std::pair<Tensor, Tensor> run_G(const Tensor& z, const Tensor& c, bool update_w_avg, Rng& rng);

  models::Generator& G_;
  models::Discriminator& D_;
  const models::Config& cfg_;
  double gamma_;
  Schedule schedule_;
  // Notebook: Gmain's images and ws, for the Greg of the same step.
  Tensor gmain_img_, gmain_ws_;
  Tensor pl_mean_t_;                 // stylegan2 schedule: pl_mean on the device (undefined until the first Greg)
  std::vector<uint8_t> label_pool_;  // conditional: the training labels
  bool graph_safe_ = false;
  Tensor mix_thr_;  // graph-safe mixing: per layer, the v (num_ws - 1) below which it takes ws2
};

// One optimizer step of a phase: .grad of each parameter = d loss / d param, then Adam, which
// reads them through nan_to_num (NaN -> 0, +-inf -> +-1e5, as stylegan2-ada-pytorch sanitises
// them; lazy_adam's AdamConfig::grad_nan_to_num), then the grads are dropped. It is
// apply_phase_grads(phase, phase_grads(phase, loss)); the two halves let a CUDA graph hold
// the gradients' computation while the optimizer step runs outside it.
void step_phase(const Phase& phase, const Tensor& loss);
std::vector<Tensor> phase_grads(const Phase& phase, const Tensor& loss);  // undefined: no gradient
void apply_phase_grads(const Phase& phase, const std::vector<Tensor>& grads);

}  // namespace sg::train
