#include "train/training_loop.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "engine/cuda_graph.h"
#include "engine/device.h"
#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "train/batch_loader.h"
#include "train/classifier.h"
#include "train/dataset.h"
#include "train/image_io.h"
#include "train/loss.h"
#include "train/metrics.h"
#include "train/run_dir.h"
#include "train/snapshot.h"
#include "train/tensorboard.h"

namespace sg::train {
namespace fs = std::filesystem;
using models::NoiseMode;

namespace {

// SIGINT (Ctrl-C), SIGTERM (docker stop, Slurm, systemd) and SIGHUP (a closed terminal) all
// ask for the same clean stop: finish the minibatch, write a snapshot, exit 0.
std::atomic<int> g_interrupted{0};  // the signal number, 0: none
void on_stop_signal(int sig) { g_interrupted = sig; }
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};

const char* signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
}

// Installs on_stop_signal for kStopSignals; the destructor puts the previous handlers back.
struct StopSignals {
  struct sigaction old[3];
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; ++i) sigaction(kStopSignals[i], &sa, &old[i]);
  }
  ~StopSignals() {
    for (int i = 0; i < 3; ++i) sigaction(kStopSignals[i], &old[i], nullptr);
  }
};

double rss_gb() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, rss = 0;
  f >> pages >> rss;
  return (double)rss * (double)sysconf(_SC_PAGESIZE) / 1e9;
}

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--:--";
  long t = (long)s;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

// The resolved options, as written to options.json and printed by --dry-run.
std::string options_json(const TrainOptions& o, const models::Config& c, const data::Dataset& ds, int64_t batch,
                         double gamma, Schedule schedule) {
  std::ostringstream s;
  auto q = [](const std::string& v) { return "\"" + data::json_escape(v) + "\""; };
  s << "{\n"
    << "  \"data\": " << q(o.data) << ",\n  \"dataset\": " << q(ds.description())
    << ",\n  \"dataset_size\": " << ds.size() << ",\n  \"outdir\": " << q(o.outdir) << ",\n  \"cfg\": " << q(c.name)
    << ",\n  \"resolution\": " << c.resolution << ",\n  \"img_channels\": " << c.img_channels
    << ",\n  \"cond\": " << (c.c_dim > 0 ? "true" : "false") << ",\n  \"c_dim\": " << c.c_dim
    << ",\n  \"batch\": " << batch << ",\n  \"gamma\": " << gamma << ",\n  \"kimg\": " << o.kimg
    << ",\n  \"tick_kimg\": " << o.tick_kimg << ",\n  \"snap\": " << o.snap << ",\n  \"seed\": " << o.seed
    << ",\n  \"mirror\": " << (o.mirror ? "true" : "false") << ",\n  \"device\": " << q(o.device)
    << ",\n  \"precision\": " << q(o.precision) << ",\n  \"bf16_res\": " << c.bf16_res
    << ",\n  \"resume\": " << q(o.resume) << ",\n  \"threads\": " << cpu_threads()
    << ",\n  \"thread_wait\": " << q(cpu_thread_wait()) << ",\n  \"metrics\": " << o.metrics
    << ",\n  \"metrics_num\": " << o.metrics_num << ",\n  \"G\": {\"z_dim\": " << c.z_dim << ", \"w_dim\": " << c.w_dim
    << ", \"mapping_layers\": " << c.mapping_layers << ", \"mapping_lr_mul\": " << c.mapping_lr_mul
    << ", \"channel_base\": " << c.channel_base << ", \"channel_max\": " << c.channel_max
    << ", \"conv_clamp\": " << c.conv_clamp << "}"
    << ",\n  \"D\": {\"mbstd_group\": " << c.mbstd_group << ", \"mbstd_channels\": " << c.mbstd_channels
    << ", \"cmap_layers\": " << c.cmap_layers << "}"
    << ",\n  \"loss\": {\"r1_interval\": " << c.r1_interval << ", \"pl_interval\": " << c.pl_interval
    << ", \"pl_weight\": " << c.pl_weight << ", \"pl_decay\": " << c.pl_decay
    << ", \"pl_batch_shrink\": " << c.pl_batch_shrink << ", \"style_mixing_prob\": " << c.style_mixing_prob << "}"
    << ",\n  \"opt\": {\"lr_g\": " << c.lr_g << ", \"lr_d\": " << c.lr_d << ", \"betas\": [" << c.beta1 << ", "
    << c.beta2 << "], \"eps\": 1e-8}"
    << ",\n  \"schedule\": " << q(schedule_name(schedule)) << ",\n  \"ema_kimg\": " << c.ema_kimg
    << ",\n  \"ema_rampup\": " << c.ema_rampup << ",\n  \"lr_rampdown\": " << c.lr_rampdown << "\n}\n";
  return s.str();
}

// Fixed-seed grid of G_ema samples (its own RNG: never touches the training stream); returns
// the grid written. A conditional G_ema draws the classes in order, count / c_dim images each
// (in reading order: class 0 first).
data::Image write_fakes(const std::string& path, models::Generator& G_ema, int64_t count, int64_t batch) {
  NoGradGuard ng;
  Rng zr(123456789);
  const auto& c = G_ema.config();
  Tensor z = randn({count, c.z_dim}, zr, DType::f32, G_ema.device());
  Tensor labels;
  if (c.c_dim > 0) {
    std::vector<int64_t> classes((size_t)count);
    for (int64_t i = 0; i < count; ++i) classes[(size_t)i] = i * c.c_dim / count;
    labels = data::one_hot(classes, c.c_dim).to(G_ema.device());
  }
  std::vector<Tensor> parts;
  Rng nr(1);
  for (int64_t i = 0; i < count; i += batch) {
    const int64_t end = std::min(count, i + batch);
    Tensor zi = slice(z, 0, i, end);
    Tensor ci = labels.defined() ? slice(labels, 0, i, end) : Tensor();
    parts.push_back(G_ema.synthesis(G_ema.mapping(zi, ci, 1.0, false), NoiseMode::constant, nr));
  }
  Tensor imgs = cat(parts, 0).cpu();
  data::Image grid = data::make_grid(imgs, (int64_t)std::ceil(std::sqrt((double)count)));
  data::write_png(path, grid.pixels.data(), grid.w, grid.h, grid.channels);
  return grid;
}

