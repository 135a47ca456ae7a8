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
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/optim.h"
#include "models/stylegan2.h"

namespace sg::train {

// Per-tick statistics: name -> (sum, count); the tick logs each mean.
using TickStats = std::map<std::string, std::pair<double, int64_t>>;
void add_stat(TickStats& stats, const std::string& name, double value);

enum class PhaseKind { Gmain, Greg, Dmain, Dreg };

struct Phase {
  std::string name;  // "Gmain", "Greg", "Dmain", "Dreg"
  PhaseKind kind;
  Adam* opt;                   // the optimizer of the phase's network
  std::vector<Tensor> params;  // what the phase's loss is differentiated for
  int64_t interval;            // runs when batch_idx % interval == 0
};

// Adam with the lazy-regularization correction c = k / (k + 1): lr * c, beta ** c.
AdamConfig lazy_adam(double lr, double beta1, double beta2, int64_t interval);

class StyleGAN2Loss {
 public:
  StyleGAN2Loss(models::Generator& G, models::Discriminator& D, const models::Config& cfg, double r1_gamma);

  // The phases to run, in order: Gmain, Greg (when pl_weight > 0), Dmain, Dreg (when
  // gamma > 0), with the optimizers of G and D.
  std::vector<Phase> phases(Adam& opt_G, Adam& opt_D) const;

  // The loss of one phase on this minibatch of reals (already scaled by its interval);
  // latents, mixing and noise come from rng. Adds the phase's statistics to stats.
  Tensor phase_loss(PhaseKind kind, const Tensor& real, Rng& rng, TickStats& stats);

  double pl_mean = 0;  // the path-length running mean (part of the training state)

 private:
  // G(z) with style mixing: the images and the ws they came from.
  std::pair<Tensor, Tensor> run_G(const Tensor& z, bool update_w_avg, Rng& rng);

  models::Generator& G_;
  models::Discriminator& D_;
  const models::Config& cfg_;
  double gamma_;
};

// One optimizer step of a phase: .grad of each parameter = nan_to_num(d loss / d param) (as
// stylegan2-ada-pytorch does), then Adam, then the grads are dropped.
void step_phase(const Phase& phase, const Tensor& loss);

}  // namespace sg::train
