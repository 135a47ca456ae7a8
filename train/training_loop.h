// The StyleGAN2 training loop (stylegan2-ada-pytorch's schedule, our engine):
//   per minibatch, phases Gmain, Greg (every pl_interval), Dmain, Dreg (every r1_interval);
//   non-saturating logistic loss; lazy R1 on reals and lazy path length, each scaled by its
//   interval; Adam with lr and betas adjusted for the lazy intervals (c = k / (k + 1));
//   style mixing; G EMA with a half-life in kimg and ramp-up; gradients through nan_to_num.
// That is --schedule stylegan2; --schedule notebook (auto for seed32) runs the seed notebook's
// loop instead (train/loss.h, docs/training.md "seed32 and the schedules").
#pragma once
#include <cstdint>
#include <string>

namespace sg::train {

struct TrainOptions {
  std::string data;  // dataset path (default: Debian's Fashion-MNIST)
  std::string outdir = "runs";
  std::string cfg = "small";
  // auto (notebook for seed32, else stylegan2), stylegan2 or notebook (train/loss.h Schedule).
  std::string schedule = "auto";
  std::string name;   // run name (default: <dataset>-<cfg>)
  int64_t batch = 0;  // 0: the config's default
  double gamma = -1;  // R1 weight; < 0: the config's default
  // Training hyperparameters over the config's (< 0: the config's; the architecture is the config's):
  double lr_g = -1, lr_d = -1;  // Adam learning rates of G and D
  double ema_kimg = -1;         // G_ema half-life in kimg (0: G_ema is a copy of G)
  double ema_rampup = -1;       // the half-life is at most this fraction of the images shown (0: no ramp-up)
  double lr_rampdown = -1;      // both learning rates fall linearly to 0 over this last fraction of --kimg (0: none)
  double pl_weight = -1;        // path-length weight (0: no path-length phase)
  double style_mixing = -1;     // style-mixing probability
  // Architecture over the config's (0: the config's), recorded in each snapshot's metadata:
  int64_t channel_base = 0, channel_max = 0;  // channels at resolution r: min(channel_base / r, channel_max)
  int64_t mapping_layers = 0;
  double mapping_lr_mul = -1;  // G's mapping-network learning-rate multiplier (<= 0: the config's)
  int64_t cmap_layers = -1;    // the conditional D's label-mapping depth (< 0: the config's)
  int64_t mbstd_group = 0;     // minibatch-stddev group size (D's forward only; must divide the batch)
  // Class-conditional G and D on the dataset's labels (stylegan2-ada's --cond; idx files with
  // their label files, CIFAR-10 batches); c_dim = the number of classes, in each snapshot.
  // 1 on (sg::Error without labels), 0 off, < 0 auto (stylegan2-train's default): with --resume
  // as the run being resumed was trained, else on when the dataset has labels and the config
  // and schedule can be conditional (not seed32 / notebook).
  int cond = 0;
  double kimg = 64;        // total length, thousands of real images shown to D (the main job: ~7.5 min on 2 cores)
  double tick_kimg = 0.5;  // progress + log record every tick
  int64_t snap = 4;        // ticks between snapshots / sample grids (0: only at the end)
  uint64_t seed = 0;
  bool mirror = false;
  std::string device = "cpu";
  // CUDA convolutions and matmuls: f32, tf32 or bf16 (sg::set_cuda_math); auto: tf32 on cuda, f32 on the CPU.
  std::string precision = "auto";
  std::string resume;           // a run directory or a network-snapshot file
  bool resume_changed = false;  // resume although --data, --seed or --mirror differ from the run's
  bool dry_run = false;
  int64_t resolution = 0;   // 0: 32, or 256 for paper256
  int64_t channels = 0;     // 0: from the dataset kind (idx: 1, otherwise 3)
  int threads = 0;          // 0: all cores
  bool quiet = false;       // no progress lines (tests)
  bool tensorboard = true;  // TensorBoard event files in the run directory (train/tensorboard.h)
  // Metrics (train/metrics.h, docs/metrics.md) every `metrics` ticks and at the end, in log.jsonl:
  // 0 off; < 0 every kDefaultMetricsTicks when the dataset has labels (else off, with a note).
  int64_t metrics = 0;
  int64_t metrics_num = 5000;      // samples per evaluation
  std::string classifier;          // the metrics' classifier file (default: in outdir, by dataset)
  int64_t test_nan_at_batch = -1;  // tests: a G weight becomes NaN before this minibatch (the guard's test)
  // --cuda-graph (--device cuda, stylegan2 schedule, unconditional): each group of phases
  // stepped together runs eagerly once, then is captured into a CUDA graph (engine/cuda_graph.h)
  // and replayed at every later step: the reals are copied into one device buffer, the loss and
  // its gradients run in the graph, the Adam steps and the G EMA eagerly after it. The
  // numbers are those of a run without it.
  bool cuda_graph = false;
};

// stylegan2-train's --metrics default, in ticks (docs/metrics.md: its cost on the main job).
inline constexpr int64_t kDefaultMetricsTicks = 20;

// The factor on both learning rates at cur_nimg of total_nimg images with --lr-rampdown f: 1,
// then falling linearly to 0 over the last f * total_nimg images (min(1, (total - cur) /
// (f * total))); 1 when f <= 0.
double lr_rampdown_scale(int64_t cur_nimg, int64_t total_nimg, double fraction);

// Returns the process exit code. Throws sg::Error on bad options or data.
int run_training(const TrainOptions& opt, std::string* run_dir_out = nullptr);

}  // namespace sg::train
