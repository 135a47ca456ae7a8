// CUDA graphs (engine/cuda_graph.h): a captured sequence of random draws, elementwise ops, a
// conv, a cuBLAS matmul, autograd and in-place updates, replayed N times, gives bit for bit
// what N eager runs give, with fresh random numbers each time; calls a capture forbids throw
// an sg::Error naming them and leave the stream usable; captures do not nest; the graph's
// memory stays out of eager code's reach; stylegan2-train --cuda-graph trains bit for bit as
// without it. On the emulator also: nothing runs during a capture.
#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "engine/autograd.h"
#include "engine/cuda_graph.h"
#include "engine/io/safetensors.h"
#include "kernels/cuda/runtime.h"
#include "train_util.h"
#ifdef SG_CUDA_EMU
#include "kernels/cuda/emu/launch_log.h"
#endif

using namespace sg;
using namespace sgtest::cuda;
namespace kc = sg::kernels::cuda;
namespace fs = std::filesystem;

namespace {

// The state one run reads and updates in place: inputs made before any capture, a conv
// weight trained by one SGD step per run, a running state, two generators.
struct Seq {
  Tensor x, w, a, b, state;
  Rng rng{7, 3}, rng2{11};

  Seq() {
    Rng init(2024);
    x = randn({2, 3, 8, 8}, init, DType::f32, Device::cuda());
    w = mul(randn({4, 3, 3, 3}, init, DType::f32, Device::cuda()), 0.3);
    a = randn({6, 7}, init, DType::f32, Device::cuda());
    b = randn({7, 5}, init, DType::f32, Device::cuda());
    state = zeros({5}, DType::f32, Device::cuda());
  }
};

// One run; returns its outputs (the draws, the conv, the matmul, the gradient, the state).
std::vector<Tensor> run(Seq& s) {
  Tensor z = randn({2, 3, 8, 8}, s.rng, DType::f32, Device::cuda());
  Tensor u = rand({7, 5}, s.rng2, DType::f32, Device::cuda());
  Tensor w = s.w.detach();
  w.set_requires_grad(true);
  Tensor h = leaky_relu(conv2d(add(s.x, mul(z, 0.5)), w, {1, 1}, {1, 1}), 0.2);
  Tensor gw = autograd::grad({sum(square(h))}, {w})[0];
  copy_into(s.w, sub(s.w, mul(gw, 1e-4)));  // an in-place step: the next run sees it
  Tensor m = matmul(s.a, add(s.b, u));      // cuBLAS
  Tensor z2 = randn({5}, s.rng, DType::f32, Device::cuda());
  copy_into(s.state, tanh(add(mul(s.state, 0.9), mul(sum(m, {0}), z2))));
  return {z, u, h.detach(), gw, m, s.state};
}

std::vector<std::vector<double>> to_host(const std::vector<Tensor>& ts) {
  std::vector<std::vector<double>> r;
  for (const Tensor& t : ts) r.push_back(t.to_vector());
  return r;
}

const char* kNames[] = {"randn", "rand", "conv", "weight gradient", "matmul", "state"};

}  // namespace

TEST_CASE("cuda graph: N replays equal N eager runs bit for bit, fresh random numbers each", "[cuda][graph]") {
  if (!real_cuda("cuda graph replay")) return;
  constexpr int kRuns = 4;
  Seq eager, graphed;
  run(eager);  // warm-up: the allocator's cache fills
  run(graphed);
  std::vector<std::vector<std::vector<double>>> want;
  for (int i = 0; i < kRuns; ++i) want.push_back(to_host(run(eager)));

  CudaGraph g;
  std::vector<Tensor> outs;
  const uint64_t offset0 = graphed.rng.offset, offset0_2 = graphed.rng2.offset;
#ifdef SG_CUDA_EMU
  sgemu::take_launch_log();
#endif
  g.capture([&] { outs = run(graphed); });
  REQUIRE(g.captured());
#ifdef SG_CUDA_EMU
  CHECK(sgemu::take_launch_log().empty());  // recorded, not run
#endif
  CHECK(graphed.rng.offset == offset0);  // the capture drew nothing
  CHECK(graphed.rng2.offset == offset0_2);

  // Eager tensors made now never share memory with the graph: replays leave them alone.
  std::vector<Tensor> bystanders;
  for (const Shape& sh : {Shape{2, 3, 8, 8}, Shape{2, 4, 8, 8}, Shape{4, 3, 3, 3}, Shape{6, 5}, Shape{7, 5}})
    for (int k = 0; k < 3; ++k) bystanders.push_back(full(sh, 42.0, DType::f32, Device::cuda()));

  const CudaMemoryStats before = cuda_memory_stats();
  for (int i = 0; i < kRuns; ++i) {
    g.replay();
    const auto got = to_host(outs);
    for (size_t k = 0; k < got.size(); ++k) {
      INFO("replay " << i + 1 << ", output " << kNames[k]);
      CHECK(got[k] == want[i][k]);
    }
  }
  CHECK(want[0][0] != want[1][0]);  // the draws differ from run to run
  CHECK(graphed.rng.offset == eager.rng.offset);
  CHECK(graphed.rng2.offset == eager.rng2.offset);
  CHECK(cuda_memory_stats().num_device_mallocs == before.num_device_mallocs);
  for (const Tensor& t : bystanders) CHECK(max_abs(add(t, -42.0)) == 0.0);

  // Eager draws between replays continue the same sequence.
  CHECK(randn({3}, graphed.rng, DType::f32, Device::cuda()).to_vector() ==
        randn({3}, eager.rng, DType::f32, Device::cuda()).to_vector());
  g.replay();
  const auto again = to_host(outs);
  const auto eager_again = to_host(run(eager));
  for (size_t k = 0; k < again.size(); ++k) {
    INFO("replay after an eager draw, output " << kNames[k]);
    CHECK(again[k] == eager_again[k]);
  }
}

