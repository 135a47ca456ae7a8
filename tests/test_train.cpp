// stylegan2-train and stylegan2-generate end to end on a tiny image folder: regularizers,
// finite losses, bit-exact resume, a snapshot read back by PyTorch, Ctrl-C, bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "train/image_io.h"
#include "train/snapshot.h"
#include "train/training_loop.h"
#include "train_util.h"

using namespace sg;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

fs::path scratch(const std::string& name) { return testing::scratch_dir("sg_test_train_", name); }
using testing::make_image_folder;
using testing::read_all;
using testing::tiny;

std::string last_snapshot(const std::string& run_dir) {
  std::string best;
  for (auto& e : fs::directory_iterator(run_dir)) {
    std::string n = e.path().filename().string();
    if (n.rfind("network-snapshot-", 0) == 0 && e.path().string() > best) best = e.path().string();
  }
  return best;
}

// The last snapshots of two runs, tensor by tensor: the same names, each tensor equal (a CHECK
// per tensor). Returns the number of elements compared.
int64_t check_same_last_snapshot(const std::string& run_a, const std::string& run_b) {
  auto a = io::load_safetensors_map(last_snapshot(run_a));
  auto b = io::load_safetensors_map(last_snapshot(run_b));
  REQUIRE(a.size() == b.size());
  int64_t compared = 0;
  for (auto& [name, t] : a) {
    INFO(name);
    REQUIRE(b.count(name));
    CHECK(t.to_vector() == b.at(name).to_vector());
    compared += t.numel();
  }
  return compared;
}

}  // namespace

TEST_CASE("training: a tiny run hits every regularizer with finite losses", "[train]") {
  fs::path root = scratch("reg");
  fs::path data = make_image_folder(root / "data");
  std::string run_dir;
  // 20 minibatches of 4: R1 at 0 and 16, path length every 4.
  REQUIRE(train::run_training(tiny(data, root / "runs", 0.080), &run_dir) == 0);
  std::string log = read_all(fs::path(run_dir) / "log.jsonl");
  CHECK_THAT(log, Contains("\"r1_penalty\"") && Contains("\"loss/G_pl\"") && Contains("\"loss/D\"") &&
                      Contains("\"loss/G\"") && Contains("\"pl_mean\""));
  CHECK(log.find("null") == std::string::npos);  // NaN / inf are written as null
  std::regex num("\"([a-z_/]+)\": (-?[0-9.e+-]+)");
  int values = 0;
  for (std::sregex_iterator it(log.begin(), log.end(), num), end; it != end; ++it, ++values)
    CHECK(std::isfinite(std::stod((*it)[2])));
  CHECK(values > 20);
  CHECK(fs::exists(fs::path(run_dir) / "options.json"));
  CHECK(fs::exists(fs::path(run_dir) / "reals.png"));
  CHECK(fs::exists(fs::path(run_dir) / "fakes000000080.png"));  // named by image count
  CHECK(fs::exists(fs::path(run_dir) / "training-state-000000080.safetensors"));
  std::string snap = last_snapshot(run_dir);
  REQUIRE(!snap.empty());

  // The snapshot, read back by PyTorch: names, shapes, finite values.
  auto tensors = io::load_safetensors(snap);
  std::ostringstream expected;
  expected << "{";
  for (size_t i = 0; i < tensors.size(); ++i) {
    expected << (i ? ", " : "") << "\"" << tensors[i].first << "\": [";
    for (size_t d = 0; d < tensors[i].second.shape().size(); ++d)
      expected << (d ? ", " : "") << tensors[i].second.shape()[d];
    expected << "]";
  }
  expected << "}";
  std::ofstream(root / "expected.json") << expected.str();
  CHECK(tensors.size() > 30);
  std::string cmd = std::string(SG_PYTHON) + " " + SG_SOURCE_DIR + "/tests/oracle/read_snapshot.py " + snap + " " +
                    (root / "expected.json").string();
  CHECK(std::system(cmd.c_str()) == 0);

  // stylegan2-generate renders from it: per-seed PNGs, a grid, style mixing, interpolation.
  fs::path out = root / "gen";
  std::string gen = std::string(SG_BIN_DIR) + "/stylegan2-generate --network " + snap +
                    " --seeds 0-3 --trunc 0.7 --outdir " + out.string() +
                    " --mix-rows 0,1 --mix-cols 2,3 --mix-layers 0-2 --interp 0,1 --frames 3 > /dev/null";
  REQUIRE(std::system(gen.c_str()) == 0);
  for (const char* f : {"seed0000.png", "seed0003.png", "grid.png", "stylemix.png", "interp.png", "frame0002.png"})
    CHECK(fs::exists(out / f));
  data::Image img = data::load_image((out / "seed0001.png").string());
  CHECK(img.w == 8);
  CHECK(img.h == 8);
  fs::remove_all(root);
}

