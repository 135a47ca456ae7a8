// stylegan2-train --schedule: the seed notebook's loop as data (which phases run at which
// minibatch, grouped into which optimizer steps, with which weights), its simplified path-length
// penalty against a hand computation, and resume refusing another schedule.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "train/loss.h"
#include "train/snapshot.h"
#include "train/training_loop.h"
#include "train_util.h"

using namespace sg;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using train::Schedule;

namespace {

// "Dmain+Dreg Gmain" for the optimizer steps of one minibatch.
std::string steps_text(const std::vector<train::Phase>& phases, int64_t batch_idx) {
  std::string s;
  for (const auto& group : train::steps_at(phases, batch_idx)) {
    s += s.empty() ? "" : " ";
    for (size_t i = 0; i < group.size(); ++i) s += (i ? "+" : "") + group[i]->name;
  }
  return s;
}

// The tiny networks of the training tests (small, 8x8, one channel) and their losses.
struct TinyLoss {
  models::Config cfg;
  train::Networks nets;
  Adam opt_G, opt_D;
  train::StyleGAN2Loss loss;
  TinyLoss(Schedule s)
      : cfg([&] {
          models::Config c = models::make_config("small", 8, 1);
          train::apply_schedule(c, s);
          return c;
        }()),
        nets(train::make_networks(cfg, 1)),
        opt_G(nets.G->parameters().params),
        opt_D(nets.D->parameters().params),
        loss(*nets.G, *nets.D, cfg, cfg.gamma, s) {}
};

}  // namespace

TEST_CASE("schedule: auto, the notebook's hyperparameters and its phases as data", "[train][schedule]") {
  CHECK(train::resolve_schedule("auto", "seed32") == Schedule::notebook);
  CHECK(train::resolve_schedule("auto", "small") == Schedule::stylegan2);
  CHECK(train::resolve_schedule("auto", "paper256") == Schedule::stylegan2);
  CHECK(train::resolve_schedule("notebook", "small") == Schedule::notebook);
  CHECK(train::resolve_schedule("stylegan2", "seed32") == Schedule::stylegan2);
  REQUIRE_THROWS_WITH(train::resolve_schedule("paper", "small"), Contains("--schedule") && Contains("'paper'"));

  // stylegan2 leaves a config alone; notebook puts the notebook's values on it.
  const models::Config before = models::make_config("small", 8, 1);
  models::Config c = before;
  train::apply_schedule(c, Schedule::stylegan2);
  CHECK((c.lr_g == before.lr_g && c.r1_interval == before.r1_interval && c.pl_interval == before.pl_interval &&
         c.style_mixing_prob == before.style_mixing_prob && c.ema_kimg == before.ema_kimg && c.gamma == before.gamma));
  train::apply_schedule(c, Schedule::notebook);
  CHECK(c.lr_g == 2e-4);
  CHECK(c.lr_d == 2e-4);
  CHECK((c.beta1 == 0.0 && c.beta2 == 0.99));
  CHECK(c.gamma == 0.5);
  CHECK(c.r1_interval == 64);
  CHECK((c.pl_interval == 16 && c.pl_weight == 1.0 && c.pl_decay == 0.01 && c.pl_batch_shrink == 1));
  CHECK(c.style_mixing_prob == 0.0);
  CHECK(c.ema_kimg == 0.0);
  CHECK(c.batch == 32);
  // The notebook's Adam: no lazy correction (interval 0).
  const AdamConfig a = train::lazy_adam(2e-4, 0.0, 0.99, 0);
  CHECK((a.lr == 2e-4 && a.beta1 == 0.0 && a.beta2 == 0.99));

  TinyLoss nb(Schedule::notebook);
  const auto& p = nb.loss.phases(nb.opt_G, nb.opt_D);
  REQUIRE(p.size() == 4);
  CHECK((p[0].name == "Dmain" && p[0].interval == 1 && !p[0].joins_previous && p[0].opt == &nb.opt_D));
  CHECK((p[1].name == "Dreg" && p[1].interval == 64 && p[1].joins_previous && p[1].opt == &nb.opt_D));
  CHECK((p[2].name == "Gmain" && p[2].interval == 1 && !p[2].joins_previous && p[2].opt == &nb.opt_G));
  CHECK((p[3].name == "Greg" && p[3].interval == 16 && p[3].joins_previous && p[3].opt == &nb.opt_G));
  // One D step, then one G step, per minibatch; the regularizers ride in them.
  CHECK(steps_text(p, 0) == "Dmain+Dreg Gmain+Greg");
  CHECK(steps_text(p, 1) == "Dmain Gmain");
  CHECK(steps_text(p, 16) == "Dmain Gmain+Greg");
  CHECK(steps_text(p, 48) == "Dmain Gmain+Greg");
  CHECK(steps_text(p, 64) == "Dmain+Dreg Gmain+Greg");
  CHECK(steps_text(p, 65) == "Dmain Gmain");

  // stylegan2-ada's: each phase its own step, G first, R1 every 16, path length every 4.
  TinyLoss ada(Schedule::stylegan2);
  const auto& q = ada.loss.phases(ada.opt_G, ada.opt_D);
  CHECK(steps_text(q, 0) == "Gmain Greg Dmain Dreg");
  CHECK(steps_text(q, 4) == "Gmain Greg Dmain");
  CHECK(steps_text(q, 5) == "Gmain Dmain");
  CHECK(steps_text(q, 16) == "Gmain Greg Dmain Dreg");
}