// Whether a network snapshot and the training state beside it were written together: the
// snapshot records the image count it was taken at (older ones: the kimg), the state its own.
// Returns "" when they match, else what is wrong.
std::string pair_problem(const std::string& snap) {
  const std::string state = state_path_for(snap);
  if (!fs::exists(state)) return "it has no training state (" + fs::path(state).filename().string() + ")";
  try {
    const int64_t state_nimg = parse_training_state_metadata(io::load_safetensors_metadata(state), state).cur_nimg;
    const int64_t net_nimg = snapshot_nimg(io::load_safetensors_metadata(snap), snap);
    if (net_nimg != state_nimg)
      return str("its training state is from another step (the state says ", state_nimg, " images, the network ",
                 net_nimg, " images)");
  } catch (const std::exception& e) {
    return std::string("it cannot be read: ") + e.what();
  }
  return "";
}

// The snapshot to resume from: a complete pair (network + matching state). Given a run
// directory, the newest complete one (newer incomplete ones are named on stderr); given a
// file, that file, which must be complete — else an error naming what is wrong and the
// newest complete snapshot beside it.
std::string find_snapshot(const std::string& resume) {
  const bool is_file = fs::is_regular_file(resume);
  SG_CHECK(is_file || fs::is_directory(resume), "stylegan2-train", "--resume: '", resume,
           "' is neither a run directory nor a snapshot file");
  const fs::path dir = is_file ? fs::path(resume).parent_path() : fs::path(resume);
  // Newest first, by the image count each network records (unreadable ones last: they are
  // reported as skipped below when no complete snapshot comes before them).
  std::vector<std::pair<int64_t, std::string>> by_nimg;
  for (auto& e : fs::directory_iterator(dir.empty() ? fs::path(".") : dir)) {
    std::string n = e.path().filename().string();
    if (n.rfind("network-snapshot-", 0) != 0 || n.size() <= 12 || n.substr(n.size() - 12) != ".safetensors") continue;
    int64_t nimg = -1;
    try {
      nimg = snapshot_nimg(io::load_safetensors_metadata(e.path().string()), e.path().string());
    } catch (const std::exception&) {
    }
    by_nimg.push_back({nimg, e.path().string()});
  }
  std::sort(by_nimg.rbegin(), by_nimg.rend());
  std::vector<std::string> snaps;
  for (auto& [nimg, path] : by_nimg) snaps.push_back(path);
  std::string complete, skipped;
  for (auto& sn : snaps) {
    if (is_file && fs::equivalent(sn, resume)) continue;
    const std::string why = pair_problem(sn);
    if (why.empty()) {
      complete = sn;
      break;
    }
    skipped += str("\n  ", sn, ": ", why);
  }
  if (is_file) {
    const std::string why = pair_problem(resume);
    SG_CHECK(why.empty(), "stylegan2-train", "--resume: '", resume, "' cannot be resumed exactly: ", why, "; ",
             complete.empty() ? std::string("there is no complete snapshot beside it")
                              : "the newest complete snapshot beside it is '" + complete + "'");
    return resume;
  }
  SG_CHECK(!snaps.empty(), "stylegan2-train", "--resume: no network-snapshot-*.safetensors in '", resume, "'");
  SG_CHECK(!complete.empty(), "stylegan2-train", "--resume: '", resume,
           "' holds no complete snapshot (a network with the training state of the same step):", skipped);
  if (!skipped.empty())
    std::fprintf(stderr, "stylegan2-train: resuming from %s; newer snapshots are incomplete and skipped:%s\n",
                 complete.c_str(), skipped.c_str());
  return complete;
}

// Temporary files of an interrupted write (kill -9 during a snapshot or a sample grid) left
// in `dir`: every write goes through a .tmp file renamed into place, so these are never data.
void remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  auto ends_with = [](const std::string& n, const std::string& end) {
    return n.size() > end.size() && n.compare(n.size() - end.size(), end.size(), end) == 0;
  };
  for (auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (ends_with(n, ".safetensors.tmp") || ends_with(n, ".png.tmp") || ends_with(n, ".json.tmp")) {
      std::fprintf(stderr, "stylegan2-train: removing %s, left by an interrupted write\n", e.path().c_str());
      fs::remove(e.path(), ec);
    }
  }
}