TEST_CASE("training: resume continues bit-exactly", "[train]") {
  fs::path root = scratch("resume");
  fs::path data = make_image_folder(root / "data");
  std::string straight, first, second;
  REQUIRE(train::run_training(tiny(data, root / "a", 0.048), &straight) == 0);  // 12 steps
  REQUIRE(train::run_training(tiny(data, root / "b", 0.024), &first) == 0);     // 6 steps
  train::TrainOptions o = tiny(data, root / "b", 0.048);                        // 6 more
  o.resume = first;
  REQUIRE(train::run_training(o, &second) == 0);
  CHECK(check_same_last_snapshot(straight, second) > 1000);
  // The resumed run ended where the straight one did.
  CHECK(fs::path(last_snapshot(straight)).filename() == fs::path(last_snapshot(second)).filename());
  fs::remove_all(root);
}

TEST_CASE("training: --lr-rampdown takes both learning rates to 0 over the last fraction, and resumes exactly",
          "[train]") {
  using train::lr_rampdown_scale;
  CHECK(lr_rampdown_scale(0, 1000, 0.25) == 1.0);
  CHECK(lr_rampdown_scale(750, 1000, 0.25) == 1.0);
  CHECK(lr_rampdown_scale(875, 1000, 0.25) == Approx(0.5));
  CHECK(lr_rampdown_scale(1000, 1000, 0.25) == 0.0);
  CHECK(lr_rampdown_scale(1100, 1000, 0.25) == 0.0);
  CHECK(lr_rampdown_scale(999, 1000, 0.0) == 1.0);
  CHECK(lr_rampdown_scale(500, 1000, 1.0) == Approx(0.5));
  // 12 steps with the rates falling over the last half: straight, and 6 + 6 resumed, end equal;
  // and they differ from the run with constant rates (the steps after the first half moved less).
  fs::path root = scratch("rampdown");
  fs::path data = make_image_folder(root / "data");
  auto opts = [&](const char* dir, double kimg) {
    train::TrainOptions o = tiny(data, root / dir, kimg);
    o.lr_rampdown = 0.5;
    return o;
  };
  std::string straight, first, second, constant;
  REQUIRE(train::run_training(opts("a", 0.048), &straight) == 0);
  REQUIRE(train::run_training(tiny(data, root / "c", 0.048), &constant) == 0);
  train::TrainOptions o1 = opts("b", 0.024);
  o1.lr_rampdown = 0;  // the first 6 steps of a 12-step run with rampdown 0.5 have the full rates
  REQUIRE(train::run_training(o1, &first) == 0);
  train::TrainOptions o2 = opts("b", 0.048);
  o2.resume = first;
  REQUIRE(train::run_training(o2, &second) == 0);
  check_same_last_snapshot(straight, second);
  auto a = io::load_safetensors_map(last_snapshot(straight));
  auto c = io::load_safetensors_map(last_snapshot(constant));
  int64_t differ = 0;
  for (auto& [name, t] : a) differ += t.to_vector() != c.at(name).to_vector();
  CHECK(differ > 0);
  fs::remove_all(root);
}

