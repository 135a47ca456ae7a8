// CPU benchmark of the five phases of one StyleGAN2 training step, f32, config `seed32`
// (the seed-002 notebook's 32x32 model: fmap 96, z 128, w 192), batch 32, random reals.
//
// The twin of bench/torch_train_phases.py (the notebook's PyTorch model, same phases, same
// protocol, same output format); bench/run_train_bench.sh runs both and prints the ratios.
//
// Each phase is written as train/training_loop.cpp does it, without style mixing (seed32
// has style_mixing_prob 0, and the notebook has none):
//   G_forward  mapping + synthesis under NoGradGuard
//   D_step     z -> G under no-grad -> D(fake), D(real); softplus(D(fake)) + softplus(-D(real))
//              (means); grads wrt D params; nan_to_num; Adam step          (Dmain)
//   G_step     G(z) -> D -> mean softplus(-logits); grads wrt G params; Adam step   (Gmain)
//   R1_step    D(reals requiring grad); grad of sum(logits) wrt reals with create_graph
//              (under NoWeightGradientsGuard); penalty sum of squares; grads wrt D params;
//              Adam step                                                   (Dreg)
//   PL_step    G on batch / pl_batch_shrink (16); pl_noise; grad of sum(img * noise) wrt ws
//              with create_graph (NoWeightGradientsGuard); pl lengths, penalty; grads wrt G
//              params; Adam step                                           (Greg)
// Adam: sg::Adam, lr 2e-4, betas (0, 0.99) (the notebook's; the rate does not change the cost).
// Protocol: `warmup` untimed runs, then the median of `reps` timed runs (steady_clock).
// Every phase also records laps at its sub-steps (forward, inner grad, outer grad, Adam),
// printed as `# breakdown` lines: the median of each lap over the timed reps.
// Threads: OMP_NUM_THREADS (printed as omp_get_max_threads()).
//
// Usage: build/bench_train_phases [--quick]
// Output: one line per phase,  phase=<name> impl=stylegrad ms=<median ms>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/tensor.h"
#include "models/stylegan2.h"