// Everything a run is made of once the options are resolved: the data, the networks, the
// loss with its phases, the optimizers, the counters and the streams that --resume restores.
class Trainer {
 public:
  explicit Trainer(const TrainOptions& opt);
  // --dry-run's output and options.json.
  const std::string& options() const { return json_; }
  // Restores a snapshot and its training state; false when it is already at --kimg.
  bool resume();
  // The run directory, options.json, log.jsonl, reals.png and fakes_init.png.
  std::string start_run();
  bool finished() const { return cur_nimg_ >= total_nimg_; }
  // One minibatch: each phase due at this batch_idx, then the G EMA.
  void step();
  // After a step: progress line, log record and (every --snap ticks, and at the end) a
  // snapshot with its sample grid, when a tick is due.
  void maybe_tick();
  // Writes a snapshot + training state at the current image count (checked finite first).
  void save_snapshot();
  double kimg() const { return cur_nimg_ / 1000.0; }
  // Closes the TensorBoard events file (every record is already flushed when written).
  void close_tensorboard() {
    if (tb_) tb_->close();
  }
  const std::string& run_dir() const { return run_dir_; }

 private:
  void update_ema(int64_t n);
  // One optimizer step of a group of phases (steps_at); --cuda-graph: through its graph.
  void step_group(const std::vector<const Phase*>& group, const Tensor& real, const Tensor& real_c);
  void start_metrics();
  [[noreturn]] void refuse_non_finite(const std::string& what) const;

  // --precision holds for this run only: the process's CUDA math is restored when the trainer
  // goes away (declared first, so it is saved before dev_ sets it and restored last).
  struct CudaMathScope {
    CudaMath saved = cuda_math();
    CudaMathScope() = default;
    CudaMathScope(const CudaMathScope&) = delete;
    CudaMathScope& operator=(const CudaMathScope&) = delete;
    ~CudaMathScope() { set_cuda_math(saved); }
  };
  CudaMathScope math_scope_;
  TrainOptions opt_;
  Device dev_;
  Schedule schedule_;
  std::vector<uint8_t> labels_;  // --cond: the training images' classes (set while cfg_ is resolved)
  std::string resume_snap_;      // --resume's snapshot, when cfg_ needed it (auto --cond); resume() reuses it
  models::Config cfg_;
  std::unique_ptr<data::Dataset> ds_;
  int64_t batch_ = 0;
  double gamma_ = 0;
  std::string json_;
  Networks nets_;
  Adam opt_G_, opt_D_;
  double lr_G_ = 0, lr_D_ = 0;  // their learning rates before the ramp-down (lr_rampdown_scale)
  StyleGAN2Loss loss_;
  std::vector<Phase> phases_;
  Rng rng_;
  data::BatchLoader loader_;
  int64_t cur_nimg_ = 0, batch_idx_ = 0, cur_tick_ = 0, total_nimg_ = 0;
  std::string run_dir_;
  std::unique_ptr<data::JsonLog> log_;
  // TensorBoard (--tensorboard): the tick's scalars and the sample grids, step = images shown.
  std::unique_ptr<tensorboard::EventWriter> tb_;
  // --metrics: the evaluator (classifier, test-split statistics), made by start_metrics().
  std::unique_ptr<metrics::Evaluator> metrics_;
  int64_t metrics_every_ = 0;
  int64_t grid_count_ = 0;
  // Tick bookkeeping.
  int64_t tick_start_nimg_ = 0;
  std::chrono::steady_clock::time_point t_start_, t_tick_;
  TickStats stats_;
  // The non-finite guard's memory: the last snapshot written (or resumed from).
  std::string last_snapshot_ = "none";
  int64_t last_saved_nimg_ = -1;
  // --cuda-graph: the reals' device buffer every graph reads, and per group (by its first
  // phase) its graph, whether it has run eagerly yet, and the graph's outputs: the phases'
  // statistics of one step and the gradients.
  struct GroupGraph {
    CudaGraph graph;
    bool warm = false;
    TickStats stats;
    std::vector<Tensor> grads;
  };
  Tensor real_buf_;
  std::map<const Phase*, GroupGraph> graphs_;
};

// Resolution and channels from the options (defaults: by config and by dataset kind).
models::Config resolve_config(const TrainOptions& opt, Schedule schedule) {
  const int64_t res = opt.resolution > 0 ? opt.resolution : (opt.cfg == "paper256" ? 256 : 32);
  int64_t channels = opt.channels;
  if (channels == 0) {
    std::string lower = opt.data;
    for (auto& ch : lower) ch = (char)std::tolower(ch);
    channels = (lower.find("idx") != std::string::npos || lower.find("mnist") != std::string::npos) ? 1 : 3;
  }
  models::Config c = models::make_config(opt.cfg, res, channels);
  apply_schedule(c, schedule);
  if (opt.lr_g >= 0) c.lr_g = opt.lr_g;
  if (opt.lr_d >= 0) c.lr_d = opt.lr_d;
  if (opt.ema_kimg >= 0) c.ema_kimg = opt.ema_kimg;
  if (opt.ema_rampup >= 0) c.ema_rampup = opt.ema_rampup;
  if (opt.lr_rampdown >= 0) c.lr_rampdown = opt.lr_rampdown;
  if (opt.pl_weight >= 0) c.pl_weight = opt.pl_weight;
  if (opt.style_mixing >= 0) c.style_mixing_prob = opt.style_mixing;
  if (opt.channel_base > 0) c.channel_base = opt.channel_base;
  if (opt.channel_max > 0) c.channel_max = opt.channel_max;
  if (opt.mapping_layers > 0) c.mapping_layers = opt.mapping_layers;
  if (opt.mapping_lr_mul > 0) c.mapping_lr_mul = opt.mapping_lr_mul;
  if (opt.cmap_layers >= 0) c.cmap_layers = opt.cmap_layers;
  if (opt.mbstd_group > 0) c.mbstd_group = opt.mbstd_group;
  if (opt.precision == "bf16-mixed") models::set_bf16_mixed(c);  // the highest resolutions in bf16
  return c;
}