// --cbase, --cmax, --map, --map-lr and --mbstd-group change the named config's architecture (the
// mapping's learning-rate multiplier sets how its weights are stored); the snapshot records
// them, so stylegan2-generate / -metrics and --resume rebuild the same networks.
TEST_CASE("training: architecture flags are recorded in the snapshot and checked on resume", "[train]") {
  fs::path root = scratch("arch");
  fs::path data = make_image_folder(root / "data");
  train::TrainOptions o = tiny(data, root / "runs", 0.008);
  o.channel_base = 64, o.channel_max = 12, o.mapping_layers = 1, o.mbstd_group = 2, o.mapping_lr_mul = 0.05;
  std::string run;
  REQUIRE(train::run_training(o, &run) == 0);
  std::map<std::string, std::string> meta;
  train::Networks nets = train::load_snapshot(last_snapshot(run), &meta);
  CHECK(nets.cfg.channel_base == 64);
  CHECK(nets.cfg.channel_max == 12);
  CHECK(nets.cfg.mapping_layers == 1);
  CHECK(nets.cfg.mapping_lr_mul == 0.05);
  CHECK(meta.at("mapping_lr_mul") == "0.05");
  CHECK(nets.cfg.mbstd_group == 2);
  CHECK(models::channels_at(nets.cfg, 4) == 12);  // min(64 / 4, 12)
  CHECK(models::channels_at(nets.cfg, 8) == 8);   // min(64 / 8, 12)
  CHECK(nets.G->parameters().count() == models::expected_param_count_G(nets.cfg));
  CHECK(nets.D->parameters().count() == models::expected_param_count_D(nets.cfg));
  models::Config plain = models::make_config("small", 8, 1);
  CHECK(nets.G->parameters().count() != models::expected_param_count_G(plain));
  CHECK_THAT(read_all(fs::path(run) / "options.json"),
             Contains("\"mapping_layers\": 1") && Contains("\"channel_base\": 64") && Contains("\"channel_max\": 12") &&
                 Contains("\"mbstd_group\": 2") && Contains("\"mapping_lr_mul\": 0.05"));
  // A snapshot written before these keys existed has the named config's architecture.
  // Their mapping had ada's multiplier, 0.01, whatever the config's default is now.
  meta.erase("channel_base"), meta.erase("channel_max"), meta.erase("mapping_layers"), meta.erase("mbstd_group");
  meta.erase("mapping_lr_mul");
  CHECK(train::snapshot_config(meta, "old.safetensors").channel_base == plain.channel_base);
  CHECK(train::snapshot_config(meta, "old.safetensors").mapping_lr_mul == 0.01);
  meta["mapping_lr_mul"] = "0.0x";
  CHECK_THROWS_WITH(train::snapshot_config(meta, "bad.safetensors"),
                    Contains("bad.safetensors") && Contains("'mapping_lr_mul' value '0.0x'"));
  // Resuming with another architecture names both; with the same one it continues.
  train::TrainOptions r = o;
  r.kimg = 0.016;
  r.resume = run;
  r.channel_max = 16;
  REQUIRE_THROWS_WITH(train::run_training(r), Contains("--cmax 12") && Contains("--cmax 16"));
  r.channel_max = 12;
  r.mapping_lr_mul = 0.5;
  REQUIRE_THROWS_WITH(train::run_training(r), Contains("--map-lr 0.05") && Contains("--map-lr 0.5"));
  r.mapping_lr_mul = -1;  // not given: the run's
  std::string more;
  CHECK(train::run_training(r, &more) == 0);
  CHECK(train::load_snapshot(last_snapshot(more)).cfg.mapping_lr_mul == 0.05);
  fs::remove_all(root);
}

TEST_CASE("training: Ctrl-C, SIGTERM and SIGHUP write a snapshot and exit cleanly", "[train]") {
  for (const char* sig : {"INT", "TERM", "HUP"}) {
    INFO("kill -" << sig);
    fs::path root = scratch(std::string("signal_") + sig);
    fs::path data = make_image_folder(root / "data");
    fs::path out = root / "runs";
    std::string bin = std::string(SG_BIN_DIR) + "/stylegan2-train";
    std::string cmd = "cd " + root.string() + " && (" + bin + " --data " + data.string() + " --outdir " + out.string() +
                      " --cfg small --resolution 8 --channels 1 --batch 4 --kimg 1000 --snap 0 > log.txt 2>&1 & pid=$!;"
                      " for i in $(seq 1 300); do ls " +
                      out.string() +
                      "/*/fakes_init.png >/dev/null 2>&1 && break; sleep 0.1; done;"
                      " sleep 0.5; kill -" +
                      sig + " $pid; wait $pid)";
    int rc = std::system(cmd.c_str());
    CHECK(WIFEXITED(rc));
    CHECK(WEXITSTATUS(rc) == 0);
    std::string log = read_all(root / "log.txt");
    CHECK_THAT(log, Contains(std::string("interrupted by SIG") + sig));
    bool found = false;
    for (auto& run : fs::directory_iterator(out)) found |= !last_snapshot(run.path().string()).empty();
    CHECK(found);
    fs::remove_all(root);
  }
}

