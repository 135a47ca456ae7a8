// The StyleGAN2 networks and the trainer on CUDA: the `small` G and D moved to the device
// give the CPU's numbers (forward, R1 and path-length gradients), and stylegan2-train runs
// a few minibatches with --device cuda.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "cuda_test_util.h"
#include "models/stylegan2.h"
#include "train/image_io.h"
#include "train/training_loop.h"

using namespace sg;
using namespace sgtest::cuda;
namespace fs = std::filesystem;

// The reference is the same networks in f64 on the CPU (their f32 weights, cast), and both Ds
// judge the same image (the reference's, in f32): the device's f32 rounding is then the only
// difference, so no pre-activation near a leaky ReLU's kink can take the other slope on one
// side only, as it could when the device was compared with the CPU's own f32 rounding (its
// Winograd kernels round differently from the device's direct convolutions).
TEST_CASE("cuda: small G and D on the device match the CPU", "[cuda][models]") {
  for (int64_t c_dim : {0, 3}) {  // unconditional, and class-conditional (--cond)
    INFO("c_dim " << c_dim);
    models::Config c = models::make_config("small", 8, 1);
    c.c_dim = c_dim;
    models::Config c64 = c;
    c64.dtype = DType::f64;
    // labels: images 0..3 of classes 0, 1, 2, 0 (undefined when unconditional)
    const Tensor lab = c_dim ? from_vector({1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0}, {4, 3}) : Tensor();
    const Tensor lab_ref = c_dim ? lab.to(DType::f64) : Tensor();
    const Tensor lab_dev = c_dim ? lab.to(device()) : Tensor();
    Rng rng(3), rng_ref(3);
    models::Generator G(c, rng), G_ref(c64, rng_ref);
    models::Discriminator D(c, rng), D_ref(c64, rng_ref);
    auto copy_params = [](const models::ParamList& from, const models::ParamList& to) {  // and the buffers
      REQUIRE(from.params.size() == to.params.size());
      REQUIRE(from.buffers.size() == to.buffers.size());
      for (size_t i = 0; i < from.params.size(); ++i)
        copy_into(to.params[i].second, from.params[i].second.to(DType::f64));
      for (size_t i = 0; i < from.buffers.size(); ++i)
        copy_into(to.buffers[i].second, from.buffers[i].second.to(DType::f64));
    };
    copy_params(G.parameters(), G_ref.parameters());
    copy_params(D.parameters(), D_ref.parameters());
    G.to(device());
    D.to(device());
    CHECK(G.device() == device());
    Rng zr(9);
    Tensor z = randn({4, c.z_dim}, zr);
    Rng n1(1), n2(1);
    Tensor ws_ref = G_ref.mapping(z.to(DType::f64), lab_ref), ws = G.mapping(z.to(device()), lab_dev);
    Tensor img_ref = G_ref.synthesis(ws_ref, models::NoiseMode::constant, n1);
    Tensor img = G.synthesis(ws, models::NoiseMode::constant, n2);
    CHECK(sgtest::max_rel_error(img.cpu().to(DType::f64), img_ref) < kTol);
    // R1 through D: value and the gradient of the penalty with respect to D's parameters.
    auto r1_penalty = [](models::Discriminator& d, const Tensor& x, const Tensor& l) {
      Tensor xr = x.detach().set_requires_grad(true);
      Tensor g = autograd::grad({sum(d.forward(xr, l))}, {xr}, {}, true)[0];
      Tensor pen = sum(square(g));
      return std::make_pair(pen, autograd::grad({pen}, d.parameters().tensors(), {}, false, true));
    };
    const Tensor x = img_ref.detach().to(DType::f32);  // the image both Ds judge
    auto [pen_ref, g_ref] = r1_penalty(D_ref, x.to(DType::f64), lab_ref);
    auto [pen, g] = r1_penalty(D, x.to(device()), lab_dev);
    CHECK(std::abs(pen.item() - pen_ref.item()) <= kTol * std::abs(pen_ref.item()));
    for (size_t i = 0; i < g.size(); ++i) {
      INFO(D.parameters().params[i].first);
      if (g_ref[i].defined() && g[i].defined())
        CHECK(sgtest::max_rel_error(g[i].cpu().to(DType::f64), g_ref[i]) < 10 * kTol);
    }
  }
}

