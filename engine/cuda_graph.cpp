// sg::CudaGraph (engine/cuda_graph.h): stream capture into a CUDA graph, the allocator's
// private pool around it, the Philox bases of the captured draws, and replay.
#include "engine/cuda_graph.h"

#include <algorithm>
#include <exception>
#include <string>

#include "engine/device.h"
#include "engine/error.h"
#include "engine/ops.h"
#ifdef SG_HAVE_CUDA
#include "kernels/cuda/random.h"
#include "kernels/cuda/runtime.h"
#endif

namespace sg {

namespace {
CudaGraph* g_capturing = nullptr;  // the graph being captured: one at a time, as the one stream
int64_t g_replays = 0;
}  // namespace

bool CudaGraph::capturing() { return g_capturing != nullptr; }
int64_t CudaGraph::replay_count() { return g_replays; }

namespace detail {
CudaDrawOffset cuda_draw_offset(Rng& g) {
  CudaGraph* cg = g_capturing;
  if (!cg) return {nullptr, g.offset};
  auto& uses = cg->rngs_;
  auto it = std::find_if(uses.begin(), uses.end(), [&](const CudaGraph::RngUse& u) { return u.rng == &g; });
  if (it == uses.end()) {
    SG_CHECK(uses.size() < (size_t)CudaGraph::kMaxRngs, "cuda graph capture", "draws from more than ",
             CudaGraph::kMaxRngs, " sg::Rng objects");
    uses.push_back({&g, g.seed, g.offset, 0});
    it = uses.end() - 1;
  }
  return {static_cast<const uint64_t*>(cg->rng_base_) + (it - uses.begin()), g.offset - it->start};
}
}  // namespace detail

CudaGraph::~CudaGraph() {
  try {
    reset();
    if (rng_base_) detail::cuda_free(rng_base_);
  } catch (...) {  // a destructor does not throw; the CUDA runtime reports the error again later
  }
}

void CudaGraph::reset() {
  SG_CHECK(g_capturing != this, "cuda graph reset", "called during the graph's own capture");
#ifdef SG_HAVE_CUDA
  if (exec_) kernels::cuda::graph_destroy(exec_);
#endif
  exec_ = nullptr;
  if (pool_) detail::cuda_pool_release(pool_);
  pool_ = 0;
  rngs_.clear();
}

void CudaGraph::capture(const std::function<void()>& fn) {
  SG_CHECK(!g_capturing, "cuda graph capture", "a capture is already in progress (captures do not nest)");
#ifndef SG_HAVE_CUDA
  (void)fn;
  throw Error("cuda graph capture: stylegrad was built without the CUDA backend");
#else
  namespace kc = kernels::cuda;
  SG_CHECK(cuda_available(), "cuda graph capture", "no CUDA device is available");
  reset();
  if (!rng_base_) rng_base_ = detail::cuda_alloc(kMaxRngs * sizeof(uint64_t));  // outside the pool: ours
  pool_ = detail::cuda_pool_begin_capture();
  g_capturing = this;
  auto finish = [&] {
    g_capturing = nullptr;
    detail::cuda_pool_end_capture();
    for (RngUse& u : rngs_) {  // the capture drew nothing: every Rng stays where it was
      u.advance = u.rng->offset - u.start;
      u.rng->offset = u.start;
    }
  };
  try {
    kc::graph_capture_begin();
    fn();
    exec_ = kc::graph_capture_end();
  } catch (const std::exception& e) {
    kc::graph_capture_abort();
    finish();
    reset();  // nothing was recorded: the pool's blocks go back to the cache
    std::string msg = e.what();
    if (msg.rfind("cuda graph capture", 0) != 0) msg = "cuda graph capture: " + msg;
    if (dynamic_cast<const kc::CudaError*>(&e))
      msg +=
          " (a CUDA graph cannot capture host reads or writes of device memory, synchronisation, cudaMalloc or "
          "cudaFree: see engine/cuda_graph.h)";
    throw Error(msg);
  }
  finish();
#endif
}

void CudaGraph::replay() {
  SG_CHECK(!g_capturing, "cuda graph replay", "called during a capture");
  SG_CHECK(exec_, "cuda graph replay", "nothing has been captured");
#ifdef SG_HAVE_CUDA
  for (const RngUse& u : rngs_)
    SG_CHECK(u.rng->seed == u.seed, "cuda graph replay", "the seed of an sg::Rng the graph draws from changed from ",
             u.seed, " to ", u.rng->seed, " since the capture");
  uint64_t* base = static_cast<uint64_t*>(rng_base_);
  for (size_t i = 0; i < rngs_.size(); ++i) kernels::cuda::philox_set_base(base + i, rngs_[i].rng->offset);
  kernels::cuda::graph_launch(exec_);
  for (RngUse& u : rngs_) u.rng->offset += u.advance;
  g_replays++;
#endif
}

}  // namespace sg