TEST_CASE("training: bad flag values are refused up front, naming the flag, the value and the range", "[train]") {
  struct Bad {
    const char* flag;
    const char* value;
    const char* says;
  };
  const Bad cases[] = {{"batch", "0", "[1, 4096]"},
                       {"batch", "-8", "[1, 4096]"},
                       {"resolution", "0", "[8, 1024]"},
                       {"resolution", "48", "power of two"},
                       {"threads", "-2", "[1, 1024]"},
                       {"gamma", "-5", "finite number in [0"},
                       {"gamma", "nan", "finite number"},
                       {"snap", "-3", "[0, 1000000]"},
                       {"kimg", "inf", "finite number"},
                       {"tick", "inf", "finite number"},
                       {"channels", "2", "1 or 3"},
                       {"device", "gpu", "cpu or cuda"},
                       {"seed", "-1", "[0, "},
                       {"glr", "-0.1", "finite number in [0"},
                       {"ema", "nan", "finite number"},
                       {"mixing", "2", "[0, 1]"},
                       {"cbase", "0", "[1, "},
                       {"map", "0", "[1, 64]"},
                       {"map-lr", "0", "finite number in [0.0001, 1]"},
                       {"mbstd-group", "0", "[1, 4096]"}};
  fs::path root = scratch("badflags");
  const std::string bin = std::string(SG_BIN_DIR) + "/stylegan2-train";
  for (const Bad& b : cases) {
    INFO("--" << b.flag << " " << b.value);
    const fs::path out = root / "runs";
    std::string cmd = bin + " --outdir " + out.string() + " --" + b.flag + " " + b.value + " > " +
                      (root / "log.txt").string() + " 2>&1";
    int rc = std::system(cmd.c_str());
    CHECK(WIFEXITED(rc));
    CHECK(WEXITSTATUS(rc) == 1);
    const std::string log = read_all(root / "log.txt");
    CHECK_THAT(log, Contains(std::string("--") + b.flag) && Contains(b.value) && Contains(b.says));
    CHECK_FALSE(fs::exists(out));  // nothing written
  }
  const std::string gen = std::string(SG_BIN_DIR) + "/stylegan2-generate";
  for (const char* bad : {"--frames 0", "--trunc nan"}) {
    INFO(bad);
    int rc = std::system(
        (gen + " --network none.safetensors " + bad + " > " + (root / "log.txt").string() + " 2>&1").c_str());
    CHECK(WEXITSTATUS(rc) == 1);
    CHECK_THAT(read_all(root / "log.txt"), Contains(std::string(bad).substr(0, std::string(bad).find(' '))));
  }
  fs::remove_all(root);
}

TEST_CASE("training: resume takes only complete snapshots and refuses what would not continue exactly",
          "[train][errors]") {
  fs::path root = scratch("resume_safety");
  fs::path data = make_image_folder(root / "data");
  std::string r24, r48;
  REQUIRE(train::run_training(tiny(data, root / "a", 0.024), &r24) == 0);  // 6 steps: snapshot at 24 images
  REQUIRE(train::run_training(tiny(data, root / "b", 0.048), &r48) == 0);  // 12 steps: at 48 images
  const fs::path snap24 = last_snapshot(r24), snap48 = last_snapshot(r48);
  const fs::path state24 = fs::path(r24) / "training-state-000000024.safetensors";
  auto resume_from = [&](const fs::path& from, double kimg) {
    auto o = tiny(data, root / "resumed", kimg);
    o.resume = from.string();
    return o;
  };

  // A run directory: the newest complete pair; a newer network without its state is skipped.
  fs::path mixed = root / "mixed";
  fs::create_directories(mixed);
  fs::copy_file(snap24, mixed / "network-snapshot-000000024.safetensors");
  fs::copy_file(state24, mixed / "training-state-000000024.safetensors");
  fs::copy_file(snap48, mixed / "network-snapshot-000000048.safetensors");               // no state beside it
  std::ofstream(mixed / "network-snapshot-000000064.safetensors.tmp") << "half a file";  // kill -9 mid-write
  std::ofstream(mixed / "fakes000000064.png.tmp") << "half a file";
  // Already at 24 images of --kimg 0.024: nothing to do, and no new run directory.
  REQUIRE(train::run_training(resume_from(mixed, 0.024)) == 0);
  CHECK_FALSE(fs::exists(root / "resumed"));
  CHECK_FALSE(fs::exists(mixed / "network-snapshot-000000064.safetensors.tmp"));  // stale temporaries removed
  CHECK_FALSE(fs::exists(mixed / "fakes000000064.png.tmp"));

  // That stateless file named directly: refused, naming the complete one beside it.
  REQUIRE_THROWS_WITH(train::run_training(resume_from(mixed / "network-snapshot-000000048.safetensors", 1)),
                      Contains("no training state") && Contains("network-snapshot-000000024.safetensors"));
  // A mixed pair (the network of step 48 beside the state of step 24): refused.
  fs::copy_file(snap48, mixed / "network-snapshot-000000024.safetensors", fs::copy_options::overwrite_existing);
  REQUIRE_THROWS_WITH(train::run_training(resume_from(mixed / "network-snapshot-000000024.safetensors", 1)),
                      Contains("another step") && Contains("24 images") && Contains("48 images"));
  REQUIRE_THROWS_WITH(train::run_training(resume_from(mixed, 1)), Contains("holds no complete snapshot"));

  // A changed --seed would not continue the same data stream: refused unless asked.
  auto changed = resume_from(r24, 0.024);
  changed.seed = 6;
  REQUIRE_THROWS_WITH(train::run_training(changed), Contains("--seed 5") && Contains("--resume-changed"));
  changed.resume_changed = true;
  CHECK(train::run_training(changed) == 0);

  // A state whose counters are not counts: refused, naming the file and the key.
  std::map<std::string, std::string> meta;
  auto st = io::load_safetensors(state24.string(), &meta);
  meta["cur_nimg"] = "-64000";
  io::save_safetensors(state24.string(), st, meta);
  REQUIRE_THROWS_WITH(train::run_training(resume_from(r24, 1)),
                      Contains("training-state-000000024.safetensors") && Contains("cur_nimg") && Contains("-64000"));
  CHECK_FALSE(fs::exists(root / "resumed"));
  fs::remove_all(root);
}

