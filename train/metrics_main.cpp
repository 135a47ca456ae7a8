// stylegan2-metrics: FD, KID, a classifier score and per-class coverage of a network
// snapshot's samples (its G_ema), in the features of a classifier stylegrad trains on the
// dataset's labels (docs/metrics.md). With --reals, the same on real training images (the
// noise floor), optionally blurred. With --inception, also FID and KID in the FID
// Inception-v3's features (weights converted by scripts/convert_inception.py).

#include <cstdio>
#include <filesystem>
#include <new>

#include "engine/io/safetensors.h"
#include "train/cli.h"
#include "train/dataset.h"
#include "train/metrics.h"
#include "train/run_dir.h"
#include "train/snapshot.h"

using namespace sg;
namespace fs = std::filesystem;

namespace {

struct Opts {
  std::string network, data, classifier, inception, device = "cpu";
  int64_t inception_ref = -1;
  int64_t num = 5000, classifier_images = -1, kid_subsets = 100, batch = 64, resolution = 32, channels = 0;
  uint64_t seed = 0;
  models::NoiseMode noise = models::NoiseMode::random;
  int threads = 0;
  bool reals = false;
  double blur = 0;
  std::vector<int64_t> classes;
};

// The data a snapshot was trained on, from the training state beside it ("" if unknown).
std::string snapshot_data(const std::string& network) {
  const std::string state = train::state_path_for(network);
  if (!fs::exists(state)) return "";
  const auto ts = train::parse_training_state_metadata(io::load_safetensors_metadata(state), state);
  auto it = ts.stream.find("data");
  return it == ts.stream.end() ? "" : it->second;
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  cli::Parser p("stylegan2-metrics",
                "Measures a stylegan2-train network snapshot (its G_ema): FD and KID in the features of a small\n"
                "classifier trained on the dataset's labels (cached in --classifier; trained and saved there when\n"
                "missing), a classifier score and the fraction of samples per class. Prints the results and a JSON\n"
                "line. --reals measures real training images instead (the noise floor). See docs/metrics.md.");
  using cli::Flag;
  p.add(Flag{"network", "network-snapshot-*.safetensors (required unless --reals)", "", false,
             [&](auto v) { o.network = v; }});
  p.add(Flag{"data", "the training dataset (its labels and test split are found beside it)",
             "the snapshot's, else " + std::string(data::kDefaultDatasetPath), false, [&](auto v) { o.data = v; }});
  p.add(
      Flag{"num", "samples to measure", "5000", false, [&](auto v) { o.num = cli::to_int_in("num", v, 2, 10000000); }});
  p.add(Flag{"classifier", "the classifier's safetensors file: loaded if present, else trained and saved",
             "classifier-<dataset>-<R>x<C>.safetensors beside the run directory (runs/ with --reals)", false,
             [&](auto v) { o.classifier = v; }});
  p.add(Flag{"classifier-images", "images a new classifier trains on", "120000 (2 epochs of Fashion-MNIST)", false,
             [&](auto v) { o.classifier_images = cli::to_int_in("classifier-images", v, 1, 100000000); }});
  p.add(Flag{"inception",
             "FID Inception-v3 weights converted by scripts/convert_inception.py: adds FID and KID in its features",
             "off", false, [&](auto v) { o.inception = v; }});
  p.add(Flag{"inception-ref", "test-split images whose Inception features are the FID reference", "all", false,
             [&](auto v) { o.inception_ref = cli::to_int_in("inception-ref", v, 2, 100000000); }});
  p.add(Flag{"kid-subsets", "KID subsets of 1000 (0: no KID)", "100", false,
             [&](auto v) { o.kid_subsets = cli::to_int_in("kid-subsets", v, 0, 100000); }});
  p.add(Flag{"batch", "generator / classifier batch", "64", false,
             [&](auto v) { o.batch = cli::to_int_in("batch", v, 1, 4096); }});
  p.add(Flag{"seed", "seed of the latents and noise (and of the --reals choice)", "0", false,
             [&](auto v) { o.seed = (uint64_t)cli::to_int_in("seed", v, 0, INT64_MAX); }});
  p.add(Flag{"noise-mode", "the generator's noise inputs: random, const (its stored buffers) or none", "random", false,
             [&](auto v) { o.noise = models::parse_noise_mode("--noise-mode", v); }});
  p.add(Flag{"reals", "measure real training images instead of a network", "off", true,
             [&](auto v) { o.reals = cli::to_bool("reals", v); }});
  p.add(Flag{"blur", "with --reals: Gaussian blur of this sigma in pixels", "0", false,
             [&](auto v) { o.blur = cli::to_double_in("blur", v, 0, 100); }});
  p.add(Flag{"classes", "with --reals: only images of these classes, e.g. 0,2-9", "all", false,
             [&](auto v) { o.classes = cli::to_range_list("classes", v); }});
  p.add(Flag{"resolution", "with --reals: image resolution", "32", false, [&](auto v) {
               o.resolution = cli::to_int_in("resolution", v, 8, 1024);
               SG_CHECK((o.resolution & (o.resolution - 1)) == 0, "--resolution",
                        "expected a power of two in [8, 1024], got '", v, "'");
             }});
  p.add(Flag{"channels", "with --reals: image channels, 1 or 3", "1 for idx files, else 3", false, [&](auto v) {
               o.channels = cli::to_int_in("channels", v, 1, 3);
               SG_CHECK(o.channels != 2, "--channels", "expected 1 or 3, got '", v, "'");
             }});
  p.add(Flag{"threads", "CPU threads", "all cores", false,
             [&](auto v) { o.threads = (int)cli::to_int_in("threads", v, 1, 1024); }});
  p.add(Flag{"device", "cpu or cuda", "cpu", false, [&](auto v) {
               SG_CHECK(v == "cpu" || v == "cuda", "--device", "expected cpu or cuda, got '", v, "'");
               o.device = v;
             }});
  try {
    if (!p.parse(argc, argv)) return 0;
    SG_CHECK(o.reals || !o.network.empty(), "stylegan2-metrics", "--network is required (or --reals; see --help)");
    SG_CHECK(!o.reals || o.network.empty(), "stylegan2-metrics", "--reals and --network exclude each other");
    SG_CHECK(o.blur == 0 || o.reals, "stylegan2-metrics", "--blur applies to --reals only");
    SG_CHECK(o.classes.empty() || o.reals, "stylegan2-metrics", "--classes applies to --reals only");
    SG_CHECK(!o.reals || o.noise == models::NoiseMode::random, "stylegan2-metrics",
             "--noise-mode applies to a --network's samples, not to --reals");
    if (o.threads > 0) set_cpu_threads(o.threads);
    const Device dev = o.device == "cuda" ? Device::cuda() : Device::cpu();
    NoGradGuard ng;
    train::Networks nets;
    metrics::EvalOptions e;
    if (!o.reals) {
      SG_CHECK(fs::is_regular_file(o.network), "stylegan2-metrics", "--network: '", o.network, "' is not a file");
      nets = train::load_snapshot(o.network);
      if (std::string bad = train::first_non_finite(nets); !bad.empty())
        throw Error(str("stylegan2-metrics: '", o.network, "' holds non-finite values (tensor ", bad,
                        "): the run diverged before this snapshot; use an earlier one"));
      nets.G_ema->to(dev);
      if (o.data.empty()) o.data = snapshot_data(o.network);
      e.resolution = nets.cfg.resolution;
      e.channels = nets.cfg.img_channels;
    } else {
      e.resolution = o.resolution;
      e.channels = o.channels;
    }
    if (o.data.empty()) o.data = data::kDefaultDatasetPath;
    if (e.channels == 0) {
      std::string lower = o.data;
      for (auto& ch : lower) ch = (char)std::tolower(ch);
      e.channels = (lower.find("idx") != std::string::npos || lower.find("mnist") != std::string::npos) ? 1 : 3;
    }
    if (o.classifier.empty()) {
      const fs::path outdir = o.reals ? fs::path("runs") : fs::absolute(o.network).parent_path().parent_path();
      o.classifier = metrics::default_classifier_path(outdir.string(), o.data, e.resolution, e.channels);
    }
    e.data = o.data;
    e.classifier = o.classifier;
    e.num = o.num;
    e.classifier_images = o.classifier_images;
    e.kid_subsets = o.kid_subsets;
    e.batch = o.batch;
    e.seed = o.seed;
    e.noise = o.noise;
    e.inception = o.inception;
    e.inception_ref = o.inception_ref;
    if (!o.inception.empty())
      SG_CHECK(fs::is_regular_file(o.inception), "stylegan2-metrics", "--inception: '", o.inception,
               "' is not a file (convert the FID weights with scripts/convert_inception.py; docs/metrics.md)");
    e.device = dev;
    e.log = [](const std::string& s) {
      std::printf("%s\n", s.c_str());
      std::fflush(stdout);
    };
    const metrics::Evaluator ev(e);
    metrics::Result r;
    std::string source;
    if (o.reals) {
      source = str("reals (", o.num, " training images", o.blur > 0 ? str(", blurred by sigma ", o.blur) : "", ")");
      r = ev.evaluate_images(ev.training_images(o.blur, o.classes));
    } else {
      source = o.network;
      r = ev.evaluate(*nets.G_ema);
    }
    std::printf("stylegan2-metrics: %s vs the test split of %s\n%s", source.c_str(), o.data.c_str(), r.text().c_str());
    const std::string body = r.json();
    std::printf("{\"source\": \"%s\", \"data\": \"%s\", \"classifier\": \"%s\", %s\n",
                data::json_escape(source).c_str(), data::json_escape(o.data).c_str(),
                data::json_escape(o.classifier).c_str(), body.substr(1).c_str());
    return 0;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "stylegan2-metrics: error: out of memory (a smaller --batch may fit)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stylegan2-metrics: error: %s\n", e.what());
    return 1;
  }
}