// The process's CUDA math for a resolved --precision (bf16-mixed: f32, its bf16 blocks are
// set per block by models::set_bf16_mixed); sg::Error on anything but f32, tf32, bf16, bf16-mixed.
CudaMath process_math(const std::string& precision) {
  if (precision == "bf16-mixed") return CudaMath::f32;
  SG_CHECK(precision == "f32" || precision == "tf32" || precision == "bf16", "stylegan2-train",
           "--precision: expected auto, f32, tf32, bf16 or bf16-mixed, got '", precision, "'");
  return parse_cuda_math(precision, "stylegan2-train --precision");
}

TrainOptions checked(TrainOptions opt) {
  if (opt.data.empty()) opt.data = data::kDefaultDatasetPath;
  SG_CHECK(opt.device == "cpu" || opt.device == "cuda", "stylegan2-train", "--device must be cpu or cuda, got '",
           opt.device, "'");
  SG_CHECK(opt.kimg > 0 && opt.tick_kimg > 0, "stylegan2-train", "--kimg and --tick must be > 0");
  // TF32 by default on CUDA, as PyTorch allows it for cuDNN convolutions; exactness tests ask for f32.
  if (opt.precision == "auto") opt.precision = opt.device == "cuda" ? "tf32" : "f32";
  process_math(opt.precision);  // throws on anything else
  SG_CHECK(opt.precision == "f32" || opt.device == "cuda", "stylegan2-train", "--precision ", opt.precision,
           " is for --device cuda (the CPU computes in f32)");
  SG_CHECK(!opt.cuda_graph || opt.device == "cuda", "stylegan2-train", "--cuda-graph is for --device cuda");
  return opt;
}

Trainer::Trainer(const TrainOptions& opt)
    : opt_(checked(opt)),
      dev_([&] {
        const Device d = opt_.device == "cuda" ? Device::cuda() : Device::cpu();
        if (d.type == DeviceType::cuda) {
          (void)zeros({1}, DType::f32, d);  // fails early, clearly, without CUDA
          set_cuda_math(process_math(opt_.precision));
        }
        return d;
      }()),
      schedule_(resolve_schedule(opt_.schedule, opt_.cfg)),
      cfg_([&] {
        models::Config c = resolve_config(opt_, schedule_);
        int cond = opt_.cond;
        // auto follows the run being resumed
        if (!opt_.resume.empty() && (cond < 0 || opt_.cmap_layers < 0 || opt_.mapping_lr_mul <= 0)) {
          resume_snap_ = find_snapshot(opt_.resume);
          const models::Config sc = snapshot_config(io::load_safetensors_metadata(resume_snap_), resume_snap_);
          if (cond < 0) cond = sc.c_dim > 0 ? 1 : 0;
          if (opt_.cmap_layers < 0) c.cmap_layers = sc.cmap_layers;
          if (opt_.mapping_lr_mul <= 0) c.mapping_lr_mul = sc.mapping_lr_mul;
        }
        if (cond == 0) return c;
        const bool can = schedule_ == Schedule::stylegan2 && c.arch != models::Arch::seed32;
        if (cond > 0) {
          SG_CHECK(schedule_ == Schedule::stylegan2, "stylegan2-train", "--cond: the notebook schedule",
                   opt_.schedule == "auto" ? " (auto for " + opt_.cfg + ")" : std::string(),
                   " is unconditional; use --schedule stylegan2 with a stylegan2 or stylegan1 config");
          SG_CHECK(
              can, "stylegan2-train",
              "--cond: the seed32 architecture (the notebook's) is unconditional; use small, paper256 or stylegan1");
        }
        if (!can) return c;  // auto: unconditional
        metrics::LabeledData d;
        try {
          d = metrics::open_labeled(opt_.data, c.resolution, c.img_channels);
        } catch (const Error& e) {
          if (cond > 0) throw Error(str("stylegan2-train: --cond trains on the dataset's labels: ", e.what()));
          if (!opt_.quiet) std::printf("stylegan2-train: unconditional (no labels for --cond): %s\n", e.what());
          return c;
        }
        labels_ = std::move(d.train.labels);
        c.c_dim = d.num_classes;
        return c;
      }()),
      // The data before anything is built: an empty dataset stops us before any training.
      ds_(data::open_dataset(opt_.data, cfg_.resolution, cfg_.img_channels)),
      batch_(opt_.batch > 0 ? opt_.batch : cfg_.batch),
      gamma_(opt_.gamma >= 0 ? opt_.gamma : cfg_.gamma),
      json_([&] {
        SG_CHECK(batch_ >= 1, "stylegan2-train", "--batch must be >= 1");
        SG_CHECK(labels_.empty() || (int64_t)labels_.size() == ds_->size(), "stylegan2-train",
                 "--cond: ", ds_->description(), " has ", ds_->size(), " images but ", labels_.size(), " labels");
        SG_CHECK(batch_ % std::min<int64_t>(cfg_.mbstd_group, batch_) == 0, "stylegan2-train", "--batch ", batch_,
                 " must be divisible by the minibatch-stddev group size ", cfg_.mbstd_group);
        return options_json(opt_, cfg_, *ds_, batch_, gamma_, schedule_);
      }()),
      nets_([&] {
        Networks n = make_networks(cfg_, opt_.seed);
        if (dev_ != Device::cpu()) {  // before the optimizers take the parameters
          n.G->to(dev_);
          n.D->to(dev_);
          n.G_ema->to(dev_);
        }
        return n;
      }()),
      // The notebook's Adam has no lazy-regularization correction (interval 0: c = 1).
      opt_G_(nets_.G->parameters().params,
             lazy_adam(cfg_.lr_g, cfg_.beta1, cfg_.beta2, schedule_ == Schedule::notebook ? 0 : cfg_.pl_interval)),
      opt_D_(nets_.D->parameters().params,
             lazy_adam(cfg_.lr_d, cfg_.beta1, cfg_.beta2, schedule_ == Schedule::notebook ? 0 : cfg_.r1_interval)),
      loss_(*nets_.G, *nets_.D, cfg_, gamma_, schedule_),
      phases_(loss_.phases(opt_G_, opt_D_)),
      rng_(opt_.seed * 2654435761ull + 1),
      loader_(*ds_, batch_, opt_.seed, opt_.mirror, 2, labels_, cfg_.c_dim),
      total_nimg_((int64_t)std::llround(opt_.kimg * 1000)),
      grid_count_(cfg_.resolution <= 64 ? 64 : 16) {
  if (cfg_.c_dim > 0) loss_.set_label_pool(labels_);
  lr_G_ = opt_G_.config().lr, lr_D_ = opt_D_.config().lr;
  if (opt_.cuda_graph) {
    SG_CHECK(schedule_ == Schedule::stylegan2 && cfg_.c_dim == 0, "stylegan2-train",
             "--cuda-graph is for the stylegan2 schedule of an unconditional network (the notebook's path-length "
             "mean and the labels' sampling are host work inside the step); this run is ",
             schedule_name(schedule_), cfg_.c_dim > 0 ? ", conditional" : "");
    loss_.set_graph_safe(true);
  }
}