TEST_CASE("training: a run that diverges stops before writing a non-finite snapshot", "[train][errors]") {
  fs::path root = scratch("nan");
  fs::path data = make_image_folder(root / "data");
  auto o = tiny(data, root / "runs", 0.2);
  o.snap = 1;                // a snapshot every tick (4 minibatches)
  o.test_nan_at_batch = 10;  // a G weight turns NaN before minibatch 10: the tick ending at 12 sees it
  std::string run_dir;
  REQUIRE_THROWS_WITH(train::run_training(o, &run_dir), Contains("diverged at kimg 0.048") && Contains(" is nan") &&
                                                            Contains("network-snapshot-000000032"));
  const std::string snap = last_snapshot(run_dir);
  REQUIRE(!snap.empty());
  std::map<std::string, std::string> meta;
  train::Networks nets = train::load_snapshot(snap, &meta);
  CHECK(train::first_non_finite(nets).empty());  // the snapshot on disk is the last good one
  CHECK(std::stod(meta.at("kimg")) == Approx(0.032));
  std::string log = read_all(fs::path(run_dir) / "log.jsonl");
  CHECK(log.find("null") != std::string::npos);  // the bad tick is logged (NaN as null) before stopping

  // stylegan2-generate refuses a snapshot with a NaN in it.
  auto tensors = io::load_safetensors(snap, &meta);
  for (auto& [name, t] : tensors)
    if (name.rfind("G_ema.", 0) == 0) {
      t = full(t.shape(), std::nan(""), t.dtype());
      break;
    }
  const fs::path bad = root / "nan-snapshot.safetensors";
  io::save_safetensors(bad.string(), tensors, meta);
  const std::string cmd = std::string(SG_BIN_DIR) + "/stylegan2-generate --network " + bad.string() + " --outdir " +
                          (root / "out").string() + " > " + (root / "gen.txt").string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  CHECK(WEXITSTATUS(rc) == 1);
  CHECK_THAT(read_all(root / "gen.txt"), Contains("non-finite") && Contains("G_ema."));
  CHECK_FALSE(fs::exists(root / "out" / "seed0000.png"));
  fs::remove_all(root);
}

TEST_CASE("training: bad input stops before training with a clear error", "[train][errors]") {
  fs::path root = scratch("bad");
  fs::path empty_dir = root / "empty";
  fs::create_directories(empty_dir);
  std::ofstream(empty_dir / "junk.png") << "garbage";
  REQUIRE_THROWS_WITH(train::run_training(tiny(empty_dir, root / "runs", 0.01)), Contains("empty"));
  fs::path data = make_image_folder(root / "data");
  auto o = tiny(data, root / "runs", 0.01);
  o.resolution = 12;
  REQUIRE_THROWS_WITH(train::run_training(o), Contains("12"));
  o = tiny(data, root / "runs", 0.01);
  o.cfg = "nonsense";
  REQUIRE_THROWS_WITH(train::run_training(o), Contains("nonsense") && Contains("small"));
  o = tiny(data, root / "runs", 0.01);
  o.resume = (root / "nowhere").string();
  REQUIRE_THROWS_WITH(train::run_training(o), Contains("nowhere"));
  o = tiny(root / "missing", root / "runs", 0.01);
  REQUIRE_THROWS_WITH(train::run_training(o), Contains("missing"));
  o = tiny(data, root / "runs", 0.01);
  o.batch = 6;  // minibatch stddev groups of 4
  REQUIRE_THROWS_WITH(train::run_training(o), Contains("divisible"));
  CHECK_FALSE(fs::exists(root / "runs"));  // nothing was created for a failed start
  fs::remove_all(root);
}

