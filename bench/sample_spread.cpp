// sample_spread: how different a snapshot's samples are from one another. A generator that
// gives the same image for every latent (a collapse) has a per-pixel spread of 0.
//
// For --num latents z ~ N(0, I) (Philox, --seed), with no truncation and the constant noise:
//   pixel_std   the standard deviation of each pixel across the samples, averaged over the
//               pixels (images in [-1, 1]); pixel_std_max its largest value
//   w_std       the same for w, the mapping's output (per w dimension, averaged), and w_rms
//               the size of w itself, so w_std / w_rms says how much w depends on z
//   img_mean    the mean pixel value of all samples
// Usage: build/sample_spread --network runs/.../network-snapshot-N.safetensors
//                            [--num 500] [--seed 0] [--net G_ema|G] [--batch 50] [--threads N]
// Output: one line of JSON with the network, its kimg and the values above.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "train/cli.h"
#include "train/snapshot.h"

using namespace sg;

namespace {

// Mean over the columns of each column's standard deviation across the rows of x [N, K].
double mean_column_std(const std::vector<double>& x, int64_t n, int64_t k, double* max_std) {
  double total = 0, biggest = 0;
  for (int64_t j = 0; j < k; ++j) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i * k + j];
    const double m = s / (double)n;
    for (int64_t i = 0; i < n; ++i) s2 += (x[i * k + j] - m) * (x[i * k + j] - m);
    const double sd = std::sqrt(s2 / (double)n);
    total += sd;
    biggest = std::max(biggest, sd);
  }
  if (max_std) *max_std = biggest;
  return total / (double)k;
}

}  // namespace

int main(int argc, char** argv) {
  std::string network, net = "G_ema";
  int64_t num = 500, batch = 50;
  uint64_t seed = 0;
  cli::Parser p("sample_spread", "Per-pixel and per-w-dimension spread of a snapshot's samples across latents.");
  using cli::Flag;
  p.add(Flag{"network", "network-snapshot-*.safetensors (required)", "", false, [&](auto v) { network = v; }});
  p.add(Flag{"num", "latents", "500", false, [&](auto v) { num = cli::to_int_in("num", v, 2, 1000000); }});
  p.add(Flag{"seed", "seed of the latents", "0", false,
             [&](auto v) { seed = (uint64_t)cli::to_int_in("seed", v, 0, INT64_MAX); }});
  p.add(Flag{"net", "G_ema or G", "G_ema", false, [&](auto v) {
               SG_CHECK(v == "G_ema" || v == "G", "--net", "expected G_ema or G, got '", v, "'");
               net = v;
             }});
  p.add(
      Flag{"batch", "latents per forward", "50", false, [&](auto v) { batch = cli::to_int_in("batch", v, 1, 4096); }});
  p.add(Flag{"threads", "CPU threads", "all cores", false,
             [&](auto v) { set_cpu_threads((int)cli::to_int_in("threads", v, 1, 1024)); }});
  try {
    if (!p.parse(argc, argv)) return 0;
    SG_CHECK(!network.empty(), "sample_spread", "--network is required");
    std::map<std::string, std::string> meta;
    train::Networks nets = train::load_snapshot(network, &meta);
    models::Generator& G = net == "G" ? *nets.G : *nets.G_ema;
    NoGradGuard ng;
    Rng zr(seed), nr(seed + 1);
    Tensor z = randn({num, nets.cfg.z_dim}, zr, DType::f32);
    std::vector<Tensor> imgs, ws;
    for (int64_t i = 0; i < num; i += batch) {
      Tensor w = G.mapping(slice(z, 0, i, std::min(num, i + batch)), 1.0, false);
      imgs.push_back(G.synthesis(w, models::NoiseMode::constant, nr));
      ws.push_back(squeeze(slice(w, 1, 0, 1), 1));
    }
    const Tensor img = cat(imgs, 0), w = cat(ws, 0);
    const int64_t npix = img.numel() / num, wdim = w.size(1);
    const std::vector<double> iv = img.to_vector(), wv = w.to_vector();
    double pix_max = 0, img_sum = 0, w_sq = 0;
    const double pix_std = mean_column_std(iv, num, npix, &pix_max), w_std = mean_column_std(wv, num, wdim, nullptr);
    for (double v : iv) img_sum += v;
    for (double v : wv) w_sq += v * v;
    std::printf(
        "{\"network\": \"%s\", \"net\": \"%s\", \"kimg\": %s, \"num\": %lld, \"pixel_std\": %.6g, \"pixel_std_max\": "
        "%.6g, \"w_std\": %.6g, \"w_rms\": %.6g, \"img_mean\": %.6g}\n",
        network.c_str(), net.c_str(), meta.count("kimg") ? meta.at("kimg").c_str() : "null", (long long)num, pix_std,
        pix_max, w_std, std::sqrt(w_sq / (double)wv.size()), img_sum / (double)iv.size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sample_spread: error: %s\n", e.what());
    return 1;
  }
}