bool Trainer::resume() {
  const std::string snap = resume_snap_.empty() ? find_snapshot(opt_.resume) : resume_snap_;
  remove_stale_temporaries(fs::path(snap).parent_path());
  std::map<std::string, std::string> meta;
  auto list = io::load_safetensors(snap, &meta);
  std::map<std::string, Tensor> byname(list.begin(), list.end());
  const models::Config sc = snapshot_config(meta, snap);
  SG_CHECK(sc.name == cfg_.name && sc.resolution == cfg_.resolution && sc.img_channels == cfg_.img_channels,
           "stylegan2-train", "--resume: '", snap, "' is a ", sc.name, " ", sc.resolution, "px ", sc.img_channels,
           "-channel network, but this run is ", cfg_.name, " ", cfg_.resolution, "px ", cfg_.img_channels, "-channel");
  SG_CHECK(sc.c_dim == cfg_.c_dim, "stylegan2-train", "--resume: '", snap, "' is ",
           sc.c_dim > 0 ? str("class-conditional (c_dim ", sc.c_dim, ")") : std::string("unconditional"),
           ", this run is ", cfg_.c_dim > 0 ? str("conditional (--cond, c_dim ", cfg_.c_dim, ")") : "unconditional",
           "; resume with ", sc.c_dim > 0 ? "--cond" : "--cond=0");
  SG_CHECK(sc.channel_base == cfg_.channel_base && sc.channel_max == cfg_.channel_max &&
               sc.mapping_layers == cfg_.mapping_layers && sc.mapping_lr_mul == cfg_.mapping_lr_mul &&
               (cfg_.c_dim == 0 || sc.cmap_layers == cfg_.cmap_layers),
           "stylegan2-train", "--resume: '", snap, "' has --cbase ", sc.channel_base, " --cmax ", sc.channel_max,
           " --map ", sc.mapping_layers, " --map-lr ", sc.mapping_lr_mul,
           cfg_.c_dim > 0 ? str(" --dmap ", sc.cmap_layers) : std::string(), ", this run has --cbase ",
           cfg_.channel_base, " --cmax ", cfg_.channel_max, " --map ", cfg_.mapping_layers, " --map-lr ",
           cfg_.mapping_lr_mul, cfg_.c_dim > 0 ? str(" --dmap ", cfg_.cmap_layers) : std::string(),
           "; resume with the run's");
  load_params(nets_.G->parameters(), byname, "G.", snap);
  load_params(nets_.D->parameters(), byname, "D.", snap);
  load_params(nets_.G_ema->parameters(), byname, "G_ema.", snap);
  const std::string state = state_path_for(snap);  // complete: find_snapshot checked it
  std::map<std::string, std::string> sm;
  auto st = io::load_safetensors(state, &sm);
  std::vector<std::pair<std::string, Tensor>> sg_state, sd_state;
  for (auto& [n, t] : st) {
    if (n.rfind("opt_G.", 0) == 0) sg_state.push_back({n.substr(6), t});
    if (n.rfind("opt_D.", 0) == 0) sd_state.push_back({n.substr(6), t});
    if (n == "pl_mean") loss_.set_pl_mean(t.item());
  }
  opt_G_.load_state(sg_state);
  opt_D_.load_state(sd_state);
  const TrainingStateMeta ts = parse_training_state_metadata(sm, state);
  SG_CHECK(ts.batch == batch_, "stylegan2-train", "--resume: the state in '", state, "' was trained with batch ",
           ts.batch, "; resume with --batch ", ts.batch);
  // The schedule (absent: stylegan2, which writes none, as older states) must be the same.
  const std::string run_schedule = sm.count("schedule") ? sm.at("schedule") : "stylegan2";
  SG_CHECK(run_schedule == schedule_name(schedule_), "stylegan2-train", "--resume: the run in '", state,
           "' was trained with --schedule ", run_schedule, ", this one has --schedule ", schedule_name(schedule_),
           opt_.schedule == "auto" ? " (auto for " + cfg_.name + ")" : std::string(), "; resume with --schedule ",
           run_schedule);
  // The data stream continues only if it is the same stream.
  for (const auto& [key, now] :
       {std::pair<std::string, std::string>{"data", fs::absolute(opt_.data).lexically_normal().string()},
        {"seed", std::to_string(opt_.seed)},
        {"mirror", opt_.mirror ? "1" : "0"}}) {
    auto it = ts.stream.find(key);
    if (it == ts.stream.end() || it->second == now || opt_.resume_changed) continue;
    throw Error(str("stylegan2-train: --resume: the run was trained with --", key, " ", it->second, ", this one has ",
                    now, "; the data order would not continue exactly (pass --resume-changed to resume anyway)"));
  }
  cur_nimg_ = ts.cur_nimg;
  batch_idx_ = ts.batch_idx;
  cur_tick_ = ts.cur_tick;
  rng_ = Rng(ts.rng_seed, ts.rng_offset);
  loader_.seek((uint64_t)ts.loader_epoch, ts.loader_position);
  last_snapshot_ = snap;
  if (cur_nimg_ >= total_nimg_) {
    std::printf("stylegan2-train: %s is already at kimg %.3f, not below --kimg %g: nothing to do\n", snap.c_str(),
                kimg(), opt_.kimg);
    return false;
  }
  return true;
}

