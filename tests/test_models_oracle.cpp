// PyTorch as an outside oracle for whole models. tests/oracle/make_fixtures.py (case "seed32")
// builds the seed 002 notebook's Generator and Discriminator in torch, as the notebook writes
// them, small (fmap 4, z 16, w 16, batch 4, float64), and stores their parameters under the
// notebook's state_dict names together with z, real images, fixed path-length noise and pl_ema,
// and the results. Here models::Generator / Discriminator (Arch::seed32, f64) get those
// parameters and must reproduce, to a relative error <= 1e-10:
//   mapping w (every ws entry), the image, D(image), D(reals),
//   R1 as the notebook: r1_grads = d sum D(reals) / d reals, r1 = mean_n |r1_grads_n|^2, and
//     d r1 / d(every D parameter)                                      (second order)
//   path length as the notebook: pl_grads = d sum(img * pl_noise) / d w, pl = mean_n |pl_grads_n|,
//     pl_pen = (pl - pl_ema)^2, and d pl_pen / d(every G parameter), through w into the mapping
//                                                                      (second order)
// The notebook feeds one w to every layer; our synthesis takes ws = w broadcast to num_ws
// entries, so d/dw is the sum over the ws entries of d/dws.
// Both modulated-conv paths (fused grouped conv and modulate-activations) are run, each with
// and without NoWeightGradientsGuard around the inner (create_graph) gradients, as the trainer
// uses it.
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "models/stylegan2.h"
#include "oracle_util.h"

using namespace sg;
using sg::oracle::Fixture;

namespace {

// Copies the fixture's "<prefix><name>" into every parameter of P (in place), and checks that
// the fixture holds exactly P's parameters under that prefix, with the same shapes.
void load_params(models::ParamList& P, const std::map<std::string, Tensor>& all, const std::string& prefix) {
  std::set<std::string> in_fixture, in_model;
  for (const auto& [k, t] : all)
    if (k.rfind(prefix, 0) == 0) in_fixture.insert(k.substr(prefix.size()));
  for (auto& [name, t] : P.params) {
    in_model.insert(name);
    auto it = all.find(prefix + name);
    INFO("parameter " << prefix << name);
    REQUIRE(it != all.end());
    const Tensor& src = it->second;
    REQUIRE(src.shape() == t.shape());
    REQUIRE(src.dtype() == DType::f64);
    REQUIRE(t.dtype() == DType::f64);
    std::memcpy(t.raw_data(), src.raw_data(), (size_t)t.numel() * sizeof(double));
  }
  CHECK(in_fixture == in_model);
}

}  // namespace

TEST_CASE("oracle: seed32 matches the notebook model", "[oracle][models]") {
  const DType dt = DType::f64;
  Fixture fx("seed32");
  const auto all = io::load_safetensors_map(fx.path());

  const Tensor z = fx.input("z", dt, false);
  const int64_t N = z.size(0);
  const int64_t fmap = fx["G.const"].size(1) / 4;  // const is [1, 4 fmap, 4, 4]
  models::Config c = models::make_config("seed32");
  c.dtype = dt;
  c.z_dim = z.size(1);
  c.w_dim = fx["w"].size(1);
  c.channel_base = 16 * fmap, c.channel_max = 4 * fmap;  // as make_config's seed32, fmap 96
  REQUIRE(c.mapping_layers == 4);
  REQUIRE(c.img_channels == fx["img"].size(1));

  for (bool fused : {false, true}) {
    c.fused_modconv = fused;
    for (bool guard : {false, true}) {
      INFO("fused_modconv=" << fused << ", NoWeightGradientsGuard on the inner gradients=" << guard);
      Rng rng(7);
      models::Generator G(c, rng);
      models::Discriminator D(c, rng);
      load_params(G.parameters(), all, "G.");
      load_params(D.parameters(), all, "D.");
      const auto G_params = G.parameters().tensors();
      const auto D_params = D.parameters().tensors();

      // Forward.
      Tensor ws = G.mapping(z);  // [N, num_ws, w_dim], w broadcast
      REQUIRE(ws.size(1) == G.num_ws());
      for (int64_t l = 0; l < G.num_ws(); ++l) {
        INFO("ws entry " << l);
        SG_ORACLE_CHECK(fx, "w", reshape(slice(ws, 1, l, l + 1), {N, c.w_dim}), dt);
      }
      Tensor img = G.synthesis(ws, models::NoiseMode::none, rng);
      SG_ORACLE_CHECK(fx, "img", img, dt);
      SG_ORACLE_CHECK(fx, "logits_fake", reshape(D.forward(img), {N}), dt);

      // R1 on the reals, and its gradient with respect to every D parameter.
      {
        Tensor x = fx.input("reals", dt);
        Tensor logits = D.forward(x);
        SG_ORACLE_CHECK(fx, "logits_real", reshape(logits, {N}), dt);
        Tensor r1_grads;
        {
          std::optional<NoWeightGradientsGuard> nw;
          if (guard) nw.emplace();
          r1_grads = autograd::grad({sum(logits)}, {x}, {}, /*create_graph=*/true)[0];
        }
        SG_ORACLE_CHECK(fx, "r1_grads", r1_grads, dt);
        Tensor r1 = mean(sum(square(reshape(r1_grads, {N, -1})), {1}));
        SG_ORACLE_CHECK(fx, "r1", r1, dt);
        auto d_r1 = autograd::grad({r1}, D_params, {}, false, /*allow_unused=*/true);
        for (size_t i = 0; i < d_r1.size(); ++i)
          SG_ORACLE_CHECK(fx, "d_r1_d_D." + D.parameters().params[i].first, d_r1[i], dt);
      }

      // Path length through the mapping, and its penalty's gradient w.r.t. every G parameter.
      {
        Tensor pl_noise = fx.input("pl_noise", dt, false);
        Tensor g_ws;
        {
          std::optional<NoWeightGradientsGuard> nw;
          if (guard) nw.emplace();
          g_ws = autograd::grad({sum(mul(img, pl_noise))}, {ws}, {}, /*create_graph=*/true)[0];
        }
        Tensor pl_grads = sum(g_ws, {1});  // d/dw = sum over the broadcast entries
        SG_ORACLE_CHECK(fx, "pl_grads", pl_grads, dt);
        Tensor pl = mean(sqrt(sum(square(pl_grads), {1})));
        SG_ORACLE_CHECK(fx, "pl", pl, dt);
        Tensor pl_pen = square(add(pl, -fx["pl_ema"].item()));
        SG_ORACLE_CHECK(fx, "pl_pen", pl_pen, dt);
        auto d_pl = autograd::grad({pl_pen}, G_params, {}, false, /*allow_unused=*/true);
        for (size_t i = 0; i < d_pl.size(); ++i)
          SG_ORACLE_CHECK(fx, "d_pl_pen_d_G." + G.parameters().params[i].first, d_pl[i], dt);
      }
    }
  }
}
