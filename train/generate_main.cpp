// stylegan2-generate: renders images from a network snapshot (G_ema): one PNG per seed and a
// grid; a style-mixing grid (row seeds x column seeds, the column's styles on a layer range);
// interpolation frames in W between seeds.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <new>

#include "engine/ops.h"
#include "train/cli.h"
#include "train/batch_loader.h"
#include "train/image_io.h"
#include "train/snapshot.h"

using namespace sg;
using models::NoiseMode;

namespace {

struct Opts {
  std::string network, outdir = "out", noise = "const";
  std::vector<int64_t> seeds = {0, 1, 2, 3, 4, 5, 6, 7};
  double trunc = 1.0;
  std::vector<int64_t> mix_rows, mix_cols, mix_layers, interp;
  int64_t frames = 16;
  int64_t cls = -1;  // --class (conditional networks)
};

Tensor z_for_seed(int64_t seed, int64_t z_dim) {
  Rng r((uint64_t)seed);
  return randn({1, z_dim}, r);
}

void save(const std::string& path, const Tensor& imgs, int64_t nrow) {
  data::Image g = data::make_grid(imgs, nrow, imgs.size(0) == 1 ? 0 : 2);
  data::write_png(path, g.pixels.data(), g.w, g.h, g.channels);
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  cli::Parser p("stylegan2-generate", "Renders images from a stylegan2-train network snapshot (its G_ema).");
  using cli::Flag;
  p.add(Flag{"network", "network-snapshot-*.safetensors (required)", "", false, [&](auto v) { o.network = v; }});
  p.add(Flag{"seeds", "latent seeds, e.g. 0-63 or 1,5,9", "0-7", false,
             [&](auto v) { o.seeds = cli::to_range_list("seeds", v); }});
  p.add(Flag{"trunc", "truncation psi (1: none)", "1", false,
             [&](auto v) { o.trunc = cli::to_double_in("trunc", v, -10, 10); }});
  p.add(Flag{"noise-mode", "const, random or none", "const", false, [&](auto v) { o.noise = v; }});
  p.add(Flag{"outdir", "output folder", "out", false, [&](auto v) { o.outdir = v; }});
  p.add(Flag{"mix-rows", "style mixing: row seeds (their coarse styles)", "", false,
             [&](auto v) { o.mix_rows = cli::to_range_list("mix-rows", v); }});
  p.add(Flag{"mix-cols", "style mixing: column seeds", "", false,
             [&](auto v) { o.mix_cols = cli::to_range_list("mix-cols", v); }});
  p.add(Flag{"mix-layers", "style mixing: layers taken from the column seed", "0-3", false,
             [&](auto v) { o.mix_layers = cli::to_range_list("mix-layers", v); }});
  p.add(Flag{"interp", "interpolate in W through these seeds", "", false,
             [&](auto v) { o.interp = cli::to_range_list("interp", v); }});
  p.add(Flag{"class", "a conditional network's (--cond) class for every image", "seed mod the number of classes", false,
             [&](auto v) { o.cls = cli::to_int_in("class", v, 0, 1 << 16); }});
  p.add(Flag{"frames", "interpolation frames between consecutive seeds", "16", false,
             [&](auto v) { o.frames = cli::to_int_in("frames", v, 1, 100000); }});
  try {
    if (!p.parse(argc, argv)) return 0;
    SG_CHECK(!o.network.empty(), "stylegan2-generate", "--network is required (see --help)");
    const NoiseMode nm = models::parse_noise_mode("stylegan2-generate: --noise-mode", o.noise);
    NoGradGuard ng;
    train::Networks nets = train::load_snapshot(o.network);
    if (std::string bad = train::first_non_finite(nets); !bad.empty())
      throw Error(str("stylegan2-generate: '", o.network, "' holds non-finite values (tensor ", bad,
                      "): the run diverged before this snapshot; use an earlier one"));
    models::Generator& G = *nets.G_ema;
    const int64_t z_dim = G.config().z_dim, num_ws = G.num_ws(), c_dim = G.config().c_dim;
    SG_CHECK(c_dim > 0 || o.cls < 0, "stylegan2-generate", "--class ", o.cls, ": '", o.network,
             "' is unconditional (trained without --cond)");
    SG_CHECK(o.cls < c_dim || c_dim == 0, "stylegan2-generate", "--class ", o.cls, " is not one of the network's ",
             c_dim, " classes (0..", c_dim - 1, ")");
    if (c_dim > 0 && o.cls < 0)
      std::printf(
          "stylegan2-generate: a class-conditional network (%lld classes): seed s draws class s mod %lld "
          "(--class K: class K for every seed)\n",
          (long long)c_dim, (long long)c_dim);
    auto label_for = [&](int64_t seed) {  // [1, c_dim] one-hot, or undefined
      return c_dim == 0 ? Tensor() : data::one_hot({o.cls >= 0 ? o.cls : seed % c_dim}, c_dim);
    };
    // Every request is checked before the first image is written.
    const bool mixing = !o.mix_rows.empty() || !o.mix_cols.empty();
    if (mixing) {
      SG_CHECK(!o.mix_rows.empty() && !o.mix_cols.empty(), "stylegan2-generate",
               "style mixing needs both --mix-rows and --mix-cols (got only --",
               o.mix_rows.empty() ? "mix-cols" : "mix-rows", ")");
      if (o.mix_layers.empty()) o.mix_layers = {0, 1, 2, 3};
      for (auto l : o.mix_layers)
        SG_CHECK(l >= 0 && l < num_ws, "stylegan2-generate", "--mix-layers: layer ", l, " is outside 0..", num_ws - 1,
                 " (this ", G.config().resolution, "px network has ", num_ws, " style layers)");
    }
    SG_CHECK(o.interp.empty() || o.interp.size() >= 2, "stylegan2-generate",
             "--interp needs at least two seeds to interpolate between, got ", o.interp.size());
    std::filesystem::create_directories(o.outdir);
    Rng noise_rng(0);
    auto ws_for = [&](int64_t seed) {
      Tensor ws = G.mapping(z_for_seed(seed, z_dim), label_for(seed), o.trunc, false);
      SG_CHECK(train::all_finite(ws), "stylegan2-generate", "seed ", seed, " maps to non-finite latents (w) in '",
               o.network, "'");
      return ws;
    };

    std::vector<Tensor> imgs;
    for (int64_t s : o.seeds) {
      Tensor img = G.synthesis(ws_for(s), nm, noise_rng);
      char name[64];
      std::snprintf(name, sizeof name, "/seed%04lld.png", (long long)s);
      save(o.outdir + name, img, 1);
      imgs.push_back(img);
    }
    save(o.outdir + "/grid.png", cat(imgs, 0), (int64_t)std::ceil(std::sqrt((double)imgs.size())));
    std::printf("stylegan2-generate: %zu images and grid.png in %s\n", imgs.size(), o.outdir.c_str());

    if (mixing) {
      // Row 0: blank corner then the column images; each next row: the row image, then mixes.
      const int64_t C = G.config().img_channels, R = G.config().resolution;
      std::vector<Tensor> cells = {full({1, C, R, R}, -1.0)};
      for (int64_t c : o.mix_cols) cells.push_back(G.synthesis(ws_for(c), nm, noise_rng));
      for (int64_t r : o.mix_rows) {
        Tensor wr = ws_for(r);
        cells.push_back(G.synthesis(wr, nm, noise_rng));
        for (int64_t c : o.mix_cols) {
          Tensor wc = ws_for(c);
          std::vector<Tensor> layers;
          for (int64_t l = 0; l < num_ws; ++l) {
            bool from_col = std::find(o.mix_layers.begin(), o.mix_layers.end(), l) != o.mix_layers.end();
            layers.push_back(slice(from_col ? wc : wr, 1, l, l + 1));
          }
          cells.push_back(G.synthesis(cat(layers, 1), nm, noise_rng));
        }
      }
      save(o.outdir + "/stylemix.png", cat(cells, 0), (int64_t)o.mix_cols.size() + 1);
      std::printf("stylegan2-generate: stylemix.png (%zu x %zu)\n", o.mix_rows.size(), o.mix_cols.size());
    }

    if (!o.interp.empty()) {
      std::vector<Tensor> all;
      int64_t k = 0;
      for (size_t i = 0; i + 1 < o.interp.size(); ++i) {
        Tensor a = ws_for(o.interp[i]), b = ws_for(o.interp[i + 1]);
        for (int64_t f = 0; f < o.frames; ++f) {
          Tensor img = G.synthesis(lerp(a, b, (double)f / (double)o.frames), nm, noise_rng);
          char name[64];
          std::snprintf(name, sizeof name, "/frame%04lld.png", (long long)k++);
          save(o.outdir + name, img, 1);
          all.push_back(img);
        }
      }
      save(o.outdir + "/interp.png", cat(all, 0), o.frames);
      std::printf("stylegan2-generate: %lld interpolation frames and interp.png\n", (long long)k);
    }
    return 0;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "stylegan2-generate: error: out of memory (a smaller --batch or resolution may fit)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stylegan2-generate: error: %s\n", e.what());
    return 1;
  }
}