TEST_CASE("cuda: stylegan2-train runs with --device cuda", "[cuda][train]") {
  if (!real_cuda("cuda: stylegan2-train runs with --device cuda")) return;
  fs::path root = fs::temp_directory_path() / ("sg_cuda_train_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "data");
  Rng rng(5);
  for (int i = 0; i < 8; ++i) {
    auto v = rand({64}, rng, DType::f64).to_vector();
    std::vector<uint8_t> px(64);
    for (int j = 0; j < 64; ++j) px[j] = (uint8_t)(v[j] * 255);
    data::write_png((root / "data" / ("i" + std::to_string(i) + ".png")).string(), px.data(), 8, 8, 1);
  }
  // auto is the default, and means tf32 on CUDA.
  for (auto [precision, resolved] : {std::pair<const char*, const char*>{"f32", "f32"},
                                     {"auto", "tf32"},
                                     {"bf16", "bf16"},
                                     {"bf16-mixed", "bf16-mixed"}}) {
    INFO("--precision " << precision);
    train::TrainOptions o;
    o.data = (root / "data").string();
    o.outdir = (root / "runs").string();
    o.resolution = 8;
    o.channels = 1;
    o.batch = 4;
    o.kimg = 0.008;  // 2 minibatches: the first runs every phase (R1 and path length at 0)
    o.snap = 0;
    o.device = "cuda";
    o.precision = precision;
    o.quiet = true;
    std::string run_dir;
    REQUIRE(train::run_training(o, &run_dir) == 0);
    CHECK(cuda_math() == CudaMath::f32);  // the run's precision does not outlive it
    auto read = [&](const char* f) {
      std::ifstream in(fs::path(run_dir) / f);
      return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };
    const std::string all = read("log.jsonl");
    CHECK(all.find("r1_penalty") != std::string::npos);
    CHECK(all.find("loss/G_pl") != std::string::npos);
    CHECK(all.find("null") == std::string::npos);  // every loss finite
    CHECK(read("options.json").find(std::string("\"precision\": \"") + resolved + "\"") != std::string::npos);
    // bf16-mixed at 8x8: max(R / 8, 8) = 8, so the 8x8 blocks of G and D in bf16
    CHECK(read("options.json")
              .find(std::string("\"bf16_res\": ") + (std::string(precision) == "bf16-mixed" ? "8" : "0")) !=
          std::string::npos);
  }
  fs::remove_all(root);
}

// --precision bf16-mixed: models::Config::bf16_res puts the blocks at and above it under
// CudaMathGuard(bf16), and the autograd engine runs each node's backward under the math its
// op ran with, so the first and second derivatives of those blocks are bf16 too.
TEST_CASE("cuda: bf16-mixed blocks and their first and second derivatives run in bf16", "[cuda][models][tf32]") {
  if (!real_cuda("bf16-mixed")) return;
  models::Config c = models::make_config("small", 16, 1);
  Rng zr(4);
  const Tensor z = randn({4, c.z_dim}, zr);
  // img = synthesis(ws), the gradient of sum(img^2) with respect to ws (graph kept), and the
  // gradient of its square norm with respect to G's parameters (the path-length pattern).
  struct Out {
    Tensor img, dws;
    std::vector<Tensor> dparams;
  };
  auto run = [&](int64_t bf16_res, CudaMath global) {
    models::Config cc = c;
    cc.bf16_res = bf16_res;
    Rng rng(3);
    models::Generator G(cc, rng);
    G.to(device());
    Tensor ws = G.mapping(z.to(device())).detach().set_requires_grad(true);
    set_cuda_math(global);
    Rng noise(1);
    Out o;
    o.img = G.synthesis(ws, models::NoiseMode::constant, noise);
    o.dws = autograd::grad({sum(square(o.img))}, {ws}, {}, true)[0];
    set_cuda_math(CudaMath::f32);  // the backward of the blocks must not depend on this
    o.dparams = autograd::grad({sum(square(o.dws))}, G.parameters().tensors(), {}, false, true);
    return o;
  };
  auto err = [](const Out& a, const Out& b) {
    double e =
        std::max(sgtest::max_rel_error(a.img.cpu(), b.img.cpu()), sgtest::max_rel_error(a.dws.cpu(), b.dws.cpu()));
    for (size_t i = 0; i < a.dparams.size(); ++i)
      if (a.dparams[i].defined() && b.dparams[i].defined())
        e = std::max(e, sgtest::max_rel_error(a.dparams[i].cpu(), b.dparams[i].cpu()));
    return e;
  };
  const Out all_blocks = run(4, CudaMath::f32);  // every block under the guard, the process in f32
  const Out global_bf16 = run(0, CudaMath::bf16);
  const Out f32 = run(0, CudaMath::f32);
  const Out top = run(16, CudaMath::f32);  // only the 16x16 block
  CHECK(cuda_math() == CudaMath::f32);
  const double all_vs_global = err(all_blocks, global_bf16), all_vs_f32 = err(all_blocks, f32);
  const double top_vs_f32 = err(top, f32), top_vs_all = err(top, all_blocks);
  INFO("bf16 everywhere against every block in bf16: " << all_vs_global << ", against f32: " << all_vs_f32);
  CHECK(all_vs_global < 1e-6);  // the same arithmetic (the synthesis has nothing outside its blocks that the math
                                // changes)
  CHECK(all_vs_f32 > 1e-4);     // and bf16 rounding is visible
  INFO("only 16x16 in bf16: against f32 " << top_vs_f32 << ", against all blocks " << top_vs_all);
  CHECK(top_vs_f32 > 1e-4);
  CHECK(top_vs_all > 1e-4);
}