std::string Trainer::start_run() {
  start_metrics();  // first: a dataset without labels under --metrics N stops before the run directory is made
  std::string name = opt_.name;
  if (name.empty()) name = data::dataset_name(opt_.data) + "-" + cfg_.name;
  run_dir_ = data::create_run_dir(opt_.outdir, name);
  data::write_text_atomic(run_dir_ + "/options.json", json_);
  log_ = std::make_unique<data::JsonLog>(run_dir_ + "/log.jsonl");
  if (opt_.tensorboard) tb_ = std::make_unique<tensorboard::EventWriter>(run_dir_);
  const int64_t res = cfg_.resolution, channels = cfg_.img_channels;
  if (!opt_.quiet)
    std::printf(
        "stylegan2-train: %s, %lld images (%lld skipped), cfg %s %lldpx x%lld, G %lld params, D %lld params, "
        "%d threads (SG_THREAD_WAIT %s)%s\nrun directory: %s\n",
        ds_->description().c_str(), (long long)ds_->size(), (long long)ds_->skipped(), cfg_.name.c_str(),
        (long long)res, (long long)channels, (long long)nets_.G->parameters().count(),
        (long long)nets_.D->parameters().count(), cpu_threads(), cpu_thread_wait().c_str(),
        cfg_.c_dim > 0 ? str(", conditional on ", cfg_.c_dim, " classes (--cond=0: off)").c_str() : "",
        run_dir_.c_str());
  // reals.png: the first images of the dataset.
  const int64_t n = std::min<int64_t>(grid_count_, ds_->size());
  Tensor reals = empty({n, channels, res, res});
  for (int64_t i = 0; i < n; ++i) ds_->get(i, reals.data<float>() + i * channels * res * res);
  data::Image g = data::make_grid(reals, (int64_t)std::ceil(std::sqrt((double)n)));
  data::write_png(run_dir_ + "/reals.png", g.pixels.data(), g.w, g.h, g.channels);
  const data::Image fakes = write_fakes(run_dir_ + "/fakes_init.png", *nets_.G_ema, grid_count_, batch_);
  if (tb_) {
    tb_->add_image("reals", g, cur_nimg_, 0.0);
    tb_->add_image("fakes", fakes, cur_nimg_, 0.0);
  }
  t_start_ = t_tick_ = std::chrono::steady_clock::now();
  tick_start_nimg_ = cur_nimg_;
  return run_dir_;
}

// Loads (or trains and caches) the metrics' classifier and fits the test split, before the
// first minibatch. Its streams are its own: a run with metrics trains exactly as one without.
void Trainer::start_metrics() {
  if (opt_.metrics == 0) return;
  metrics::EvalOptions e;
  e.data = opt_.data;
  e.resolution = cfg_.resolution;
  e.channels = cfg_.img_channels;
  e.classifier = !opt_.classifier.empty()
                     ? opt_.classifier
                     : metrics::default_classifier_path(opt_.outdir, opt_.data, e.resolution, e.channels);
  e.num = opt_.metrics_num;
  e.device = dev_;
  if (!opt_.quiet) e.log = [](const std::string& s) { std::printf("metrics: %s\n", s.c_str()), std::fflush(stdout); };
  if (opt_.metrics > 0) {
    metrics_ = std::make_unique<metrics::Evaluator>(e);
    metrics_every_ = opt_.metrics;
    return;
  }
  try {  // the default: on when the dataset has labels
    metrics_ = std::make_unique<metrics::Evaluator>(e);
    metrics_every_ = kDefaultMetricsTicks;
  } catch (const Error& err) {
    if (!opt_.quiet) std::printf("stylegan2-train: metrics off (--metrics 0 silences this): %s\n", err.what());
  }
}

void Trainer::refuse_non_finite(const std::string& what) const {
  throw Error(str("stylegan2-train: training diverged at kimg ", kimg(), ": ", what,
                  "; no snapshot was written for it; the last good snapshot is ", last_snapshot_));
}