TEST_CASE("schedule: the notebook's path-length penalty against a hand computation", "[train][schedule]") {
  TinyLoss nb(Schedule::notebook);
  // img[n, 0, 0, k] = a_k * (ws[n, 0, k] + ws[n, 1, k]): 2 images of 1x1x2 from 2 ws of 2 dims.
  // d sum(img * y) / d w_n (the one w, read by both layers) = 2 a_k y[n, k].
  Tensor a = from_vector({0.5, -1.5}, {2}).set_requires_grad(true);
  Tensor ws = from_vector({0.1, 0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8}, {2, 2, 2}).set_requires_grad(true);
  auto image = [&] { return reshape(mul(sum(ws, {1}), a), {2, 1, 1, 2}); };
  // y ~ N(0, 1 / (C H W)) from the same stream the penalty draws from.
  auto pl_by_hand = [&](uint64_t seed, std::vector<double>* dpl_da) {
    Rng r(seed);
    const std::vector<double> y = randn({2, 1, 1, 2}, r).to_vector();
    const std::vector<double> av = a.to_vector();
    double pl = 0;
    if (dpl_da) dpl_da->assign(2, 0.0);
    for (int n = 0; n < 2; ++n) {
      double sq = 0;
      for (int k = 0; k < 2; ++k) sq += std::pow(2 * av[k] * y[n * 2 + k] / std::sqrt(2.0), 2);
      pl += std::sqrt(sq) / 2;
      for (int k = 0; k < 2 && dpl_da; ++k)
        (*dpl_da)[k] += 4 * av[k] * std::pow(y[n * 2 + k] / std::sqrt(2.0), 2) / std::sqrt(sq) / 2;
    }
    return pl;
  };

  // First call: pl_mean is unset (0), becomes pl, the penalty is 0.
  REQUIRE(nb.loss.pl_mean == 0);
  Rng r1(7);
  Tensor pen1 = nb.loss.notebook_pl_penalty(image(), ws, r1);
  const double pl1 = pl_by_hand(7, nullptr);
  CHECK(pen1.item() == Approx(0).margin(1e-12));
  CHECK(nb.loss.pl_mean == Approx(pl1).epsilon(1e-5));

  // Second call: (pl2 - pl1)^2, then pl_mean lerps by 0.01; its gradient reaches a through the
  // inner gradient (create_graph): d pen / d a = 2 (pl2 - pl1) d pl2 / d a.
  Rng r2(8);
  Tensor pen2 = nb.loss.notebook_pl_penalty(image(), ws, r2);
  std::vector<double> dpl_da;
  const double pl2 = pl_by_hand(8, &dpl_da);
  REQUIRE(std::abs(pl2 - pl1) > 1e-3);
  CHECK(pen2.item() == Approx((pl2 - pl1) * (pl2 - pl1)).epsilon(1e-4));
  CHECK(nb.loss.pl_mean == Approx(pl1 + 0.01 * (pl2 - pl1)).epsilon(1e-5));
  const std::vector<double> g = autograd::grad({pen2}, {a})[0].to_vector();
  for (int k = 0; k < 2; ++k) CHECK(g[k] == Approx(2 * (pl2 - pl1) * dpl_da[k]).epsilon(1e-3));
}

TEST_CASE("schedule: a notebook run trains, keeps its schedule, and resume refuses another", "[train][schedule]") {
  fs::path root = testing::scratch_dir("sg_test_schedule_", "resume");
  fs::path data = testing::make_image_folder(root / "data");
  train::TrainOptions o = testing::tiny(data, root / "nb", 0.008);  // 2 minibatches of 4: every phase at 0
  o.schedule = "notebook";
  std::string nb_run;
  REQUIRE(train::run_training(o, &nb_run) == 0);
  CHECK_THAT(testing::read_all(fs::path(nb_run) / "options.json"), Contains("\"schedule\": \"notebook\""));
  const std::string log = testing::read_all(fs::path(nb_run) / "log.jsonl");
  CHECK_THAT(log, Contains("\"r1_penalty\"") && Contains("\"loss/G_pl\"") && Contains("\"pl_mean\""));
  CHECK(log.find("null") == std::string::npos);
  // No EMA in the notebook: G_ema is G.
  std::map<std::string, Tensor> t;
  for (auto& [n, v] : io::load_safetensors((fs::path(nb_run) / "network-snapshot-000000008.safetensors").string()))
    t[n] = v;
  int compared = 0;
  for (auto& [n, v] : t)
    if (n.rfind("G.", 0) == 0 && t.count("G_ema." + n.substr(2))) {
      CHECK(v.to_vector() == t["G_ema." + n.substr(2)].to_vector());
      ++compared;
    }
  CHECK(compared > 10);

  // The same schedule continues; another is an error naming both, whichever way round.
  train::TrainOptions more = testing::tiny(data, root / "nb", 0.016);
  more.resume = nb_run;
  more.schedule = "notebook";
  CHECK(train::run_training(more) == 0);
  more.schedule = "stylegan2";
  REQUIRE_THROWS_WITH(train::run_training(more),
                      Contains("--schedule notebook") && Contains("--schedule stylegan2") && Contains(nb_run));

  train::TrainOptions ada = testing::tiny(data, root / "ada", 0.004);
  std::string ada_run;
  REQUIRE(train::run_training(ada, &ada_run) == 0);
  CHECK_THAT(testing::read_all(fs::path(ada_run) / "options.json"), Contains("\"schedule\": \"stylegan2\""));
  train::TrainOptions back = testing::tiny(data, root / "ada", 0.008);
  back.resume = ada_run;
  back.schedule = "notebook";
  REQUIRE_THROWS_WITH(train::run_training(back), Contains("--schedule stylegan2") && Contains("--schedule notebook"));
  fs::remove_all(root);
}