TEST_CASE("training: --dry-run prints the resolved options", "[train]") {
  std::string bin = std::string(SG_BIN_DIR) + "/stylegan2-train --dry-run --kimg 3 --seed 9 > " +
                    (fs::temp_directory_path() / "sg_dry.txt").string();
  REQUIRE(std::system(bin.c_str()) == 0);
  std::string s = read_all(fs::temp_directory_path() / "sg_dry.txt");
  CHECK_THAT(s, Contains("\"kimg\": 3") && Contains("\"seed\": 9") && Contains("\"cfg\": \"small\"") &&
                    Contains("fashion-mnist"));
  std::string help =
      std::string(SG_BIN_DIR) + "/stylegan2-train --help > " + (fs::temp_directory_path() / "sg_help.txt").string();
  REQUIRE(std::system(help.c_str()) == 0);
  std::string h = read_all(fs::temp_directory_path() / "sg_help.txt");
  for (const char* flag :
       {"--data",   "--outdir",     "--cfg",         "--batch",     "--gamma",  "--glr",   "--dlr",
        "--ema",    "--ema-rampup", "--lr-rampdown", "--pl-weight", "--mixing", "--cbase", "--cmax",
        "--map",    "--dmap",       "--mbstd-group", "--kimg",      "--snap",   "--seed",  "--mirror",
        "--device", "--precision",  "--resume",      "--dry-run"})
    CHECK_THAT(h, Contains(flag));
  CHECK_THAT(s, Contains("\"precision\": \"f32\""));
  CHECK_THAT(s, Contains("\"lr_g\": 0.0025, \"lr_d\": 0.0025") && Contains("\"ema_kimg\": 5,") &&
                    Contains("\"ema_rampup\": 0.05,") && Contains("\"lr_rampdown\": 0\n") &&
                    Contains("\"pl_weight\": 2,") && Contains("\"style_mixing_prob\": 0.9"));
  // The training hyperparameters override the config's, and options.json says so.
  const std::string hp = (fs::temp_directory_path() / "sg_dry_hp.txt").string();
  REQUIRE(std::system((std::string(SG_BIN_DIR) +
                       "/stylegan2-train --dry-run --glr 0.004 --dlr 0.003 --ema 2 --ema-rampup 0.1 --lr-rampdown 0.25 "
                       "--pl-weight 0 "
                       "--mixing 0.5 > " +
                       hp)
                          .c_str()) == 0);
  CHECK_THAT(read_all(hp), Contains("\"lr_g\": 0.004, \"lr_d\": 0.003") && Contains("\"ema_kimg\": 2,") &&
                               Contains("\"ema_rampup\": 0.1") && Contains("\"lr_rampdown\": 0.25") &&
                               Contains("\"pl_weight\": 0,") && Contains("\"style_mixing_prob\": 0.5"));
  // Reduced precision is for CUDA: on the CPU it is an error that names the flag.
  const std::string err = (fs::temp_directory_path() / "sg_dry_prec.txt").string();
  CHECK(std::system((std::string(SG_BIN_DIR) + "/stylegan2-train --dry-run --precision bf16 2> " + err).c_str()) != 0);
  CHECK_THAT(read_all(err), Contains("--precision bf16 is for --device cuda"));
  CHECK(std::system((std::string(SG_BIN_DIR) + "/stylegan2-train --dry-run --precision fp8 2> " + err).c_str()) != 0);
  CHECK_THAT(read_all(err), Contains("--precision") && Contains("expected auto, f32, tf32, bf16 or bf16-mixed"));
  CHECK(std::system(
            (std::string(SG_BIN_DIR) + "/stylegan2-train --dry-run --precision bf16-mixed 2> " + err).c_str()) != 0);
  CHECK_THAT(read_all(err), Contains("--precision bf16-mixed is for --device cuda"));
}