// The non-finite guard: a snapshot is written only from finite networks, so the last one on
// disk is always a good one to resume from.
void Trainer::save_snapshot() {
  if (cur_nimg_ == last_saved_nimg_) return;  // a signal right after a tick's snapshot: it is on disk
  if (std::string bad = first_non_finite(nets_); !bad.empty()) refuse_non_finite("tensor " + bad + " is not finite");
  const std::string tag = snapshot_tag(cur_nimg_);
  train::save_snapshot(run_dir_ + "/network-snapshot-" + tag + ".safetensors", nets_,
                       {{"kimg", std::to_string(kimg())}, {"cur_nimg", std::to_string(cur_nimg_)}});
  std::vector<std::pair<std::string, Tensor>> st;
  for (auto& [n, t] : opt_G_.state()) st.push_back({"opt_G." + n, t});
  for (auto& [n, t] : opt_D_.state()) st.push_back({"opt_D." + n, t});
  st.push_back({"pl_mean", scalar(loss_.pl_mean_value(), DType::f64)});
  const std::map<std::string, std::string> m = {{"cur_nimg", std::to_string(cur_nimg_)},
                                                {"batch_idx", std::to_string(batch_idx_)},
                                                {"cur_tick", std::to_string(cur_tick_)},
                                                {"rng_seed", std::to_string(rng_.seed)},
                                                {"rng_offset", std::to_string(rng_.offset)},
                                                {"loader_epoch", std::to_string(loader_.epoch())},
                                                {"loader_position", std::to_string(loader_.position())},
                                                {"batch", std::to_string(batch_)},
                                                {"cfg", cfg_.name},
                                                {"data", fs::absolute(opt_.data).lexically_normal().string()},
                                                {"seed", std::to_string(opt_.seed)},
                                                {"mirror", opt_.mirror ? "1" : "0"}};
  std::map<std::string, std::string> meta = m;
  if (schedule_ != Schedule::stylegan2) meta["schedule"] = schedule_name(schedule_);  // absent: stylegan2
  // The state last: its rename commits the pair (train/snapshot.h).
  io::save_safetensors(run_dir_ + "/training-state-" + tag + ".safetensors", st, meta);
  last_snapshot_ = run_dir_ + "/network-snapshot-" + tag + ".safetensors";
  last_saved_nimg_ = cur_nimg_;
}

void Trainer::step() {
  if (batch_idx_ == opt_.test_nan_at_batch) {
    Tensor w = nets_.G->parameters().params[0].second;
    copy_into(w, full(w.shape(), std::nan(""), w.dtype(), w.device()));
  }
  const data::BatchLoader::Batch b = loader_.next_batch();
  Tensor real;
  if (!opt_.cuda_graph) {
    real = b.images.to(dev_);
  } else {  // the graphs read the reals from one buffer, refilled before them
    if (!real_buf_.defined() || real_buf_.shape() != b.images.shape()) {
      graphs_.clear();
      real_buf_ = b.images.to(dev_);
    } else {
      copy_into(real_buf_, b.images);
    }
    real = real_buf_;
  }
  const Tensor real_c = b.labels.defined() ? b.labels.to(dev_) : Tensor();
  const double lr_scale = lr_rampdown_scale(cur_nimg_, total_nimg_, cfg_.lr_rampdown);
  opt_G_.config().lr = lr_G_ * lr_scale, opt_D_.config().lr = lr_D_ * lr_scale;
  for (const auto& group : steps_at(phases_, batch_idx_)) step_group(group, real, real_c);
  update_ema(real.size(0));
  cur_nimg_ += real.size(0);
  batch_idx_++;
}

void Trainer::step_group(const std::vector<const Phase*>& group, const Tensor& real, const Tensor& real_c) {
  const Phase& phase = *group[0];
  if (!opt_.cuda_graph) return step_phase(phase, loss_.step_loss(group, real, real_c, rng_, stats_));
  GroupGraph& gg = graphs_[&phase];
  if (!gg.warm) {  // eagerly first: the allocator's cache fills, pl_mean and the mixing thresholds appear
    gg.warm = true;
    return step_phase(phase, loss_.step_loss(group, real, real_c, rng_, stats_));
  }
  if (!gg.graph.captured()) {
    gg.graph.capture([&] {
      gg.stats.clear();
      gg.grads = phase_grads(phase, loss_.step_loss(group, real, real_c, rng_, gg.stats));
    });
  }
  gg.graph.replay();
  NoGradGuard ng;
  for (const auto& [name, s] : gg.stats) {  // what add_stat would have added this step
    TickStat& t = stats_[name];
    if (s.sum.defined()) t.sum = t.sum.defined() ? add(t.sum, s.sum) : s.sum.clone();
    t.host += s.host;
    t.count += s.count;
  }
  apply_phase_grads(phase, gg.grads);
}

// G_ema = lerp(G, G_ema, beta), beta = 0.5 ** (batch / ema_nimg): a half-life of ema_kimg,
// ramped up over the first images; buffers (w_avg, const noise) are copied.
void Trainer::update_ema(int64_t n) {
  NoGradGuard ng;
  double ema_nimg = cfg_.ema_kimg * 1000;
  if (cfg_.ema_rampup > 0) ema_nimg = std::min(ema_nimg, (double)cur_nimg_ * cfg_.ema_rampup);
  const double beta = std::pow(0.5, (double)n / std::max(ema_nimg, 1e-8));
  auto& src = nets_.G->parameters();
  auto& dst = nets_.G_ema->parameters();
  for (size_t i = 0; i < src.params.size(); ++i)
    copy_into(dst.params[i].second, lerp(src.params[i].second, dst.params[i].second, beta));
  for (size_t i = 0; i < src.buffers.size(); ++i) copy_into(dst.buffers[i].second, src.buffers[i].second);
}

