#include "train/loss.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace sg::train {
using models::NoiseMode;

void add_stat(TickStats& stats, const std::string& name, double value) {
  auto& s = stats[name];
  s.first += value;
  s.second++;
}

AdamConfig lazy_adam(double lr, double beta1, double beta2, int64_t interval) {
  AdamConfig a;
  const double c = interval > 0 ? (double)interval / (double)(interval + 1) : 1.0;
  a.lr = lr * c;
  a.beta1 = std::pow(beta1, c);
  a.beta2 = std::pow(beta2, c);
  return a;
}

StyleGAN2Loss::StyleGAN2Loss(models::Generator& G, models::Discriminator& D, const models::Config& cfg, double r1_gamma)
    : G_(G), D_(D), cfg_(cfg), gamma_(r1_gamma) {}

std::vector<Phase> StyleGAN2Loss::phases(Adam& opt_G, Adam& opt_D) const {
  const std::vector<Tensor> g = G_.parameters().tensors(), d = D_.parameters().tensors();
  std::vector<Phase> p = {{"Gmain", PhaseKind::Gmain, &opt_G, g, 1}};
  if (cfg_.pl_interval > 0 && cfg_.pl_weight > 0) p.push_back({"Greg", PhaseKind::Greg, &opt_G, g, cfg_.pl_interval});
  p.push_back({"Dmain", PhaseKind::Dmain, &opt_D, d, 1});
  if (cfg_.r1_interval > 0 && gamma_ > 0) p.push_back({"Dreg", PhaseKind::Dreg, &opt_D, d, cfg_.r1_interval});
  return p;
}

std::pair<Tensor, Tensor> StyleGAN2Loss::run_G(const Tensor& z, bool update_w_avg, Rng& rng) {
  Tensor ws = G_.mapping(z, 1.0, update_w_avg);
  const int64_t num_ws = G_.num_ws();
  if (cfg_.style_mixing_prob > 0 && num_ws > 1) {
    // Both draws and z2 every time, mixed or not, so the stream does not depend on u.
    const double u = rand({}, rng, DType::f64).item(), v = rand({}, rng, DType::f64).item();
    const int64_t cutoff = 1 + std::min<int64_t>((int64_t)(v * (double)(num_ws - 1)), num_ws - 2);
    Tensor z2 = randn(z.shape(), rng, z.dtype(), z.device());
    if (u < cfg_.style_mixing_prob) {
      Tensor ws2 = G_.mapping(z2, 1.0, false);
      ws = cat({slice(ws, 1, 0, cutoff), slice(ws2, 1, cutoff, num_ws)}, 1);
    }
  }
  Tensor img = G_.synthesis(ws, NoiseMode::random, rng);
  return {img, ws};
}

Tensor StyleGAN2Loss::phase_loss(PhaseKind kind, const Tensor& real, Rng& rng, TickStats& stats) {
  const int64_t N = real.size(0);
  const Device dev = real.device();
  switch (kind) {
    case PhaseKind::Gmain: {
      Tensor z = randn({N, cfg_.z_dim}, rng, DType::f32, dev);
      Tensor img = run_G(z, true, rng).first;
      Tensor loss = mean(softplus(neg(D_.forward(img))));
      add_stat(stats, "loss/G", loss.item());
      return loss;
    }
    case PhaseKind::Greg: {
      const int64_t bs = std::max<int64_t>(N / cfg_.pl_batch_shrink, 1);
      Tensor z = randn({bs, cfg_.z_dim}, rng, DType::f32, dev);
      auto [img, ws] = run_G(z, true, rng);
      Tensor y = mul(randn(img.shape(), rng, DType::f32, dev), 1.0 / std::sqrt((double)(img.size(2) * img.size(3))));
      Tensor pl_grads;
      {
        NoWeightGradientsGuard nw;  // only d/dws is wanted here
        pl_grads = autograd::grad({sum(mul(img, y))}, {ws}, {}, true)[0];
      }
      Tensor pl_lengths = sqrt(mean(sum(square(pl_grads), {2}), {1}));
      pl_mean += (mean(pl_lengths).item() - pl_mean) * cfg_.pl_decay;
      Tensor pl_penalty = square(add(pl_lengths, -pl_mean));
      add_stat(stats, "loss/G_pl", mean(pl_penalty).item() * cfg_.pl_weight);
      add_stat(stats, "pl_mean", pl_mean);
      return mul(mean(pl_penalty), cfg_.pl_weight * (double)cfg_.pl_interval);
    }
    case PhaseKind::Dmain: {
      Tensor z = randn({N, cfg_.z_dim}, rng, DType::f32, dev);
      Tensor img;
      {
        NoGradGuard ng;  // D's loss does not reach G
        img = run_G(z, true, rng).first;
      }
      Tensor loss_fake = mean(softplus(D_.forward(img)));
      Tensor loss_real = mean(softplus(neg(D_.forward(real))));
      Tensor loss = add(loss_fake, loss_real);
      add_stat(stats, "loss/D", loss.item());
      return loss;
    }
    case PhaseKind::Dreg: {
      Tensor x = real.detach().set_requires_grad(true);
      Tensor logits = D_.forward(x);
      Tensor r1_grads;
      {
        NoWeightGradientsGuard nw;  // only d/dx is wanted here
        r1_grads = autograd::grad({sum(logits)}, {x}, {}, true)[0];
      }
      Tensor r1_penalty = sum(square(r1_grads), {1, 2, 3});
      add_stat(stats, "r1_penalty", mean(r1_penalty).item());
      return mul(mean(r1_penalty), gamma_ / 2 * (double)cfg_.r1_interval);
    }
  }
  throw Error("StyleGAN2Loss: unknown phase");
}

void step_phase(const Phase& phase, const Tensor& loss) {
  std::vector<Tensor> grads = autograd::grad({loss}, phase.params, {}, false, true);
  NoGradGuard ng;
  for (size_t i = 0; i < phase.params.size(); ++i)
    phase.params[i].set_grad(grads[i].defined() ? nan_to_num(grads[i], 0.0, 1e5, -1e5) : Tensor());
  phase.opt->step();
  phase.opt->zero_grad();
}

}  // namespace sg::train
