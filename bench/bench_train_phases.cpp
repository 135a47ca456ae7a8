// Benchmark of the five phases of one StyleGAN2 training step, f32. Default: the CPU, config
// `seed32` (the seed-002 notebook's 32x32 model: fmap 96, z 128, w 192), batch 32, random reals.
//
// The twin of bench/torch_train_phases.py (the same phases, same protocol, same output
// format; for seed32 the notebook's PyTorch model, for paper256 stylegan2-ada's networks);
// bench/run_train_bench.sh runs both on the CPU and prints the ratios, the GPU run kit's
// run.sh (scripts/gpu-kit-run.sh) does the same on a GPU.
//
// Each phase is written as train/training_loop.cpp does it, without style mixing (seed32
// has style_mixing_prob 0, and the notebook has none):
//   G_forward  mapping + synthesis under NoGradGuard
//   D_step     z -> G under no-grad -> D(fake), D(real); softplus(D(fake)) + softplus(-D(real))
//              (means); grads wrt D params; Adam step through nan_to_num   (Dmain)
//   G_step     G(z) -> D -> mean softplus(-logits); grads wrt G params; Adam step   (Gmain)
//   R1_step    D(reals requiring grad); grad of sum(logits) wrt reals with create_graph
//              (under NoWeightGradientsGuard); penalty sum of squares; grads wrt D params;
//              Adam step                                                   (Dreg)
//   PL_step    G on batch / pl_batch_shrink (16 for batch 32); pl_noise; grad of
//              sum(img * noise) wrt ws with create_graph (NoWeightGradientsGuard); pl lengths,
//              penalty; grads wrt G params; Adam step                      (Greg)
// Adam: sg::Adam, lr 2e-4, betas (0, 0.99) (the notebook's; the rate does not change the cost).
// Protocol: `warmup` untimed runs, then the median of `reps` timed runs (steady_clock).
// Every phase also records laps at its sub-steps (forward, inner grad, outer grad, Adam),
// printed as `# breakdown` lines: the median of each lap over the timed reps.
// On CUDA every lap (and so every phase) ends with cuda_synchronize(), and warmup is 2.
// Threads: OMP_NUM_THREADS, and SG_THREAD_WAIT (both printed; kernels/cpu/parallel.h).
//
// Usage: build/bench_train_phases [--quick] [--device cpu|cuda] [--cfg NAME] [--batch N]
//                                 [--modconv grouped|act] [--precision f32|tf32|bf16|bf16-mixed]
//   --device   cpu (default) or cuda
//   --cfg      a model config (models/config.cpp): seed32 (default), paper256, small, stylegan1
//   --batch    minibatch size (default 32)
//   --modconv  grouped: the fused grouped conv (the notebook's, stylegan2-ada's fused_modconv);
//              act: the modulate-activations path stylegan2-ada trains with; default: the
//              config's (Config::fused_modconv)
//   --precision  CUDA convolutions and matmuls (sg::set_cuda_math): f32 (default), tf32, bf16,
//              bf16-mixed (models::set_bf16_mixed: bf16 in the highest resolutions' blocks, paper256
//              and small only)
// Output: one line per phase,  phase=<name> impl=stylegrad ms=<median ms>

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
#include "engine/device.h"
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

// Sub-step laps of one run of a phase: lap("name") closes the interval since the last lap
// (after waiting for the GPU when `sync` is set).
struct Laps {
  bool sync = false;
  Clock::time_point last = Clock::now();
  std::vector<std::pair<std::string, double>> laps;
  void lap(const char* name) {
    if (sync) cuda_synchronize();
    const auto now = Clock::now();
    laps.push_back({name, std::chrono::duration<double, std::milli>(now - last).count()});
    last = now;
  }
};

// As train/loss.cpp's apply_phase_grads(): .grad = grad, a step that reads it through
// nan_to_num (AdamConfig::grad_nan_to_num, as the trainer's lazy_adam), zero_grad.
void apply(Adam& opt, const std::vector<Tensor>& params, const std::vector<Tensor>& grads) {
  NoGradGuard ng;
  for (size_t i = 0; i < params.size(); ++i) params[i].set_grad(grads[i]);
  opt.step();
  opt.zero_grad();
}

}  // namespace

int usage(const char* prog, FILE* f) {
  std::fprintf(f,
               "usage: %s [--quick] [--device cpu|cuda] [--cfg NAME] [--batch N] [--modconv grouped|act] "
               "[--precision f32|tf32|bf16|bf16-mixed] [--only PHASE[,PHASE...]] [--reps N]\n"
               "  --only: run only these phases (G_forward, D_step, G_step, R1_step, PL_step), e.g. under perf\n",
               prog);
  return f == stdout ? 0 : 2;
}