// kernels/cpu/parallel.h: SG_THREAD_WAIT selects how idle CPU threads wait ("auto" unless set).
TEST_CASE("training: SG_THREAD_WAIT picks the CPU threads' waiting, and a bad value is an error", "[train]") {
  const std::string out = (fs::temp_directory_path() / "sg_dry_wait.txt").string();
  const std::string err = (fs::temp_directory_path() / "sg_dry_wait_err.txt").string();
  const std::string bin = std::string(SG_BIN_DIR) + "/stylegan2-train --dry-run --threads 3 > " + out + " 2> " + err;
  REQUIRE(std::system(("env -u SG_THREAD_WAIT " + bin).c_str()) == 0);
  CHECK_THAT(read_all(out), Contains("\"thread_wait\": \"auto\"") && Contains("\"threads\": 3"));
  REQUIRE(std::system(("env SG_THREAD_WAIT=passive " + bin).c_str()) == 0);
  CHECK_THAT(read_all(out), Contains("\"thread_wait\": \"passive\""));
  REQUIRE(std::system(("env SG_THREAD_WAIT=spin " + bin).c_str()) == 0);
  CHECK_THAT(read_all(out), Contains("\"thread_wait\": \"spin\""));
  CHECK(std::system(("env SG_THREAD_WAIT=fast " + bin).c_str()) != 0);
  CHECK_THAT(read_all(err), Contains("SG_THREAD_WAIT='fast'") && Contains("'auto', 'spin' or 'passive'"));
}

TEST_CASE("training: bad snapshot metadata or file names give errors naming the file and the key", "[train][errors]") {
  fs::path root = scratch("badmeta");
  fs::path data = make_image_folder(root / "data");
  std::string run;
  REQUIRE(train::run_training(tiny(data, root / "a", 0.016), &run) == 0);
  const std::string snap = last_snapshot(run);
  std::map<std::string, std::string> meta;
  auto tensors = io::load_safetensors(snap, &meta);
  for (const char* bad : {"abc", "", "99999999999999999999", "-8"}) {
    INFO("resolution '" << bad << "'");
    auto m = meta;
    m["resolution"] = bad;
    const std::string f = (root / "network-snapshot-000000016.safetensors").string();
    io::save_safetensors(f, tensors, m);
    REQUIRE_THROWS_WITH(train::load_snapshot(f), Contains(f) && Contains("'resolution'") && Contains(bad));
  }
  // A file not named network-snapshot-<images>.safetensors has no training state beside it.
  fs::copy_file(snap, root / "model.safetensors");
  auto o = tiny(data, root / "b", 1);
  o.resume = (root / "model.safetensors").string();
  REQUIRE_THROWS_WITH(train::run_training(o), Contains("model.safetensors") && Contains("network-snapshot-"));
  // Unreadable state counters: the file and the key, not a bare std::stoll.
  for (const char* key : {"rng_seed", "loader_position", "batch"}) {
    INFO(key);
    const fs::path state = fs::path(run) / "training-state-000000016.safetensors";
    std::map<std::string, std::string> sm;
    auto st = io::load_safetensors(state.string(), &sm);
    const std::string keep = sm[key];
    sm[key] = "12x";
    io::save_safetensors(state.string(), st, sm);
    o.resume = run;
    REQUIRE_THROWS_WITH(train::run_training(o), Contains(std::string("'") + key + "'") && Contains("12x"));
    sm[key] = keep;
    io::save_safetensors(state.string(), st, sm);
  }
  // stylegan2-generate checks every request before it writes the first image.
  for (const char* bad : {"--mix-rows 0", "--mix-cols 1", "--mix-rows 0 --mix-cols 1 --mix-layers 0,99", "--interp 3",
                          "--noise-mode loud"}) {
    INFO(bad);
    const fs::path out = root / "gen";
    const std::string cmd = std::string(SG_BIN_DIR) + "/stylegan2-generate --network " + snap + " --outdir " +
                            out.string() + " " + bad + " > " + (root / "gen.txt").string() + " 2>&1";
    const int rc = std::system(cmd.c_str());
    CHECK(WEXITSTATUS(rc) == 1);
    const std::string flag = std::string(bad).substr(2, std::string(bad).find(' ') - 2);
    CHECK_THAT(read_all(root / "gen.txt"), Contains(flag == "mix-rows" || flag == "mix-cols" ? "mix-" : flag));
    CHECK_FALSE(fs::exists(out));
  }
  fs::remove_all(root);
}

