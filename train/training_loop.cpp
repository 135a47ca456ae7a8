#include "train/training_loop.h"

#include <omp.h>
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

#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "train/batch_loader.h"
#include "train/dataset.h"
#include "train/image_io.h"
#include "train/run_dir.h"
#include "train/snapshot.h"

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
                         double gamma) {
  std::ostringstream s;
  auto q = [](const std::string& v) { return "\"" + data::json_escape(v) + "\""; };
  s << "{\n"
    << "  \"data\": " << q(o.data) << ",\n  \"dataset\": " << q(ds.description()) << ",\n  \"dataset_size\": "
    << ds.size() << ",\n  \"outdir\": " << q(o.outdir) << ",\n  \"cfg\": " << q(c.name)
    << ",\n  \"resolution\": " << c.resolution << ",\n  \"img_channels\": " << c.img_channels
    << ",\n  \"batch\": " << batch << ",\n  \"gamma\": " << gamma << ",\n  \"kimg\": " << o.kimg
    << ",\n  \"tick_kimg\": " << o.tick_kimg << ",\n  \"snap\": " << o.snap << ",\n  \"seed\": " << o.seed
    << ",\n  \"mirror\": " << (o.mirror ? "true" : "false") << ",\n  \"device\": " << q(o.device)
    << ",\n  \"resume\": " << q(o.resume) << ",\n  \"threads\": " << omp_get_max_threads()
    << ",\n  \"G\": {\"z_dim\": " << c.z_dim << ", \"w_dim\": " << c.w_dim << ", \"mapping_layers\": " << c.mapping_layers
    << ", \"mapping_lr_mul\": " << c.mapping_lr_mul << ", \"channel_base\": " << c.channel_base
    << ", \"channel_max\": " << c.channel_max << ", \"conv_clamp\": " << c.conv_clamp << "}"
    << ",\n  \"D\": {\"mbstd_group\": " << c.mbstd_group << ", \"mbstd_channels\": " << c.mbstd_channels << "}"
    << ",\n  \"loss\": {\"r1_interval\": " << c.r1_interval << ", \"pl_interval\": " << c.pl_interval
    << ", \"pl_weight\": " << c.pl_weight << ", \"pl_decay\": " << c.pl_decay << ", \"pl_batch_shrink\": "
    << c.pl_batch_shrink << ", \"style_mixing_prob\": " << c.style_mixing_prob << "}"
    << ",\n  \"opt\": {\"lr_g\": " << c.lr_g << ", \"lr_d\": " << c.lr_d << ", \"betas\": [" << c.beta1 << ", "
    << c.beta2 << "], \"eps\": 1e-8}"
    << ",\n  \"ema_kimg\": " << c.ema_kimg << ",\n  \"ema_rampup\": " << c.ema_rampup << "\n}\n";
  return s.str();
}

// Adam with the lazy-regularization correction: c = k / (k + 1).
AdamConfig lazy_adam(double lr, double beta1, double beta2, int64_t interval) {
  AdamConfig a;
  double c = interval > 0 ? (double)interval / (double)(interval + 1) : 1.0;
  a.lr = lr * c;
  a.beta1 = std::pow(beta1, c);
  a.beta2 = std::pow(beta2, c);
  return a;
}

// Sets each parameter's .grad to nan_to_num(grad) (as stylegan2-ada) and steps.
void apply(Adam& opt, const std::vector<Tensor>& params, const std::vector<Tensor>& grads) {
  NoGradGuard ng;
  for (size_t i = 0; i < params.size(); ++i)
    params[i].set_grad(grads[i].defined() ? nan_to_num(grads[i], 0.0, 1e5, -1e5) : Tensor());
  opt.step();
  opt.zero_grad();
}

