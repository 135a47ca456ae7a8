// stylegan2-train: trains StyleGAN2 from an image folder, an MNIST / Fashion-MNIST idx file
// or CIFAR-10 binary batches. Defaults: Debian's Fashion-MNIST, the `small` config.
#include <cstdint>
#include <cstdio>
#include <new>

#include "engine/error.h"

#include "train/cli.h"
#include "train/dataset.h"
#include "train/training_loop.h"

using namespace sg;

int main(int argc, char** argv) {
  train::TrainOptions o;
  cli::Parser p("stylegan2-train",
                "Trains StyleGAN2 (non-saturating loss, lazy R1 and path-length regularization, style mixing, EMA)\n"
                "and writes runs/NNNNN-<name>/ with options.json, log.jsonl, TensorBoard event files,\n"
                "reals.png, fakes<N>.png, network snapshots (safetensors: G, D, G_ema) and training state\n"
                "for --resume, named by N, the number of images shown (000020000 = 20 kimg).\n"
                "Ctrl-C, SIGTERM and SIGHUP write a snapshot and exit cleanly.");
  using cli::Flag;
  p.add(Flag{"data", "dataset: image folder, idx file (.gz), CIFAR-10 .bin file or folder", data::kDefaultDatasetPath,
             false, [&](auto v) { o.data = v; }});
  p.add(Flag{"outdir", "where run directories are created", "runs", false, [&](auto v) { o.outdir = v; }});
  p.add(Flag{"cfg", "model config: small, seed32, paper256, stylegan1", "small", false, [&](auto v) { o.cfg = v; }});
  p.add(Flag{"schedule",
             "training schedule: stylegan2 (stylegan2-ada-pytorch's), notebook (the seed notebook's loop), auto",
             "auto: notebook for seed32, else stylegan2", false, [&](auto v) {
               SG_CHECK(v == "auto" || v == "stylegan2" || v == "notebook", "--schedule",
                        "expected auto, stylegan2 or notebook, got '", v, "'");
               o.schedule = v;
             }});
  p.add(Flag{"batch", "minibatch size", "the config's", false,
             [&](auto v) { o.batch = cli::to_int_in("batch", v, 1, 4096); }});
  p.add(Flag{"gamma", "R1 regularization weight", "the config's", false,
             [&](auto v) { o.gamma = cli::to_double_in("gamma", v, 0, 1e6); }});
  p.add(Flag{"glr", "G learning rate (Adam)", "the config's", false,
             [&](auto v) { o.lr_g = cli::to_double_in("glr", v, 0, 1); }});
  p.add(Flag{"dlr", "D learning rate (Adam)", "the config's", false,
             [&](auto v) { o.lr_d = cli::to_double_in("dlr", v, 0, 1); }});
  p.add(Flag{"ema", "G_ema half-life in kimg (0: G_ema is G)", "the config's", false,
             [&](auto v) { o.ema_kimg = cli::to_double_in("ema", v, 0, 1e6); }});
  p.add(Flag{"ema-rampup", "G_ema's half-life is at most this fraction of the images shown so far (0: no ramp-up)",
             "the config's", false, [&](auto v) { o.ema_rampup = cli::to_double_in("ema-rampup", v, 0, 1e6); }});
  p.add(Flag{"lr-rampdown",
             "both learning rates fall linearly to 0 over this last fraction of --kimg (0: constant rates)",
             "the config's", false, [&](auto v) { o.lr_rampdown = cli::to_double_in("lr-rampdown", v, 0, 1); }});
  p.add(Flag{"pl-weight", "path-length regularization weight (0: off)", "the config's", false,
             [&](auto v) { o.pl_weight = cli::to_double_in("pl-weight", v, 0, 1e6); }});
  p.add(Flag{"mixing", "style-mixing probability", "the config's", false,
             [&](auto v) { o.style_mixing = cli::to_double_in("mixing", v, 0, 1); }});
  p.add(Flag{"cbase", "channel base: channels at resolution r are min(cbase / r, cmax)", "the config's", false,
             [&](auto v) { o.channel_base = cli::to_int_in("cbase", v, 1, 1 << 24); }});
  p.add(Flag{"cmax", "most channels of any layer", "the config's", false,
             [&](auto v) { o.channel_max = cli::to_int_in("cmax", v, 1, 1 << 16); }});
  p.add(Flag{"map", "mapping network depth (layers)", "the config's", false,
             [&](auto v) { o.mapping_layers = cli::to_int_in("map", v, 1, 64); }});
  p.add(Flag{"map-lr", "G's mapping-network learning-rate multiplier (ada: 0.01)", "the config's", false,
             [&](auto v) { o.mapping_lr_mul = cli::to_double_in("map-lr", v, 1e-4, 1); }});
  p.add(Flag{"dmap", "the conditional D's label-mapping depth (layers after its embedding; ada: 8)", "the config's",
             false, [&](auto v) { o.cmap_layers = cli::to_int_in("dmap", v, 0, 64); }});
  p.add(Flag{"mbstd-group", "minibatch-stddev group size (divides --batch)", "the config's", false,
             [&](auto v) { o.mbstd_group = cli::to_int_in("mbstd-group", v, 1, 4096); }});
  o.cond = -1;  // the default: conditional when the dataset has labels and the config can be
  p.add(Flag{"cond",
             "class-conditional G and D on the dataset's labels (idx files with their label files, CIFAR-10 batches)",
             "on when the dataset has labels (not for seed32 / --schedule notebook); --cond=0: off", true,
             [&](auto v) { o.cond = cli::to_bool("cond", v) ? 1 : 0; }});
  p.add(Flag{"kimg", "training length in thousands of real images", "64", false,
             [&](auto v) { o.kimg = cli::to_double_in("kimg", v, 1e-3, 1e7); }});
  p.add(Flag{"tick", "progress / log interval in kimg", "0.5", false,
             [&](auto v) { o.tick_kimg = cli::to_double_in("tick", v, 1e-3, 1e7); }});
  p.add(Flag{"snap", "snapshot and sample-grid interval in ticks (0: only at the end)", "4", false,
             [&](auto v) { o.snap = cli::to_int_in("snap", v, 0, 1000000); }});
  p.add(Flag{"seed", "random seed (weights, latents, noise, data order)", "0", false,
             [&](auto v) { o.seed = (uint64_t)cli::to_int_in("seed", v, 0, INT64_MAX); }});
  p.add(Flag{"mirror", "augment with x-flips", "off", true, [&](auto v) { o.mirror = cli::to_bool("mirror", v); }});
  p.add(Flag{"device", "cpu or cuda", "cpu", false, [&](auto v) {
               SG_CHECK(v == "cpu" || v == "cuda", "--device", "expected cpu or cuda, got '", v, "'");
               o.device = v;
             }});
  p.add(Flag{"precision",
             "CUDA convolutions and matmuls: f32 (exact f32 FMA), tf32 or bf16 (tensor cores, f32 accumulation; "
             "engine/device.h), bf16-mixed (bf16 at the 4 highest resolutions, conv_clamp 256, f32 elsewhere)",
             "auto: tf32 with --device cuda, else f32", false, [&](auto v) {
               SG_CHECK(v == "auto" || v == "f32" || v == "tf32" || v == "bf16" || v == "bf16-mixed", "--precision",
                        "expected auto, f32, tf32, bf16 or bf16-mixed, got '", v, "'");
               o.precision = v;
             }});
  p.add(Flag{"cuda-graph",
             "with --device cuda: capture each kind of optimizer step into a CUDA graph once and replay it "
             "(stylegan2 schedule, unconditional; the same numbers)",
             "off", true, [&](auto v) { o.cuda_graph = cli::to_bool("cuda-graph", v); }});
  p.add(Flag{"resume", "continue from a run directory or a network-snapshot file (with its training state)", "", false,
             [&](auto v) { o.resume = v; }});
  p.add(Flag{"resume-changed", "with --resume: continue although --data, --seed or --mirror differ", "off", true,
             [&](auto v) { o.resume_changed = cli::to_bool("resume-changed", v); }});
  p.add(Flag{"dry-run", "print the resolved options and exit", "off", true,
             [&](auto v) { o.dry_run = cli::to_bool("dry-run", v); }});
  p.add(Flag{"resolution", "image resolution (power of two, 8..1024)", "32; 256 for paper256", false, [&](auto v) {
               o.resolution = cli::to_int_in("resolution", v, 8, 1024);
               SG_CHECK((o.resolution & (o.resolution - 1)) == 0, "--resolution",
                        "expected a power of two in [8, 1024], got '", v, "'");
             }});
  p.add(Flag{"channels", "image channels, 1 or 3", "1 for idx files, else 3", false, [&](auto v) {
               o.channels = cli::to_int_in("channels", v, 1, 3);
               SG_CHECK(o.channels != 2, "--channels", "expected 1 or 3, got '", v, "'");
             }});
  p.add(Flag{"threads", "CPU threads", "all cores", false,
             [&](auto v) { o.threads = (int)cli::to_int_in("threads", v, 1, 1024); }});
  p.add(Flag{"tensorboard", "write TensorBoard event files into the run directory (--tensorboard=0: off)", "on", true,
             [&](auto v) { o.tensorboard = cli::to_bool("tensorboard", v); }});
  p.add(Flag{"name", "run name", "<dataset>-<cfg>", false, [&](auto v) { o.name = v; }});
  o.metrics = -1;  // the default: every kDefaultMetricsTicks ticks when the dataset has labels
  p.add(Flag{"metrics",
             "metrics (FD, classifier score, coverage; docs/metrics.md) every N ticks and at the end; 0: off",
             std::to_string(train::kDefaultMetricsTicks) + " when the dataset has labels", false,
             [&](auto v) { o.metrics = cli::to_int_in("metrics", v, 0, 1000000); }});
  p.add(Flag{"metrics-num", "samples per metrics evaluation", "5000", false,
             [&](auto v) { o.metrics_num = cli::to_int_in("metrics-num", v, 2, 10000000); }});
  p.add(Flag{"classifier", "the metrics' classifier: loaded if present, else trained and saved there",
             "<outdir>/classifier-<dataset>-<R>x<C>.safetensors", false, [&](auto v) { o.classifier = v; }});
  try {
    if (!p.parse(argc, argv)) return 0;
    return train::run_training(o);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "stylegan2-train: error: out of memory (a smaller --batch or resolution may fit)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stylegan2-train: error: %s\n", e.what());
    return 1;
  }
}