namespace {

using namespace sg;
using models::NoiseMode;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  const size_t n = t.size();
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

// Sub-step laps of one run of a phase: lap("name") closes the interval since the last lap.
struct Laps {
  Clock::time_point last = Clock::now();
  std::vector<std::pair<std::string, double>> laps;
  void lap(const char* name) {
    const auto now = Clock::now();
    laps.push_back({name, std::chrono::duration<double, std::milli>(now - last).count()});
    last = now;
  }
};

// As train/training_loop.cpp's apply(): .grad = nan_to_num(grad), step, zero_grad.
void apply(Adam& opt, const std::vector<Tensor>& params, const std::vector<Tensor>& grads) {
  NoGradGuard ng;
  for (size_t i = 0; i < params.size(); ++i)
    params[i].set_grad(grads[i].defined() ? nan_to_num(grads[i], 0.0, 1e5, -1e5) : Tensor());
  opt.step();
  opt.zero_grad();
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
      return 2;
    }
  }
  const int warmup = 1, reps = quick ? 3 : 5;
  const int64_t N = 32;
  models::Config cfg = models::make_config("seed32", 32, 3);
  Rng init(0);
  models::Generator G(cfg, init);
  models::Discriminator D(cfg, init);
  AdamConfig ac;
  ac.lr = 2e-4, ac.beta1 = 0.0, ac.beta2 = 0.99;
  Adam opt_G(G.parameters().params, ac);
  Adam opt_D(D.parameters().params, ac);
  const std::vector<Tensor> G_params = G.parameters().tensors(), D_params = D.parameters().tensors();
  std::printf("# stylegrad bench_train_phases: cfg seed32 32x32x3, batch %lld, f32, fused_modconv=%d, "
              "G %lld params, D %lld params, omp_get_max_threads()=%d, warmup=%d, reps=%d (median)\n",
              (long long)N, (int)cfg.fused_modconv, (long long)G.parameters().count(),
              (long long)D.parameters().count(), omp_get_max_threads(), warmup, reps);
  std::fflush(stdout);

  Rng rng(1234);
  Tensor real;
  {
    NoGradGuard ng;
    real = add(mul(rand({N, cfg.img_channels, cfg.resolution, cfg.resolution}, rng), 2.0), -1.0);  // U[-1, 1)
  }
  double pl_mean = 0.0;

  using Phase = std::function<void(Laps&)>;
  std::vector<std::pair<std::string, Phase>> phases;

  phases.push_back({"G_forward", [&](Laps& L) {
                      NoGradGuard ng;
                      Tensor z = randn({N, cfg.z_dim}, rng);
                      Tensor ws = G.mapping(z, 1.0, false);
                      L.lap("mapping");
                      Tensor img = G.synthesis(ws, NoiseMode::random, rng);
                      L.lap("synthesis");
                    }});

  phases.push_back({"D_step", [&](Laps& L) {
                      Tensor z = randn({N, cfg.z_dim}, rng);
                      Tensor img;
                      {
                        NoGradGuard ng;
                        img = G.synthesis(G.mapping(z, 1.0, true), NoiseMode::random, rng);
                      }
                      L.lap("G_nograd");
                      Tensor loss_fake = mean(softplus(D.forward(img)));
                      Tensor loss_real = mean(softplus(neg(D.forward(real))));
                      Tensor loss = add(loss_fake, loss_real);
                      L.lap("D_fwd_x2");
                      auto grads = autograd::grad({loss}, D_params, {}, false, true);
                      L.lap("backward");
                      apply(opt_D, D_params, grads);
                      L.lap("adam");
                    }});

  phases.push_back({"G_step", [&](Laps& L) {
                      Tensor z = randn({N, cfg.z_dim}, rng);
                      Tensor img = G.synthesis(G.mapping(z, 1.0, true), NoiseMode::random, rng);
                      L.lap("G_fwd");
                      Tensor loss = mean(softplus(neg(D.forward(img))));
                      L.lap("D_fwd");
                      auto grads = autograd::grad({loss}, G_params, {}, false, true);
                      L.lap("backward");
                      apply(opt_G, G_params, grads);
                      L.lap("adam");
                    }});

  phases.push_back({"R1_step", [&](Laps& L) {
                      Tensor x = real.detach().set_requires_grad(true);
                      Tensor logits = D.forward(x);
                      L.lap("D_fwd");
                      Tensor r1_grads;
                      {
                        NoWeightGradientsGuard nw;
                        r1_grads = autograd::grad({sum(logits)}, {x}, {}, true)[0];
                      }
                      L.lap("grad_x_create_graph");
                      Tensor r1_penalty = sum(square(r1_grads), {1, 2, 3});
                      Tensor loss = mul(mean(r1_penalty), cfg.gamma / 2 * (double)cfg.r1_interval);
                      auto grads = autograd::grad({loss}, D_params, {}, false, true);
                      L.lap("double_backward");
                      apply(opt_D, D_params, grads);
                      L.lap("adam");
                    }});

  phases.push_back({"PL_step", [&](Laps& L) {
                      const int64_t bs = std::max<int64_t>(N / cfg.pl_batch_shrink, 1);
                      Tensor z = randn({bs, cfg.z_dim}, rng);
                      Tensor ws = G.mapping(z, 1.0, true);
                      Tensor img = G.synthesis(ws, NoiseMode::random, rng);
                      L.lap("G_fwd");
                      Tensor noise =
                          mul(randn(img.shape(), rng), 1.0 / std::sqrt((double)(img.size(2) * img.size(3))));
                      Tensor pl_grads;
                      {
                        NoWeightGradientsGuard nw;
                        pl_grads = autograd::grad({sum(mul(img, noise))}, {ws}, {}, true)[0];
                      }
                      L.lap("grad_ws_create_graph");
                      Tensor pl_lengths = sqrt(mean(sum(square(pl_grads), {2}), {1}));
                      pl_mean += (mean(pl_lengths).item() - pl_mean) * cfg.pl_decay;
                      Tensor pl_penalty = square(add(pl_lengths, -pl_mean));
                      Tensor loss = mul(mean(pl_penalty), cfg.pl_weight * (double)cfg.pl_interval);
                      auto grads = autograd::grad({loss}, G_params, {}, false, true);
                      L.lap("double_backward");
                      apply(opt_G, G_params, grads);
                      L.lap("adam");
                    }});

  for (auto& [name, fn] : phases) {
    for (int i = 0; i < warmup; ++i) {
      Laps L;
      fn(L);
    }
    std::vector<double> total;
    std::map<std::string, std::vector<double>> laps;
    std::vector<std::string> order;
    for (int i = 0; i < reps; ++i) {
      Laps L;
      const auto a = Clock::now();
      L.last = a;
      fn(L);
      const auto b = Clock::now();
      total.push_back(std::chrono::duration<double, std::milli>(b - a).count());
      for (auto& [k, v] : L.laps) {
        if (!laps.count(k)) order.push_back(k);
        laps[k].push_back(v);
      }
    }
    std::printf("phase=%s impl=stylegrad ms=%.2f\n", name.c_str(), median(total));
    std::printf("# breakdown phase=%s impl=stylegrad", name.c_str());
    for (auto& k : order) std::printf(" %s=%.2f", k.c_str(), median(laps[k]));
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}
