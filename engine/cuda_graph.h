// sg::CudaGraph: records what a function queues on the CUDA stream into a CUDA graph once,
// then replays it with one launch (engine/cuda_graph.cpp).
//
//   sg::CudaGraph g;
//   g.capture([&] { loss = step(batch); });  // records; runs nothing
//   for (...) { copy_into(batch, next_batch()); g.replay(); }  // runs the step; `loss` holds its result
//
// What capture does. The function runs once on the host with the stream in capture mode: every
// kernel, device-to-device copy, memset and cuBLAS call it queues is recorded, not run, with
// its arguments as they were at that moment (pointers, shapes, scalars, the CUDA math). A
// replay runs exactly that work again, in order, asynchronously, without the host code.
//
// What may happen inside: ops on CUDA tensors (forward, autograd, optimizer updates through
// kernels), allocation and freeing of CUDA tensors, randn / rand on CUDA. What may not: any
// host read or write of device memory (Tensor::item, to(cpu), CUDA tensors made from host
// data, copy_into between host and device), cuda_synchronize / cuda_empty_cache, or anything
// else that synchronises or calls cudaMalloc / cudaFree directly. CUDA refuses these during
// a capture (the CPU emulator too, so its tests catch them); capture() then throws an
// sg::Error naming the call, nothing is recorded, and the stream is usable again. Host-side
// work inside the function (CPU tensors, host arithmetic, control flow on host values) runs
// once, at capture: a replay repeats only its device work, with the values the host had then.
//
// Memory. Tensors the function reads that were made before the capture (parameters, inputs)
// are read at the same addresses by every replay: keep them alive and update them in place
// (copy_into, the optimizer's in-place steps). Tensors the function creates are allocated
// once, at capture, from the caching allocator (engine/device.h): a block allocated or freed
// during the capture goes to this graph's private pool and stays out of eager code's reach
// until the graph is destroyed, so every replay writes the same addresses and nothing else
// lives there. Tensors still alive after capture() (the function's outputs, held by the
// caller) are overwritten by every replay: read or copy them before the next one. Run the
// function eagerly once before capturing, so the cache already holds its blocks; a capture
// may still take new device memory (in relaxed capture mode, outside the graph).
//
// Random numbers. A draw from an sg::Rng inside the capture is recorded with its offset
// relative to where the Rng stood when the capture began; the kernel adds a base that it
// reads from device memory. capture() leaves every Rng where it was (the capture draws
// nothing); each replay first sets the base to the Rng's current offset (a one-thread
// kernel, no synchronisation) and then advances the Rng by what the captured draws use. So
// N replays draw exactly the numbers that N eager runs of the function would, and eager
// draws between replays continue the same sequence. The Rngs drawn from must outlive the
// graph, keep their seed, and at most kMaxRngs of them may be drawn from in one capture.
//
// One capture at a time per process: a capture inside a capture, and replay() during a
// capture, throw sg::Error. The graph and its pool live until reset() or destruction.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace sg {

struct Rng;

namespace detail {
// For randn / rand on CUDA (engine/random.cpp): the counter arguments of a draw from g of
// `blocks` Philox blocks. Eager: {nullptr, g.offset}. During a capture: the graph's device
// base for g and g.offset relative to it. The caller advances g.offset as always.
struct CudaDrawOffset {
  const uint64_t* base = nullptr;
  uint64_t offset = 0;
};
CudaDrawOffset cuda_draw_offset(Rng& g);
}  // namespace detail

class CudaGraph {
 public:
  static constexpr int kMaxRngs = 16;

  CudaGraph() = default;
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Records fn's device work (see above); replaces a previous capture. On error the graph is
  // left empty and every Rng where it was.
  void capture(const std::function<void()>& fn);
  // Runs the captured work once more, asynchronously; advances the Rngs it draws from.
  void replay();
  bool captured() const { return exec_ != nullptr; }
  // Drops the graph and hands its private memory back to the cache.
  void reset();

  // Whether a capture is in progress (in this process).
  static bool capturing();
  // How many replays this process has run (for tests and benchmarks).
  static int64_t replay_count();

 private:
  struct RngUse {
    Rng* rng;
    uint64_t seed, start, advance;  // advance: the blocks one run of the captured work uses
  };
  friend detail::CudaDrawOffset detail::cuda_draw_offset(Rng& g);

  void* exec_ = nullptr;      // cudaGraphExec_t
  uint64_t pool_ = 0;         // the allocator's private pool
  void* rng_base_ = nullptr;  // device uint64[kMaxRngs]: the bases of the captured draws
  std::vector<RngUse> rngs_;
};

}  // namespace sg
