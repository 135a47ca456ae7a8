#include "train/loss.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "train/batch_loader.h"

namespace sg::train {
using models::NoiseMode;

void add_stat(TickStats& stats, const std::string& name, const Tensor& value, double scale) {
  NoGradGuard ng;
  TickStat& s = stats[name];
  Tensor v = value.detach().to(DType::f64);
  if (scale != 1.0) v = mul(v, scale);
  s.sum = s.sum.defined() ? add(s.sum, v) : v.clone();  // (v may share an f64 value's storage)
  s.count++;
}

void add_stat(TickStats& stats, const std::string& name, double value) {
  TickStat& s = stats[name];
  s.host += value;
  s.count++;
}

double stat_mean(const TickStat& s) {
  const double sum = s.host + (s.sum.defined() ? s.sum.item() : 0.0);
  return sum / (double)std::max<int64_t>(s.count, 1);
}

AdamConfig lazy_adam(double lr, double beta1, double beta2, int64_t interval) {
  AdamConfig a;
  a.grad_nan_to_num = true;  // NaN -> 0, +-inf -> +-1e5 as the step reads the gradients (ada's nan_to_num)
  const double c = interval > 0 ? (double)interval / (double)(interval + 1) : 1.0;
  a.lr = lr * c;
  a.beta1 = std::pow(beta1, c);
  a.beta2 = std::pow(beta2, c);
  return a;
}

const char* schedule_name(Schedule s) { return s == Schedule::notebook ? "notebook" : "stylegan2"; }

Schedule resolve_schedule(const std::string& name, const std::string& cfg_name) {
  if (name == "auto") return cfg_name == "seed32" ? Schedule::notebook : Schedule::stylegan2;
  if (name == "stylegan2") return Schedule::stylegan2;
  if (name == "notebook") return Schedule::notebook;
  throw Error("--schedule: expected auto, stylegan2 or notebook, got '" + name + "'");
}

void apply_schedule(models::Config& c, Schedule s) {
  if (s != Schedule::notebook) return;
  // The notebook's Cfg after its overrides (batch 32, r1 0.5 / 64, pl 1.0 / 16).
  c.batch = 32;
  c.lr_g = c.lr_d = 2e-4;
  c.beta1 = 0.0, c.beta2 = 0.99;
  c.gamma = 0.5;
  c.r1_interval = 64;
  c.pl_weight = 1.0, c.pl_interval = 16, c.pl_decay = 0.01;
  c.pl_batch_shrink = 1;  // the loop it runs: the path length on Gmain's whole batch
  c.style_mixing_prob = 0.0;
  c.ema_kimg = 0, c.ema_rampup = 0;  // no G_ema: G_ema is a copy of G after every step
}

std::vector<std::vector<const Phase*>> steps_at(const std::vector<Phase>& phases, int64_t batch_idx) {
  std::vector<std::vector<const Phase*>> steps;
  for (const Phase& p : phases) {
    if (batch_idx % p.interval != 0) continue;
    if (p.joins_previous && !steps.empty())
      steps.back().push_back(&p);
    else
      steps.push_back({&p});
  }
  return steps;
}

StyleGAN2Loss::StyleGAN2Loss(models::Generator& G, models::Discriminator& D, const models::Config& cfg, double r1_gamma,
                             Schedule schedule)
    : G_(G), D_(D), cfg_(cfg), gamma_(r1_gamma), schedule_(schedule) {}

std::vector<Phase> StyleGAN2Loss::phases(Adam& opt_G, Adam& opt_D) const {
  const std::vector<Tensor> g = G_.parameters().tensors(), d = D_.parameters().tensors();
  if (schedule_ == Schedule::notebook) {
    std::vector<Phase> p = {{"Dmain", PhaseKind::Dmain, &opt_D, d, 1}};
    if (cfg_.r1_interval > 0 && gamma_ > 0) p.push_back({"Dreg", PhaseKind::Dreg, &opt_D, d, cfg_.r1_interval, true});
    p.push_back({"Gmain", PhaseKind::Gmain, &opt_G, g, 1});
    if (cfg_.pl_interval > 0 && cfg_.pl_weight > 0)
      p.push_back({"Greg", PhaseKind::Greg, &opt_G, g, cfg_.pl_interval, true});
    return p;
  }
  std::vector<Phase> p = {{"Gmain", PhaseKind::Gmain, &opt_G, g, 1}};
  if (cfg_.pl_interval > 0 && cfg_.pl_weight > 0) p.push_back({"Greg", PhaseKind::Greg, &opt_G, g, cfg_.pl_interval});
  p.push_back({"Dmain", PhaseKind::Dmain, &opt_D, d, 1});
  if (cfg_.r1_interval > 0 && gamma_ > 0) p.push_back({"Dreg", PhaseKind::Dreg, &opt_D, d, cfg_.r1_interval});
  return p;
}

void StyleGAN2Loss::set_label_pool(std::vector<uint8_t> labels) { label_pool_ = std::move(labels); }

Tensor sample_labels(const std::vector<uint8_t>& pool, int64_t n, int64_t c_dim, Rng& rng, Device dev) {
  SG_CHECK(!pool.empty() && c_dim > 0, "sample_labels", "no labels to draw from (", pool.size(), " labels, c_dim ",
           c_dim, ")");
  const std::vector<double> u = rand({n}, rng, DType::f64).to_vector();
  const int64_t m = (int64_t)pool.size();
  std::vector<int64_t> classes((size_t)n);
  for (int64_t i = 0; i < n; ++i)
    classes[(size_t)i] = pool[(size_t)std::min<int64_t>((int64_t)(u[(size_t)i] * (double)m), m - 1)];
  return data::one_hot(classes, c_dim).to(dev);
}

Tensor StyleGAN2Loss::sample_labels(int64_t n, Rng& rng, Device dev) const {
  if (cfg_.c_dim == 0) return Tensor();
  SG_CHECK(!label_pool_.empty(), "StyleGAN2Loss", "the networks are conditional (c_dim ", cfg_.c_dim,
           ") but no training labels were given (set_label_pool)");
  return train::sample_labels(label_pool_, n, cfg_.c_dim, rng, dev);
}

std::pair<Tensor, Tensor> StyleGAN2Loss::run_G(const Tensor& z, const Tensor& c, bool update_w_avg, Rng& rng) {
  Tensor ws = G_.mapping(z, c, 1.0, update_w_avg);
  const int64_t num_ws = G_.num_ws();
  if (cfg_.style_mixing_prob > 0 && num_ws > 1 && graph_safe_) {
    // The same draws on the device. Layer l takes ws2 iff u < p and l >= cutoff, which is
    // v (L - 1) < mix_thr_[l]: -inf for l = 0, l for 0 < l < L - 1, +inf for l = L - 1.
    const Device dev = z.device();
    const Tensor u = rand({}, rng, DType::f64, dev), v = rand({}, rng, DType::f64, dev);
    Tensor z2 = randn(z.shape(), rng, z.dtype(), dev);
    if (!mix_thr_.defined() || mix_thr_.numel() != num_ws || mix_thr_.device() != dev) {
      std::vector<double> thr((size_t)num_ws);
      for (int64_t l = 0; l < num_ws; ++l) thr[(size_t)l] = (double)l;
      thr.front() = -INFINITY, thr.back() = INFINITY;
      mix_thr_ = from_vector(thr, {num_ws}, DType::f64).to(dev);
    }
    Tensor take2;
    {
      NoGradGuard ng;
      take2 = mul(lt(mul(v, (double)(num_ws - 1)), mix_thr_), lt(u, cfg_.style_mixing_prob));
      take2 = reshape(take2.to(ws.dtype()), {1, num_ws, 1});
    }
    ws = where(take2, G_.mapping(z2, c, 1.0, false), ws);
  } else if (cfg_.style_mixing_prob > 0 && num_ws > 1) {
    // Both draws and z2 every time, mixed or not, so the stream does not depend on u.
    const double u = rand({}, rng, DType::f64).item(), v = rand({}, rng, DType::f64).item();
    const int64_t cutoff = 1 + std::min<int64_t>((int64_t)(v * (double)(num_ws - 1)), num_ws - 2);
    Tensor z2 = randn(z.shape(), rng, z.dtype(), z.device());
    if (u < cfg_.style_mixing_prob) {
      Tensor ws2 = G_.mapping(z2, c, 1.0, false);
      ws = cat({slice(ws, 1, 0, cutoff), slice(ws2, 1, cutoff, num_ws)}, 1);
    }
  }
  Tensor img = G_.synthesis(ws, NoiseMode::random, rng);
  return {img, ws};
}

Tensor StyleGAN2Loss::step_loss(const std::vector<const Phase*>& group, const Tensor& real, const Tensor& real_c,
                                Rng& rng, TickStats& stats) {
  Tensor total;
  for (const Phase* p : group) {
    Tensor l = phase_loss(p->kind, real, real_c, rng, stats);
    total = total.defined() ? add(total, l) : l;
  }
  gmain_img_ = gmain_ws_ = Tensor();  // the step's graph is not kept past it
  return total;
}

double StyleGAN2Loss::pl_mean_value() const { return pl_mean_t_.defined() ? pl_mean_t_.item() : pl_mean; }

void StyleGAN2Loss::set_pl_mean(double v) {
  pl_mean = v;
  pl_mean_t_ = Tensor();  // made again from pl_mean at the next Greg step
}

Tensor StyleGAN2Loss::notebook_pl_penalty(const Tensor& img, const Tensor& ws, Rng& rng) {
  const Device dev = img.device();
  const double chw = (double)(img.size(1) * img.size(2) * img.size(3));
  Tensor y = mul(randn(img.shape(), rng, DType::f32, dev), 1.0 / std::sqrt(chw));
  Tensor ws_grads;
  {
    NoWeightGradientsGuard nw;  // only d/dws is wanted here
    ws_grads = autograd::grad({sum(mul(img, y))}, {ws}, {}, true)[0];
  }
  Tensor w_grads = sum(ws_grads, {1});  // every layer reads the same w
  Tensor pl = mean(sqrt(sum(square(w_grads), {1})));
  const double pl_now = pl.item();
  if (pl_mean == 0) pl_mean = pl_now;
  Tensor penalty = square(add(pl, -pl_mean));
  pl_mean += (pl_now - pl_mean) * cfg_.pl_decay;
  return penalty;
}

Tensor StyleGAN2Loss::phase_loss(PhaseKind kind, const Tensor& real, const Tensor& real_c, Rng& rng, TickStats& stats) {
  const int64_t N = real.size(0);
  const Device dev = real.device();
  SG_CHECK(cfg_.c_dim == 0 || schedule_ == Schedule::stylegan2, "StyleGAN2Loss",
           "the notebook schedule is unconditional (c_dim must be 0, got ", cfg_.c_dim, ")");
  switch (kind) {
    case PhaseKind::Gmain: {
      Tensor z = randn({N, cfg_.z_dim}, rng, DType::f32, dev);
      const Tensor c = sample_labels(N, rng, dev);
      auto [img, ws] = run_G(z, c, true, rng);
      if (schedule_ == Schedule::notebook) gmain_img_ = img, gmain_ws_ = ws;  // for Greg's penalty
      Tensor loss = mean(softplus(neg(D_.forward(img, c))));
      add_stat(stats, "loss/G", loss);
      return loss;
    }
    case PhaseKind::Greg: {
      if (schedule_ == Schedule::notebook) {
        SG_CHECK(gmain_img_.defined(), "StyleGAN2Loss", "the notebook's Greg runs in Gmain's step");
        Tensor penalty = notebook_pl_penalty(gmain_img_, gmain_ws_, rng);
        add_stat(stats, "loss/G_pl", penalty, cfg_.pl_weight);
        add_stat(stats, "pl_mean", pl_mean);
        return mul(penalty, cfg_.pl_weight);
      }
      const int64_t bs = std::max<int64_t>(N / cfg_.pl_batch_shrink, 1);
      Tensor z = randn({bs, cfg_.z_dim}, rng, DType::f32, dev);
      auto [img, ws] = run_G(z, sample_labels(bs, rng, dev), true, rng);
      Tensor y = mul(randn(img.shape(), rng, DType::f32, dev), 1.0 / std::sqrt((double)(img.size(2) * img.size(3))));
      Tensor pl_grads;
      {
        NoWeightGradientsGuard nw;  // only d/dws is wanted here
        pl_grads = autograd::grad({sum(mul(img, y))}, {ws}, {}, true)[0];
      }
      Tensor pl_lengths = sqrt(mean(sum(square(pl_grads), {2}), {1}));
      {  // pl_mean += (mean(pl_lengths) - pl_mean) * pl_decay, in f64 on the device
        NoGradGuard ng;
        if (!pl_mean_t_.defined() || pl_mean_t_.device() != dev) pl_mean_t_ = scalar(pl_mean, DType::f64, dev);
        Tensor next = add(pl_mean_t_, mul(sub(mean(pl_lengths).detach().to(DType::f64), pl_mean_t_), cfg_.pl_decay));
        if (graph_safe_)
          copy_into(pl_mean_t_, next);  // a captured step writes where the next one reads
        else
          pl_mean_t_ = next;
      }
      Tensor pl_penalty = square(sub(pl_lengths, pl_mean_t_.to(DType::f32)));
      add_stat(stats, "loss/G_pl", mean(pl_penalty), cfg_.pl_weight);
      add_stat(stats, "pl_mean", pl_mean_t_);
      return mul(mean(pl_penalty), cfg_.pl_weight * (double)cfg_.pl_interval);
    }
    case PhaseKind::Dmain: {
      Tensor z = randn({N, cfg_.z_dim}, rng, DType::f32, dev);
      const Tensor c = sample_labels(N, rng, dev);
      Tensor img;
      {
        NoGradGuard ng;  // D's loss does not reach G
        img = run_G(z, c, true, rng).first;
      }
      Tensor loss_fake = mean(softplus(D_.forward(img, c)));
      Tensor loss_real = mean(softplus(neg(D_.forward(real, real_c))));
      Tensor loss = add(loss_fake, loss_real);
      add_stat(stats, "loss/D", loss);
      return loss;
    }
    case PhaseKind::Dreg: {
      Tensor x = real.detach().set_requires_grad(true);
      Tensor logits = D_.forward(x, real_c);
      Tensor r1_grads;
      {
        NoWeightGradientsGuard nw;  // only d/dx is wanted here
        r1_grads = autograd::grad({sum(logits)}, {x}, {}, true)[0];
      }
      Tensor r1_penalty = sum(square(r1_grads), {1, 2, 3});
      add_stat(stats, "r1_penalty", mean(r1_penalty));
      // Lazy R1 weighs as if it ran every step; the notebook adds gamma/2 * r1 as it is.
      const double scale = schedule_ == Schedule::notebook ? 1.0 : (double)cfg_.r1_interval;
      return mul(mean(r1_penalty), gamma_ / 2 * scale);
    }
  }
  throw Error("StyleGAN2Loss: unknown phase");
}

std::vector<Tensor> phase_grads(const Phase& phase, const Tensor& loss) {
  return autograd::grad({loss}, phase.params, {}, false, true);
}

void apply_phase_grads(const Phase& phase, const std::vector<Tensor>& grads) {
  NoGradGuard ng;
  for (size_t i = 0; i < phase.params.size(); ++i) phase.params[i].set_grad(grads[i]);
  phase.opt->step();
  phase.opt->zero_grad();
}

void step_phase(const Phase& phase, const Tensor& loss) { apply_phase_grads(phase, phase_grads(phase, loss)); }

}  // namespace sg::train