// Fixed-seed grid of G_ema samples (its own RNG: never touches the training stream).
void write_fakes(const std::string& path, models::Generator& G_ema, int64_t count, int64_t batch) {
  NoGradGuard ng;
  Rng zr(123456789);
  const auto& c = G_ema.config();
  Tensor z = randn({count, c.z_dim}, zr, DType::f32, G_ema.device());
  std::vector<Tensor> parts;
  Rng nr(1);
  for (int64_t i = 0; i < count; i += batch) {
    Tensor zi = slice(z, 0, i, std::min(count, i + batch));
    parts.push_back(G_ema.synthesis(G_ema.mapping(zi, 1.0, false), NoiseMode::constant, nr));
  }
  Tensor imgs = cat(parts, 0).cpu();
  data::Image grid = data::make_grid(imgs, (int64_t)std::ceil(std::sqrt((double)count)));
  data::write_png(path, grid.pixels.data(), grid.w, grid.h, grid.channels);
}

// Whether a network snapshot and the training state beside it were written together: the
// snapshot records the image count it was taken at (older ones: the kimg), the state its own.
// Returns "" when they match, else what is wrong.
std::string pair_problem(const std::string& snap) {
  const std::string state = state_path_for(snap);
  if (!fs::exists(state)) return "it has no training state (" + fs::path(state).filename().string() + ")";
  try {
    const int64_t state_nimg =
        parse_training_state_metadata(io::load_safetensors_metadata(state), state).cur_nimg;
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

}  // namespace

int run_training(const TrainOptions& opt_in, std::string* run_dir_out) {
  TrainOptions opt = opt_in;
  g_interrupted = 0;
  StopSignals stop_signals;  // SIGINT, SIGTERM, SIGHUP: finish the minibatch, write a snapshot, exit
  if (opt.data.empty()) opt.data = data::kDefaultDatasetPath;
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  SG_CHECK(opt.device == "cpu" || opt.device == "cuda", "stylegan2-train", "--device must be cpu or cuda, got '",
           opt.device, "'");
  Device dev = opt.device == "cuda" ? Device::cuda() : Device::cpu();
  if (dev.type == DeviceType::cuda) (void)zeros({1}, DType::f32, dev);  // fails early, clearly, without CUDA
  SG_CHECK(opt.kimg > 0 && opt.tick_kimg > 0, "stylegan2-train", "--kimg and --tick must be > 0");

  // Data first: an empty dataset or an impossible resolution stops us before any training.
  int64_t res = opt.resolution > 0 ? opt.resolution : (opt.cfg == "paper256" ? 256 : 32);
  int64_t channels = opt.channels;
  if (channels == 0) {
    std::string lower = opt.data;
    for (auto& ch : lower) ch = (char)std::tolower(ch);
    channels = (lower.find("idx") != std::string::npos || lower.find("mnist") != std::string::npos) ? 1 : 3;
  }
  std::unique_ptr<data::Dataset> ds = data::open_dataset(opt.data, res, channels);
  models::Config cfg = models::make_config(opt.cfg, res, channels);
  const int64_t batch = opt.batch > 0 ? opt.batch : cfg.batch;
  const double gamma = opt.gamma >= 0 ? opt.gamma : cfg.gamma;
  SG_CHECK(batch >= 1, "stylegan2-train", "--batch must be >= 1");
  SG_CHECK(batch % std::min<int64_t>(cfg.mbstd_group, batch) == 0, "stylegan2-train", "--batch ", batch,
           " must be divisible by the minibatch-stddev group size ", cfg.mbstd_group);
  std::string json = options_json(opt, cfg, *ds, batch, gamma);
  if (opt.dry_run) {
    std::printf("%s", json.c_str());
    return 0;
  }

  // Networks, optimizers, state.
  Networks nets = make_networks(cfg, opt.seed);
  models::Generator& G = *nets.G;
  models::Generator& G_ema = *nets.G_ema;
  models::Discriminator& D = *nets.D;
  if (dev != Device::cpu()) {
    G.to(dev);
    D.to(dev);
    G_ema.to(dev);
  }
  Adam opt_G(G.parameters().params, lazy_adam(cfg.lr_g, cfg.beta1, cfg.beta2, cfg.pl_interval));
  Adam opt_D(D.parameters().params, lazy_adam(cfg.lr_d, cfg.beta1, cfg.beta2, cfg.r1_interval));
  const std::vector<Tensor> G_params = G.parameters().tensors(), D_params = D.parameters().tensors();
  Rng rng(opt.seed * 2654435761ull + 1);
  int64_t cur_nimg = 0, batch_idx = 0, cur_tick = 0;
  double pl_mean = 0.0;
  data::BatchLoader loader(*ds, batch, opt.seed, opt.mirror);

  if (!opt.resume.empty()) {
    std::string snap = find_snapshot(opt.resume);
    remove_stale_temporaries(fs::path(snap).parent_path());
    std::map<std::string, std::string> meta;
    auto list = io::load_safetensors(snap, &meta);
    std::map<std::string, Tensor> byname(list.begin(), list.end());
    const models::Config sc = snapshot_config(meta, snap);
    SG_CHECK(sc.name == cfg.name && sc.resolution == res && sc.img_channels == channels, "stylegan2-train",
             "--resume: '", snap, "' is a ", sc.name, " ", sc.resolution, "px ", sc.img_channels,
             "-channel network, but this run is ", cfg.name, " ", res, "px ", channels, "-channel");
    load_params(G.parameters(), byname, "G.", snap);
    load_params(D.parameters(), byname, "D.", snap);
    load_params(G_ema.parameters(), byname, "G_ema.", snap);
    const std::string state = state_path_for(snap);  // complete: find_snapshot checked it
    std::map<std::string, std::string> sm;
    auto st = io::load_safetensors(state, &sm);
    std::vector<std::pair<std::string, Tensor>> sg_state, sd_state;
    for (auto& [n, t] : st) {
      if (n.rfind("opt_G.", 0) == 0) sg_state.push_back({n.substr(6), t});
      if (n.rfind("opt_D.", 0) == 0) sd_state.push_back({n.substr(6), t});
      if (n == "pl_mean") pl_mean = t.item();
    }
    opt_G.load_state(sg_state);
    opt_D.load_state(sd_state);
    const TrainingStateMeta ts = parse_training_state_metadata(sm, state);
    SG_CHECK(ts.batch == batch, "stylegan2-train", "--resume: the state in '", state, "' was trained with batch ",
             ts.batch, "; resume with --batch ", ts.batch);
    // The data stream continues only if it is the same stream.
    for (const auto& [key, now] : {std::pair<std::string, std::string>{"data", fs::absolute(opt.data).lexically_normal().string()},
                                   {"seed", std::to_string(opt.seed)},
                                   {"mirror", opt.mirror ? "1" : "0"}}) {
      auto it = ts.stream.find(key);
      if (it == ts.stream.end() || it->second == now || opt.resume_changed) continue;
      throw Error(str("stylegan2-train: --resume: the run was trained with --", key, " ", it->second, ", this one has ",
                      now, "; the data order would not continue exactly (pass --resume-changed to resume anyway)"));
    }
    cur_nimg = ts.cur_nimg;
    batch_idx = ts.batch_idx;
    cur_tick = ts.cur_tick;
    rng = Rng(ts.rng_seed, ts.rng_offset);
    loader.seek((uint64_t)ts.loader_epoch, ts.loader_position);
    if (cur_nimg >= (int64_t)std::llround(opt.kimg * 1000)) {
      std::printf("stylegan2-train: %s is already at kimg %.3f, not below --kimg %g: nothing to do\n", snap.c_str(),
                  cur_nimg / 1000.0, opt.kimg);
      return 0;
    }
  }

  std::string name = opt.name;
  if (name.empty()) {
    // Debian's MNIST-style files are named train-images-...: the folder names the dataset.
    fs::path dp = fs::absolute(opt.data).lexically_normal();
    std::string stem = dp.filename().string();
    if (stem.empty()) stem = dp.parent_path().filename().string();
    if (stem.rfind("train-", 0) == 0 || stem.rfind("t10k-", 0) == 0 || stem.rfind("data_batch", 0) == 0)
      stem = dp.parent_path().filename().string();
    stem = fs::path(stem).stem().stem().string();
    name = stem + "-" + cfg.name;
  }
  std::string run_dir = data::create_run_dir(opt.outdir, name);
  if (run_dir_out) *run_dir_out = run_dir;
  data::write_text_atomic(run_dir + "/options.json", json);
  data::JsonLog log(run_dir + "/log.jsonl");
  if (!opt.quiet)
    std::printf("stylegan2-train: %s, %lld images (%lld skipped), cfg %s %lldpx x%lld, G %lld params, D %lld params, "
                "%d threads\nrun directory: %s\n",
                ds->description().c_str(), (long long)ds->size(), (long long)ds->skipped(), cfg.name.c_str(),
                (long long)res, (long long)channels, (long long)G.parameters().count(),
                (long long)D.parameters().count(), omp_get_max_threads(), run_dir.c_str());

  const int64_t grid_count = res <= 64 ? 64 : 16;
  {
    // reals.png: the first images of the dataset.
    const int64_t n = std::min<int64_t>(grid_count, ds->size());
    Tensor reals = empty({n, channels, res, res});
    for (int64_t i = 0; i < n; ++i) ds->get(i, reals.data<float>() + i * channels * res * res);
    data::Image g = data::make_grid(reals, (int64_t)std::ceil(std::sqrt((double)n)));
    data::write_png(run_dir + "/reals.png", g.pixels.data(), g.w, g.h, g.channels);
    write_fakes(run_dir + "/fakes_init.png", G_ema, grid_count, batch);
  }

  // Non-finite guard: a snapshot is written only from finite networks, so the last one on disk
  // is always a good one to resume from.
  std::string last_snapshot_written = opt.resume.empty() ? "none" : opt.resume;
  auto refuse_non_finite = [&](const std::string& what) {
    throw Error(str("stylegan2-train: training diverged at kimg ", cur_nimg / 1000.0, ": ", what,
                    "; no snapshot was written for it; the last good snapshot is ", last_snapshot_written));
  };
  int64_t last_saved_nimg = -1;
  auto save_all = [&]() {
    if (cur_nimg == last_saved_nimg) return;  // a signal right after a tick's snapshot: it is on disk
    if (std::string bad = first_non_finite(nets); !bad.empty()) refuse_non_finite("tensor " + bad + " is not finite");
    const std::string tag = snapshot_tag(cur_nimg);
    std::map<std::string, std::string> extra = {{"kimg", std::to_string(cur_nimg / 1000.0)},
                                                {"cur_nimg", std::to_string(cur_nimg)}};
    save_snapshot(run_dir + "/network-snapshot-" + tag + ".safetensors", nets, extra);
    std::vector<std::pair<std::string, Tensor>> st;
    for (auto& [n, t] : opt_G.state()) st.push_back({"opt_G." + n, t});
    for (auto& [n, t] : opt_D.state()) st.push_back({"opt_D." + n, t});
    st.push_back({"pl_mean", scalar(pl_mean, DType::f64)});
    std::map<std::string, std::string> m = {
        {"cur_nimg", std::to_string(cur_nimg)},       {"batch_idx", std::to_string(batch_idx)},
        {"cur_tick", std::to_string(cur_tick)},       {"rng_seed", std::to_string(rng.seed)},
        {"rng_offset", std::to_string(rng.offset)},   {"loader_epoch", std::to_string(loader.epoch())},
        {"loader_position", std::to_string(loader.position())}, {"batch", std::to_string(batch)},
        {"cfg", cfg.name},
        {"data", fs::absolute(opt.data).lexically_normal().string()},
        {"seed", std::to_string(opt.seed)},
        {"mirror", opt.mirror ? "1" : "0"}};
    io::save_safetensors(run_dir + "/training-state-" + tag + ".safetensors", st, m);
    last_snapshot_written = run_dir + "/network-snapshot-" + tag + ".safetensors";
    last_saved_nimg = cur_nimg;
  };

  // One G forward: mapping (with style mixing) and synthesis.
  const int64_t num_ws = G.num_ws();
  auto run_G = [&](const Tensor& z, bool update_w_avg) {
    Tensor ws = G.mapping(z, 1.0, update_w_avg);
    if (cfg.style_mixing_prob > 0 && num_ws > 1) {
      const double u = rand({}, rng, DType::f64).item(), v = rand({}, rng, DType::f64).item();
      int64_t cutoff = 1 + std::min<int64_t>((int64_t)(v * (double)(num_ws - 1)), num_ws - 2);
      Tensor z2 = randn(z.shape(), rng, z.dtype(), z.device());
      if (u < cfg.style_mixing_prob) {
        Tensor ws2 = G.mapping(z2, 1.0, false);
        ws = cat({slice(ws, 1, 0, cutoff), slice(ws2, 1, cutoff, num_ws)}, 1);
      }
    }
    Tensor img = G.synthesis(ws, NoiseMode::random, rng);
    return std::make_pair(img, ws);
  };

  const int64_t total_nimg = (int64_t)std::llround(opt.kimg * 1000);
  const auto t_start = std::chrono::steady_clock::now();
  auto t_tick = t_start;
  int64_t tick_start_nimg = cur_nimg;
  std::map<std::string, std::pair<double, int64_t>> stats;  // name -> (sum, count) over the tick
  auto stat = [&](const char* k, double v) {
    auto& s = stats[k];
    s.first += v;
    s.second++;
  };
  bool interrupted = false;

  while (cur_nimg < total_nimg) {
    if (g_interrupted) {
      interrupted = true;
      break;
    }
    if (batch_idx == opt.test_nan_at_batch) {
      Tensor w = G.parameters().params[0].second;
      copy_into(w, full(w.shape(), std::nan(""), w.dtype(), w.device()));
    }
    Tensor real = loader.next().to(dev);
    const int64_t N = real.size(0);

    // Gmain: non-saturating loss softplus(-D(G(z))).
    {
      Tensor z = randn({N, cfg.z_dim}, rng, DType::f32, dev);
      auto [img, ws] = run_G(z, true);
      Tensor loss = mean(softplus(neg(D.forward(img))));
      apply(opt_G, G_params, autograd::grad({loss}, G_params, {}, false, true));
      stat("loss/G", loss.item());
    }
    // Greg: lazy path length.
    if (cfg.pl_interval > 0 && cfg.pl_weight > 0 && batch_idx % cfg.pl_interval == 0) {
      const int64_t bs = std::max<int64_t>(N / cfg.pl_batch_shrink, 1);
      Tensor z = randn({bs, cfg.z_dim}, rng, DType::f32, dev);
      auto [img, ws] = run_G(z, true);
      Tensor noise = mul(randn(img.shape(), rng, DType::f32, dev), 1.0 / std::sqrt((double)(img.size(2) * img.size(3))));
      Tensor pl_grads;
      {
        NoWeightGradientsGuard nw;
        pl_grads = autograd::grad({sum(mul(img, noise))}, {ws}, {}, true)[0];
      }
      Tensor pl_lengths = sqrt(mean(sum(square(pl_grads), {2}), {1}));
      pl_mean += (mean(pl_lengths).item() - pl_mean) * cfg.pl_decay;
      Tensor pl_penalty = square(add(pl_lengths, -pl_mean));
      Tensor loss = mul(mean(pl_penalty), cfg.pl_weight * (double)cfg.pl_interval);
      apply(opt_G, G_params, autograd::grad({loss}, G_params, {}, false, true));
      stat("loss/G_pl", mean(pl_penalty).item() * cfg.pl_weight);
      stat("pl_mean", pl_mean);
    }
    // Dmain: softplus(D(G(z))) + softplus(-D(x)).
    {
      Tensor z = randn({N, cfg.z_dim}, rng, DType::f32, dev);
      Tensor img;
      {
        NoGradGuard ng;
        img = run_G(z, true).first;
      }
      Tensor loss_fake = mean(softplus(D.forward(img)));
      Tensor loss_real = mean(softplus(neg(D.forward(real))));
      Tensor loss = add(loss_fake, loss_real);
      apply(opt_D, D_params, autograd::grad({loss}, D_params, {}, false, true));
      stat("loss/D", loss.item());
    }
    // Dreg: lazy R1 on reals.
    if (cfg.r1_interval > 0 && gamma > 0 && batch_idx % cfg.r1_interval == 0) {
      Tensor x = real.detach().set_requires_grad(true);
      Tensor logits = D.forward(x);
      Tensor r1_grads;
      {
        NoWeightGradientsGuard nw;
        r1_grads = autograd::grad({sum(logits)}, {x}, {}, true)[0];
      }
      Tensor r1_penalty = sum(square(r1_grads), {1, 2, 3});
      Tensor loss = mul(mean(r1_penalty), gamma / 2 * (double)cfg.r1_interval);
      apply(opt_D, D_params, autograd::grad({loss}, D_params, {}, false, true));
      stat("r1_penalty", mean(r1_penalty).item());
    }
    // G EMA.
    {
      NoGradGuard ng;
      double ema_nimg = cfg.ema_kimg * 1000;
      if (cfg.ema_rampup > 0) ema_nimg = std::min(ema_nimg, (double)cur_nimg * cfg.ema_rampup);
      const double beta = std::pow(0.5, (double)N / std::max(ema_nimg, 1e-8));
      auto& src = G.parameters();
      auto& dst = G_ema.parameters();
      for (size_t i = 0; i < src.params.size(); ++i) {
        copy_into(dst.params[i].second, lerp(src.params[i].second, dst.params[i].second, beta));
      }
      for (size_t i = 0; i < src.buffers.size(); ++i) copy_into(dst.buffers[i].second, src.buffers[i].second);
    }
    cur_nimg += N;
    batch_idx++;

    // Tick: progress line, log record, snapshot.
    const bool done = cur_nimg >= total_nimg;
    if (!done && cur_nimg < tick_start_nimg + (int64_t)(opt.tick_kimg * 1000)) continue;
    auto now = std::chrono::steady_clock::now();
    const double tick_s = std::chrono::duration<double>(now - t_tick).count();
    const double total_s = std::chrono::duration<double>(now - t_start).count();
    const double tick_kimg = (cur_nimg - tick_start_nimg) / 1000.0;
    const double sec_per_kimg = tick_kimg > 0 ? tick_s / tick_kimg : 0;
    const double eta = std::max<int64_t>(total_nimg - cur_nimg, 0) / 1000.0 * sec_per_kimg;
    std::vector<std::pair<std::string, double>> rec = {{"tick", (double)cur_tick},
                                                       {"kimg", cur_nimg / 1000.0},
                                                       {"sec_per_kimg", sec_per_kimg},
                                                       {"total_sec", total_s},
                                                       {"mem_rss_gb", rss_gb()}};
    std::ostringstream line;
    char buf[256];
    std::snprintf(buf, sizeof buf, "tick %-4lld kimg %-8.2f sec/kimg %-7.2f ETA %s", (long long)cur_tick,
                  cur_nimg / 1000.0, sec_per_kimg, fmt_duration(eta).c_str());
    line << buf;
    for (auto& [k, v] : stats) {
      double m = v.first / (double)std::max<int64_t>(v.second, 1);
      rec.push_back({k, m});
      std::snprintf(buf, sizeof buf, "  %s %.4f", k.c_str(), m);
      line << buf;
    }
    std::snprintf(buf, sizeof buf, "  mem %.2fGB", rss_gb());
    line << buf;
    log.write(rec);
    if (!opt.quiet) {
      std::printf("%s\n", line.str().c_str());
      std::fflush(stdout);
    }
    for (auto& [k, v] : rec)
      if (!std::isfinite(v)) refuse_non_finite(str(k, " is ", v, " (the tick's mean)"));
    stats.clear();
    cur_tick++;
    tick_start_nimg = cur_nimg;
    t_tick = now;
    if (done || (opt.snap > 0 && cur_tick % opt.snap == 0)) {
      save_all();
      write_fakes(run_dir + "/fakes" + snapshot_tag(cur_nimg) + ".png", G_ema, grid_count, batch);
    }
  }
  if (interrupted) {
    save_all();
    std::printf("stylegan2-train: interrupted by %s at kimg %.3f; snapshot and state written to %s\n",
                signal_name(g_interrupted.load()), cur_nimg / 1000.0, run_dir.c_str());
    return 0;
  }
  if (!opt.quiet) std::printf("stylegan2-train: done, %.3f kimg; results in %s\n", cur_nimg / 1000.0, run_dir.c_str());
  return 0;
}

}  // namespace sg::train