// The crash-consistency check: one run traces every step of its durable writes
// (engine/io/write_steps.h); fresh runs are then killed (as by kill -9) right after each step
// of the second snapshot's write, and each is resumed. The resumed run must end bit-exactly
// where the uninterrupted one did, from the newest snapshot that was committed.
TEST_CASE("training: a kill at any step of a snapshot write resumes exactly", "[train][faults]") {
  fs::path root = scratch("faults");
  fs::path data = make_image_folder(root / "data");
  const std::string bin = std::string(SG_BIN_DIR) + "/stylegan2-train";
  // 12 minibatches of 4, a tick (and a snapshot) every 16 images: snapshots at 16, 32, 48.
  auto train_cmd = [&](const fs::path& out, const std::string& extra) {
    return bin + " --data " + data.string() + " --outdir " + out.string() +
           " --cfg small --resolution 8 --channels 1 --batch 4 --kimg 0.048 --tick 0.016 --snap 1 --seed 5 --threads "
           "2 " +
           extra;
  };
  auto final_tensors = [&](const fs::path& out) {
    std::string dir;
    for (auto& e : fs::directory_iterator(out)) dir = std::max(dir, e.path().string());
    return io::load_safetensors_map(last_snapshot(dir));
  };
  const fs::path straight = root / "straight";
  REQUIRE(
      std::system(("SG_WRITE_STEP_TRACE=1 " + train_cmd(straight, "") + " > " + (root / "trace.txt").string() + " 2>&1")
                      .c_str()) == 0);
  // Steps that belong to the snapshot at 32 images (network, then state).
  std::vector<std::pair<int, std::string>> steps;
  std::istringstream trace(read_all(root / "trace.txt"));
  for (std::string line; std::getline(trace, line);) {
    std::istringstream l(line);
    std::string tag, what, path;
    int n = 0;
    if (l >> tag >> n >> what >> path && tag == "sg-write-step" &&
        path.find("-000000032.safetensors") != std::string::npos)
      steps.push_back({n, what + " " + fs::path(path).filename().string()});
  }
  REQUIRE(steps.size() >= 12);  // open, header, data, fsync, close, rename, fsync-dir: twice
  CHECK_THAT(steps.front().second, Contains("open network-snapshot"));
  CHECK_THAT(steps.back().second, Contains("training-state"));
  // Every snapshot of the straight run is kept: none overwrote another.
  for (const char* n : {"000000016", "000000032", "000000048"}) {
    std::string dir;
    for (auto& e : fs::directory_iterator(straight)) dir = e.path().string();
    CHECK(fs::exists(fs::path(dir) / (std::string("training-state-") + n + ".safetensors")));
  }
  const auto want = final_tensors(straight);

  bool committed_seen = false;
  for (auto& [n, what] : steps) {
    INFO("killed after write step " << n << ": " << what);
    const fs::path out = root / ("kill" + std::to_string(n));
    const int rc = std::system(("SG_WRITE_STEP_KILL=" + std::to_string(n) + " " + train_cmd(out, "") + " > " +
                                (root / "kill.txt").string() + " 2>&1")
                                   .c_str());
    REQUIRE(WIFEXITED(rc));
    REQUIRE(WEXITSTATUS(rc) == 86);  // killed where asked, not earlier, not later
    std::string killed_dir;
    for (auto& e : fs::directory_iterator(out)) killed_dir = e.path().string();
    // The state file's rename commits the pair; before it, --resume falls back to 16 images.
    const bool committed = fs::exists(fs::path(killed_dir) / "training-state-000000032.safetensors");
    committed_seen |= committed;
    const fs::path resumed = root / ("resumed" + std::to_string(n));
    REQUIRE(
        std::system((train_cmd(resumed, "--resume " + killed_dir) + " > " + (root / "resume.txt").string() + " 2>&1")
                        .c_str()) == 0);
    const std::string log = read_all(root / "resume.txt");
    CHECK_THAT(log, !Contains("error"));
    for (auto& e : fs::directory_iterator(killed_dir)) CHECK(e.path().extension() != ".tmp");  // cleaned up
    const auto got = final_tensors(resumed);
    REQUIRE(got.size() == want.size());
    for (auto& [name, t] : want) {
      INFO(name);
      REQUIRE(got.count(name));
      CHECK(t.to_vector() == got.at(name).to_vector());
    }
  }
  CHECK(committed_seen);  // the kill after the state's rename resumed from the newer snapshot
  fs::remove_all(root);
}