void Trainer::maybe_tick() {
  const bool done = finished();
  if (!done && cur_nimg_ < tick_start_nimg_ + (int64_t)(opt_.tick_kimg * 1000)) return;
  auto now = std::chrono::steady_clock::now();
  const double tick_s = std::chrono::duration<double>(now - t_tick_).count();
  const double total_s = std::chrono::duration<double>(now - t_start_).count();
  const double tick_kimg = (cur_nimg_ - tick_start_nimg_) / 1000.0;
  const double sec_per_kimg = tick_kimg > 0 ? tick_s / tick_kimg : 0;
  const double eta = std::max<int64_t>(total_nimg_ - cur_nimg_, 0) / 1000.0 * sec_per_kimg;
  std::vector<std::pair<std::string, double>> rec = {{"tick", (double)cur_tick_},
                                                     {"kimg", kimg()},
                                                     {"sec_per_kimg", sec_per_kimg},
                                                     {"total_sec", total_s},
                                                     {"mem_rss_gb", rss_gb()}};
  // The CPU threads' waiting (docs/training.md "Threads"): how often, so far, `auto` found the
  // machine busy and let the idle threads sleep.
  if (dev_.type == DeviceType::cpu) rec.push_back({"cpu_threads_times_busy", (double)cpu_thread_stats().times_busy});
  std::ostringstream line;
  char buf[256];
  std::snprintf(buf, sizeof buf, "tick %-4lld kimg %-8.2f sec/kimg %-7.2f ETA %s", (long long)cur_tick_, kimg(),
                sec_per_kimg, fmt_duration(eta).c_str());
  line << buf;
  for (auto& [k, v] : stats_) {
    const double m = stat_mean(v);  // the tick's one read of each loss from the device
    rec.push_back({k, m});
    std::snprintf(buf, sizeof buf, "  %s %.4f", k.c_str(), m);
    line << buf;
  }
  std::snprintf(buf, sizeof buf, "  mem %.2fGB", rss_gb());
  line << buf;
  // Metrics every --metrics ticks and at the end, on G_ema, unless the run diverged (the guard
  // below stops it); their time is left out of the next tick's sec/kimg.
  if (metrics_ && (done || (cur_tick_ + 1) % metrics_every_ == 0) &&
      std::all_of(rec.begin(), rec.end(), [](auto& kv) { return std::isfinite(kv.second); }) &&
      first_non_finite(nets_).empty()) {
    const metrics::Result r = metrics_->evaluate(*nets_.G_ema);
    for (auto& kv : r.records()) rec.push_back(kv);
    std::snprintf(buf, sizeof buf, "  FD %.2f classes %lld (%.0f s)", r.fd, (long long)r.classes_above_2pct, r.seconds);
    line << buf;
    now = std::chrono::steady_clock::now();
  }
  log_->write(rec);
  // As stylegan2-ada-pytorch: wall time in seconds since the start; the step is the image count
  // (ada's integer kimg would put two of our 0.5-kimg ticks on one step).
  if (tb_) tb_->add_scalars(rec, cur_nimg_, total_s);
  if (!opt_.quiet) {
    std::printf("%s\n", line.str().c_str());
    std::fflush(stdout);
  }
  for (auto& [k, v] : rec)
    if (!std::isfinite(v))  // (a NaN's sign bit means nothing: it is printed as nan)
      refuse_non_finite(str(k, " is ", std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf", " (the tick's mean)"));
  stats_.clear();
  cur_tick_++;
  tick_start_nimg_ = cur_nimg_;
  t_tick_ = now;
  if (done || (opt_.snap > 0 && cur_tick_ % opt_.snap == 0)) {
    save_snapshot();
    const data::Image fakes =
        write_fakes(run_dir_ + "/fakes" + snapshot_tag(cur_nimg_) + ".png", *nets_.G_ema, grid_count_, batch_);
    if (tb_) tb_->add_image("fakes", fakes, cur_nimg_, total_s);
  }
}

}  // namespace

double lr_rampdown_scale(int64_t cur_nimg, int64_t total_nimg, double fraction) {
  if (fraction <= 0 || total_nimg <= 0) return 1.0;
  return std::clamp((double)(total_nimg - cur_nimg) / (fraction * (double)total_nimg), 0.0, 1.0);
}

int run_training(const TrainOptions& opt, std::string* run_dir_out) {
  g_interrupted = 0;
  StopSignals stop_signals;  // SIGINT, SIGTERM, SIGHUP: finish the minibatch, write a snapshot, exit
  if (opt.threads > 0) set_cpu_threads(opt.threads);
  cpu_thread_wait();  // an invalid SG_THREAD_WAIT is an error before anything is written
  Trainer t(opt);
  if (opt.dry_run) {
    std::printf("%s", t.options().c_str());
    return 0;
  }
  if (!opt.resume.empty() && !t.resume()) return 0;
  const std::string run_dir = t.start_run();
  if (run_dir_out) *run_dir_out = run_dir;
  while (!t.finished()) {
    if (g_interrupted) {
      t.save_snapshot();
      t.close_tensorboard();
      std::printf("stylegan2-train: interrupted by %s at kimg %.3f; snapshot and state written to %s\n",
                  signal_name(g_interrupted.load()), t.kimg(), run_dir.c_str());
      return 0;
    }
    t.step();
    t.maybe_tick();
  }
  t.close_tensorboard();
  if (!opt.quiet) std::printf("stylegan2-train: done, %.3f kimg; results in %s\n", t.kimg(), run_dir.c_str());
  return 0;
}

}  // namespace sg::train