TEST_CASE("cuda graph: a call that a capture forbids throws an sg::Error naming it", "[cuda][graph]") {
  if (!real_cuda("cuda graph forbidden calls")) return;
  Tensor x = full({4, 4}, 2.0, DType::f32, Device::cuda());
  Rng rng(5);
  CudaGraph g;
  std::function<void()> forbidden;
  std::vector<std::string> pieces;
  SECTION("a host read (Tensor::item)") {
    forbidden = [&] { (void)sum(x).item(); };
#ifdef SG_CUDA_EMU
    pieces = {"cudaMemcpyAsync DeviceToHost"};
#endif
  }
  SECTION("a copy from the host") {
    forbidden = [&] { (void)full({4}, 1.0).to(Device::cuda()); };
#ifdef SG_CUDA_EMU
    pieces = {"cudaMemcpyAsync HostToDevice"};
#endif
  }
  SECTION("cuda_synchronize") {
    forbidden = [&] { cuda_synchronize(); };
    pieces = {"cudaStreamSynchronize"};
  }
  SECTION("cuda_empty_cache") {
    Tensor t = empty({1 << 10}, DType::f32, Device::cuda());
    t = Tensor();  // a free cached block: emptying the cache synchronises and calls cudaFree
    forbidden = [&] { cuda_empty_cache(); };
    pieces = {"cudaStreamSynchronize"};
  }
  SECTION("cudaMalloc") {
    forbidden = [&] { kc::raw_free(kc::raw_malloc(1024)); };
    pieces = {"cudaMalloc(1024 bytes)"};
  }
  std::string msg;
  try {
    g.capture([&] {
      Tensor y = add(mul(x, 3.0), randn({4, 4}, rng, DType::f32, Device::cuda()));
      forbidden();
    });
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO(msg);
  CHECK(msg.find("cuda graph capture: ") == 0);
  CHECK(msg.find("capturing") != std::string::npos);  // CUDA's "operation not permitted when stream is capturing"
  for (const std::string& p : pieces) CHECK(msg.find(p) != std::string::npos);
  CHECK(!g.captured());
  CHECK(rng.offset == 0);
  CHECK_FALSE(kc::stream_capturing());
  // The stream works again, with no error left behind, and a new capture succeeds.
  CHECK(sum(mul(x, 3.0)).item() == 96.0);
  Tensor out;
  g.capture([&] { out = mul(x, 3.0); });
  g.replay();
  CHECK(sum(out).item() == 96.0);
}

TEST_CASE("cuda graph: captures do not nest; replay needs a capture and no capture in progress", "[cuda][graph]") {
  if (!real_cuda("cuda graph nesting")) return;
  Tensor x = full({8}, 1.0, DType::f32, Device::cuda());
  CudaGraph g, other;
  expect_error([&] { g.capture([&] { other.capture([&] { (void)mul(x, 2.0); }); }); },
               {"cuda graph capture", "captures do not nest"});
  CHECK_FALSE(CudaGraph::capturing());
  expect_error([&] { g.replay(); }, {"cuda graph replay", "nothing has been captured"});
  Tensor y;
  other.capture([&] { y = mul(x, 2.0); });
  expect_error([&] { g.capture([&] { other.replay(); }); }, {"cuda graph replay", "called during a capture"});
  other.replay();
  CHECK(sum(y).item() == 16.0);
  Rng r(1);
  Tensor z;
  g.capture([&] { z = randn({4}, r, DType::f32, Device::cuda()); });
  r.seed = 2;
  expect_error([&] { g.replay(); }, {"cuda graph replay", "seed", "changed from 1 to 2"});
}

TEST_CASE("cuda graph: the runtime records during capture and runs at launch", "[cuda][graph]") {
  if (!real_cuda("cuda graph runtime")) return;
  Tensor t = full({256}, 1.0, DType::f32, Device::cuda());
  kc::graph_capture_begin();
  CHECK(kc::stream_capturing());
  kc::memset_async(t.raw_data(), 0, 256 * sizeof(float));
  void* p = kc::raw_malloc_during_capture(4096);  // relaxed mode: allowed, and not in the graph
  void* exec = kc::graph_capture_end();
  CHECK_FALSE(kc::stream_capturing());
  CHECK(sum(t).item() == 256.0);  // not run yet
  kc::graph_launch(exec);
  CHECK(sum(t).item() == 0.0);
  kc::graph_destroy(exec);
  kc::raw_free(p);
  kc::graph_capture_begin();
  CHECK_THROWS_WITH(kc::raw_malloc(4096), Catch::Contains("cudaMalloc(4096 bytes)"));   // not relaxed: refused
  CHECK_THROWS_WITH(kc::graph_capture_end(), Catch::Contains("cudaStreamEndCapture"));  // invalidated
  kc::graph_capture_abort();
  CHECK_FALSE(kc::stream_capturing());
  CHECK(sum(t).item() == 0.0);
}

TEST_CASE("cuda graph: the caching allocator may grow during a capture", "[cuda][graph][allocator]") {
  if (!real_cuda("cuda graph allocator growth")) return;
  const int64_t n = 300000;  // 1.2 MB: a large block, not in the cache after emptying it
  cuda_empty_cache();
  const CudaMemoryStats s0 = cuda_memory_stats();
  CudaGraph g;
  Tensor big;
  g.capture([&] { big = full({n}, 3.0, DType::f32, Device::cuda()); });
  const CudaMemoryStats s1 = cuda_memory_stats();
  CHECK(s1.num_device_mallocs > s0.num_device_mallocs);  // cudaMalloc in relaxed capture mode
  g.replay();
  CHECK(sum(big).item() == 3.0 * n);
  const int64_t mallocs = cuda_memory_stats().num_device_mallocs;  // (sum's own blocks are in the cache now)
  g.replay();
  CHECK(sum(big).item() == 3.0 * n);
  CHECK(cuda_memory_stats().num_device_mallocs == mallocs);
  big = Tensor();
  g.reset();  // the graph's blocks return to the shared cache
  Tensor again = empty({n}, DType::f32, Device::cuda());
  CHECK(cuda_memory_stats().num_device_mallocs == mallocs);
}

TEST_CASE("cuda graph: stylegan2-train --cuda-graph trains exactly as without it", "[cuda][graph][train]") {
  if (!real_cuda("stylegan2-train --cuda-graph")) return;
  const fs::path root = sg::testing::scratch_dir("sg_cuda_graph_", "train");
  const fs::path data = sg::testing::make_image_folder(root / "data");
  // 9 minibatches: every phase at 0 (eager), then Gmain and Dmain captured at 1 and replayed at
  // 1..8, Greg captured at 4 and replayed at 4 and 8 (Dreg, every 16, stays eager). Records
  // after minibatches 5 and 9: the first tick sums two Gregs' statistics, one eager, one replayed.
  auto train = [&](bool graphs) {
    train::TrainOptions o = sg::testing::tiny(data, root / (graphs ? "graphs" : "eager"), 0.036);
    o.tick_kimg = 0.02;
    o.device = "cuda";
    o.precision = "f32";
    o.tensorboard = false;
    o.cuda_graph = graphs;
    std::string run_dir;
    REQUIRE(train::run_training(o, &run_dir) == 0);
    return fs::path(run_dir);
  };
  const fs::path eager = train(false);
  const int64_t replays = CudaGraph::replay_count();
  const fs::path graphed = train(true);
  CHECK(CudaGraph::replay_count() - replays == 2 * 8 + 2);
  // Every statistic of every tick, as logged.
  auto stats = [](const fs::path& dir) {
    std::istringstream in(sg::testing::read_all(dir / "log.jsonl"));
    std::vector<std::string> r;
    for (std::string line; std::getline(in, line);)
      for (const char* key : {"\"loss/G\"", "\"loss/G_pl\"", "\"loss/D\"", "\"r1_penalty\"", "\"pl_mean\""}) {
        const size_t at = line.find(key);
        r.push_back(at == std::string::npos ? std::string("-") : line.substr(at, line.find_first_of(",}", at) - at));
      }
    return r;
  };
  const std::vector<std::string> want = stats(eager), got = stats(graphed);
  CHECK(want.size() == 2 * 5);
  CHECK(got == want);
  // The networks at the end, bit for bit.
  auto final_snapshot = [](const fs::path& dir) {
    std::string last;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().rfind("network-snapshot-", 0) == 0) last = std::max(last, e.path().string());
    return io::load_safetensors(last);
  };
  const auto a = final_snapshot(eager), b = final_snapshot(graphed);
  REQUIRE(a.size() == b.size());
  REQUIRE_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.to_vector() == b[i].second.to_vector());
  }
  fs::remove_all(root);
}