int main(int argc, char** argv) {
  bool quick = false;
  std::string device = "cpu", cfg_name = "seed32", modconv, precision = "f32", only;
  int64_t N = 32, reps_flag = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--quick") {
      quick = true;
    } else if (a == "--help" || a == "-h") {
      return usage(argv[0], stdout);
    } else if (a == "--device" && has_value) {
      device = argv[++i];
    } else if (a == "--cfg" && has_value) {
      cfg_name = argv[++i];
    } else if (a == "--batch" && has_value) {
      N = std::atoll(argv[++i]);
    } else if (a == "--modconv" && has_value) {
      modconv = argv[++i];
    } else if (a == "--precision" && has_value) {
      precision = argv[++i];
    } else if (a == "--only" && has_value) {
      only = "," + std::string(argv[++i]) + ",";
    } else if (a == "--reps" && has_value) {
      reps_flag = std::atoll(argv[++i]);
    } else {
      return usage(argv[0], stderr);
    }
  }
  const char* bad = device != "cpu" && device != "cuda"                            ? "--device: cpu or cuda"
                    : N < 1                                                        ? "--batch: at least 1"
                    : reps_flag < 0                                                ? "--reps: at least 1"
                    : !modconv.empty() && modconv != "grouped" && modconv != "act" ? "--modconv: grouped or act"
                    : precision != "f32" && precision != "tf32" && precision != "bf16" && precision != "bf16-mixed"
                        ? "--precision: f32, tf32, bf16 or bf16-mixed"
                    : precision != "f32" && device != "cuda"
                        ? "--precision tf32 / bf16 / bf16-mixed: with --device cuda"
                        : nullptr;
  if (bad) {
    std::fprintf(stderr, "bench_train_phases: %s\n", bad);
    return 2;
  }
  const bool cuda = device == "cuda";
  if (cuda && !cuda_available()) {
    std::fprintf(stderr, "bench_train_phases: --device cuda, but no CUDA device (%s)\n", cuda_device_name().c_str());
    return 1;
  }
  const Device dev = cuda ? Device::cuda() : Device::cpu();
  const bool mixed = precision == "bf16-mixed";  // f32, and bf16 in the highest resolutions' blocks
  if (cuda) set_cuda_math(mixed ? CudaMath::f32 : parse_cuda_math(precision, "bench_train_phases --precision"));
  const int warmup = cuda ? 2 : 1, reps = reps_flag > 0 ? (int)reps_flag : quick ? 3 : 5;
  models::Config cfg;
  try {
    cfg = models::make_config(cfg_name, 0, 3);
    if (mixed) models::set_bf16_mixed(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_phases: %s\n", e.what());
    return 2;
  }
  if (!modconv.empty()) cfg.fused_modconv = modconv == "grouped";
  Rng init(0);
  models::Generator G(cfg, init);
  models::Discriminator D(cfg, init);
  if (cuda) {  // before the optimizers: to() makes new leaves
    G.to(dev);
    D.to(dev);
  }
  AdamConfig ac;
  ac.lr = 2e-4, ac.beta1 = 0.0, ac.beta2 = 0.99, ac.grad_nan_to_num = true;
  Adam opt_G(G.parameters().params, ac);
  Adam opt_D(D.parameters().params, ac);
  const std::vector<Tensor> G_params = G.parameters().tensors(), D_params = D.parameters().tensors();
  std::printf(
      "# stylegrad bench_train_phases: cfg %s %lldx%lldx%lld, batch %lld, %s, fused_modconv=%d, "
      "G %lld params, D %lld params, threads=%d (SG_THREAD_WAIT %s), warmup=%d, reps=%d (median), device %s\n",
      cfg.name.c_str(), (long long)cfg.resolution, (long long)cfg.resolution, (long long)cfg.img_channels, (long long)N,
      precision.c_str(), (int)cfg.fused_modconv, (long long)G.parameters().count(), (long long)D.parameters().count(),
      cpu_threads(), cpu_thread_wait().c_str(), warmup, reps,
      cuda ? ("cuda \"" + cuda_device_name() + "\"").c_str() : "cpu");
  std::fflush(stdout);

  Rng rng(1234);
  Tensor real;
  {
    NoGradGuard ng;
    real = add(mul(rand({N, cfg.img_channels, cfg.resolution, cfg.resolution}, rng, DType::f32, dev), 2.0),
               -1.0);  // U[-1, 1)
  }
  double pl_mean = 0.0;

  using Phase = std::function<void(Laps&)>;
  std::vector<std::pair<std::string, Phase>> phases;

  phases.push_back({"G_forward", [&](Laps& L) {
                      NoGradGuard ng;
                      Tensor z = randn({N, cfg.z_dim}, rng, DType::f32, dev);
                      Tensor ws = G.mapping(z, 1.0, false);
                      L.lap("mapping");
                      Tensor img = G.synthesis(ws, NoiseMode::random, rng);
                      L.lap("synthesis");
                    }});

  phases.push_back({"D_step", [&](Laps& L) {
                      Tensor z = randn({N, cfg.z_dim}, rng, DType::f32, dev);
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
                      Tensor z = randn({N, cfg.z_dim}, rng, DType::f32, dev);
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
                      Tensor z = randn({bs, cfg.z_dim}, rng, DType::f32, dev);
                      Tensor ws = G.mapping(z, 1.0, true);
                      Tensor img = G.synthesis(ws, NoiseMode::random, rng);
                      L.lap("G_fwd");
                      const double noise_gain = 1.0 / std::sqrt((double)(img.size(2) * img.size(3)));
                      Tensor noise = mul(randn(img.shape(), rng, DType::f32, dev), noise_gain);
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

  for (size_t i = 1; i + 1 < only.size();) {  // every name in --only must be a phase
    const size_t j = only.find(',', i);
    const std::string want = only.substr(i, j - i);
    bool known = false;
    for (const auto& ph : phases) known = known || ph.first == want;
    if (!known) {
      std::fprintf(stderr, "bench_train_phases: --only: no phase '%s' (G_forward, D_step, G_step, R1_step, PL_step)\n",
                   want.c_str());
      return 2;
    }
    i = j + 1;
  }
  for (auto& [name, fn] : phases) {
    if (!only.empty() && only.find("," + name + ",") == std::string::npos) continue;
    for (int i = 0; i < warmup; ++i) {
      Laps L;
      L.sync = cuda;
      fn(L);
    }
    std::vector<double> total;
    std::map<std::string, std::vector<double>> laps;
    std::vector<std::string> order;
    for (int i = 0; i < reps; ++i) {
      Laps L;
      L.sync = cuda;
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
