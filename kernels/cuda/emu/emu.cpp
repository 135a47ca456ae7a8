// The CUDA emulator: runs kernels/cuda/*.cu on the CPU. Declarations: cuda_runtime.h,
// cublas_v2.h, mma.h beside this file; how and why: docs/cuda-emulator.md.
//
// A launch runs its blocks one after another on the calling host thread. Inside a block every
// GPU thread is a fiber with its own stack; a small scheduler resumes the runnable fibers in a
// shuffled order (SG_EMU_ORDER=shuffle, the default; forward; reverse), each until it reaches
// a barrier (__syncthreads, a warp collective) or ends. A barrier opens when every live
// thread of the block (or warp) waits at it, so a thread never runs past a barrier before
// the others reach it — and without a barrier, a thread reads shared memory before the
// others have written it, which changes results. Errors the GPU would leave undefined are
// reported as a launch failure naming the kernel: a barrier that some threads skip or exit
// before, a deadlock, a bad launch configuration, an exception inside the kernel.
//
// Sanitizers: under AddressSanitizer the fiber switches are announced
// (__sanitizer_start/finish_switch_fiber); under ThreadSanitizer every fiber is a TSan fiber
// switched with no implied synchronisation, and the barriers are release/acquire pairs, so
// TSan reports two GPU threads of a block that touch the same shared memory without a
// barrier between them (what compute-sanitizer's racecheck reports on a GPU).
#include <sys/mman.h>
#include <unistd.h>

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "launch_log.h"
#include "mma.h"

#if defined(__SANITIZE_ADDRESS__)
#define SGEMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SGEMU_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SGEMU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SGEMU_TSAN 1
#endif
#endif
#ifdef SGEMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef SGEMU_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#if !defined(__x86_64__)
#error "the CUDA emulator's fiber switch is written for x86-64"
#endif

// ---- the fiber switch ----------------------------------------------------------------------
// sgemu_switch(&save, next): pushes the callee-saved registers and the SSE / x87 control words
// on the current stack, stores the stack pointer in *save, loads next and pops the same
// frame from it. A new fiber's stack is prepared (prepare_stack) so that the pops start it in
// sgemu_fiber_entry.
extern "C" void sgemu_switch(void** save, void* next);
extern "C" void sgemu_fiber_entry();
asm(R"(
  .text
  .globl sgemu_switch
  .type sgemu_switch, @function
sgemu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size sgemu_switch, .-sgemu_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");

namespace sgemu {
namespace {

constexpr int kMaxThreads = 1024;
constexpr size_t kStackBytes = size_t(256) << 10;
constexpr size_t kWarpScratchBytes = 4096;
constexpr size_t kMaxDynamicShared = 48 << 10;

enum State : int { runnable, at_block_barrier, at_warp_barrier, done };

struct Fiber {
  void* sp = nullptr;  // saved stack pointer while suspended
  unsigned char* stack = nullptr;
  std::atomic<int> state{done};
  ThreadState ts{};
  int warp = 0;
  CpAsyncQueue cp_async;  // this GPU thread's pending cp.async copies
#ifdef SGEMU_TSAN
  void* tsan = nullptr;
#endif
#ifdef SGEMU_ASAN
  void* fake_stack = nullptr;
#endif
};

struct Block {
  LaunchState ls{};
  std::unique_ptr<Fiber[]> fibers{new Fiber[kMaxThreads]};
  int nthreads = 0, nwarps = 0;
  void* sched_sp = nullptr;
  std::atomic<Fiber*> cur{nullptr};
  KernelThunk thunk = nullptr;
  const void* closure = nullptr;
  std::vector<uint64_t> warp_slots = std::vector<uint64_t>(kMaxThreads);
  std::vector<unsigned char> scratch = std::vector<unsigned char>(kMaxThreads / 32 * kWarpScratchBytes);
  std::vector<unsigned char> dyn;
  std::atomic<unsigned> block_gen{0};
  std::unique_ptr<std::atomic<unsigned>[]> warp_gen { new std::atomic<unsigned>[ kMaxThreads / 32 ] };
  std::mutex error_mu;  // a fiber's exception text, for the scheduler
  std::atomic<bool> failed{false};
  std::string error;
  bool abandoned = false;  // the last block stopped on an error, its fibers unfinished
  const char* kernel = "";
  // TSan synchronisation objects: launch start / end, and two per barrier (alternating by
  // generation, so that an early arriver at barrier k+1 does not publish to a late leaver
  // of barrier k).
  char start_sync = 0, end_sync = 0, block_sync[2] = {}, warp_sync[kMaxThreads / 32][2] = {};
#ifdef SGEMU_TSAN
  void* sched_tsan = nullptr;
#endif
#ifdef SGEMU_ASAN
  const void* sched_stack_bottom = nullptr;
  size_t sched_stack_size = 0;
  void* sched_fake_stack = nullptr;
#endif
};

// The block running on this host thread. Emulator state that both the scheduler and the
// fibers touch is read and written with relaxed atomics, so that ThreadSanitizer, which
// sees each fiber as a thread, reports only the kernels' own races.
__thread Block* t_block = nullptr;

Block* active_block() { return __atomic_load_n(&t_block, __ATOMIC_RELAXED); }
Block& block() {
  Block* b = active_block();
  if (!b) throw std::logic_error("CUDA emulator: a device built-in was used outside a kernel");
  return *b;
}
Fiber& fiber() { return *block().cur.load(std::memory_order_relaxed); }

// ---- errors (sticky until read, as cudaGetLastError) ----------------------------------------
std::mutex g_err_mu;
cudaError_t g_last_error = cudaSuccess;
std::string g_last_message;

cudaError_t set_error(cudaError_t e, const std::string& msg) {
  std::lock_guard<std::mutex> lock(g_err_mu);
  if (g_last_error == cudaSuccess) {
    g_last_error = e;
    g_last_message = msg;
  }
  return e;
}

// ---- switching --------------------------------------------------------------------------------
void switch_to(Block& b, Fiber& f) {
  b.cur.store(&f, std::memory_order_relaxed);
  __atomic_store_n(&t_thread, &f.ts, __ATOMIC_RELAXED);
  void* next = f.sp;  // read as the scheduler, before TSan is told of the switch
#ifdef SGEMU_TSAN
  __tsan_switch_to_fiber(f.tsan, __tsan_switch_to_fiber_no_sync);
#endif
#ifdef SGEMU_ASAN
  __sanitizer_start_switch_fiber(&b.sched_fake_stack, f.stack, kStackBytes);
#endif
  sgemu_switch(&b.sched_sp, next);
#ifdef SGEMU_ASAN
  __sanitizer_finish_switch_fiber(b.sched_fake_stack, nullptr, nullptr);
#endif
}

// From a fiber back to the scheduler, leaving the fiber in state st.
void yield(Block& b, Fiber& f, State st) {
  f.state.store(st, std::memory_order_relaxed);
  void* next = __atomic_load_n(&b.sched_sp, __ATOMIC_RELAXED);  // emulator state: atomics for TSan
#ifdef SGEMU_TSAN
  __tsan_switch_to_fiber(__atomic_load_n(&b.sched_tsan, __ATOMIC_RELAXED), __tsan_switch_to_fiber_no_sync);
#endif
#ifdef SGEMU_ASAN
  __sanitizer_start_switch_fiber(st == done ? nullptr : &f.fake_stack, b.sched_stack_bottom, b.sched_stack_size);
#endif
  sgemu_switch(&f.sp, next);
#ifdef SGEMU_ASAN
  __sanitizer_finish_switch_fiber(f.fake_stack, &b.sched_stack_bottom, &b.sched_stack_size);
#endif
}

}  // namespace
}  // namespace sgemu

extern "C" void sgemu_fiber_entry() {
  using namespace sgemu;
  Block& b = *active_block();
  Fiber& f = *b.cur.load(std::memory_order_relaxed);
#ifdef SGEMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &b.sched_stack_bottom, &b.sched_stack_size);
#endif
#ifdef SGEMU_TSAN
  __tsan_acquire(&b.start_sync);
#endif
  try {
    b.thunk(b.closure);
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(b.error_mu);
    if (b.error.empty()) b.error = std::string("exception in thread ") + std::to_string(f.ts.linear) + ": " + e.what();
    b.failed.store(true, std::memory_order_relaxed);
  }
#ifdef SGEMU_TSAN
  __tsan_release(&b.end_sync);
#endif
  yield(b, f, done);
  std::abort();  // a finished fiber is never resumed
}

namespace sgemu {
namespace {

unsigned char* new_stack() {
  void* p = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("CUDA emulator: cannot map a fiber stack");
  mprotect(p, 4096, PROT_NONE);  // guard page: a stack overflow faults instead of corrupting
  return static_cast<unsigned char*>(p);
}

// The frame sgemu_switch pops: control words, r15..rbp, return address = the entry.
// `abandoned`: the stack holds the frames of a block that stopped on an error.
void prepare_stack(Fiber& f, bool abandoned) {
#ifdef SGEMU_ASAN
  // The frames that never return (the entry's and its last yield's, or every frame of an
  // abandoned run) leave their redzones poisoned.
  const size_t dirty = abandoned ? kStackBytes - 4096 : 16384;
  __asan_unpoison_memory_region(f.stack + kStackBytes - dirty, dirty);
#endif
  (void)abandoned;
  uint64_t* top = reinterpret_cast<uint64_t*>(f.stack + kStackBytes);
  uint64_t* sp = top - 1;  // after the ret pops the entry address, rsp % 16 == 8, as after a call
  *--sp = reinterpret_cast<uint64_t>(&sgemu_fiber_entry);
  for (int i = 0; i < 6; ++i) *--sp = 0;  // rbp rbx r12 r13 r14 r15
  uint32_t mxcsr;
  uint16_t fpcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpcw));
  *--sp = (uint64_t)mxcsr | ((uint64_t)fpcw << 32);
  f.sp = sp;
}

enum class Order { forward, reverse, shuffle };
Order order_from_env() {
  const char* e = std::getenv("SG_EMU_ORDER");
  if (!e || !*e || std::string(e) == "shuffle") return Order::shuffle;
  if (std::string(e) == "forward") return Order::forward;
  if (std::string(e) == "reverse") return Order::reverse;
  std::fprintf(stderr, "SG_EMU_ORDER=%s: expected shuffle, forward or reverse; using shuffle\n", e);
  return Order::shuffle;
}

std::string state_summary(const Block& b) {
  int n[4] = {0, 0, 0, 0};
  for (int i = 0; i < b.nthreads; ++i) n[b.fibers[i].state.load(std::memory_order_relaxed)]++;
  return std::to_string(n[done]) + " exited, " + std::to_string(n[at_block_barrier]) + " at __syncthreads, " +
         std::to_string(n[at_warp_barrier]) + " at a warp collective";
}

// Runs one block to completion; returns an error text ("" if none).
std::string run_block(Block& b, const std::vector<int>& order) {
  for (int i = 0; i < b.nthreads; ++i) {
    Fiber& f = b.fibers[i];
    if (!f.stack) f.stack = new_stack();
#ifdef SGEMU_TSAN
    if (!f.tsan) f.tsan = __tsan_create_fiber(0);
#endif
    prepare_stack(f, b.abandoned);
    f.cp_async = CpAsyncQueue{};  // (a block that stopped on an error may have left copies)
    f.state.store(runnable, std::memory_order_relaxed);
  }
  b.abandoned = false;
  b.error.clear();
  b.failed.store(false, std::memory_order_relaxed);
#ifdef SGEMU_TSAN
  __tsan_release(&b.start_sync);
#endif
  std::vector<int> wdone, wwait, wsize;  // per warp: exited, waiting at a warp barrier, lanes
  for (;;) {
    for (int i : order) {
      Fiber& f = b.fibers[i];
      if (f.state.load(std::memory_order_relaxed) == runnable) switch_to(b, f);
      if (b.failed.load(std::memory_order_relaxed)) {
        std::lock_guard<std::mutex> lock(b.error_mu);
        return b.error;
      }
    }
    // Everyone waits or has exited: open the barriers that everyone reached.
    int ndone = 0, nblock = 0;
    wdone.assign(b.nwarps, 0), wwait.assign(b.nwarps, 0), wsize.assign(b.nwarps, 0);
    for (int i = 0; i < b.nthreads; ++i) {
      const Fiber& f = b.fibers[i];
      const int s = f.state.load(std::memory_order_relaxed);
      wsize[f.warp]++;
      if (s == done) ndone++, wdone[f.warp]++;
      if (s == at_block_barrier) nblock++;
      if (s == at_warp_barrier) wwait[f.warp]++;
    }
    if (ndone == b.nthreads) break;
    bool opened = false;
    if (nblock > 0 && nblock == b.nthreads - ndone) {
      if (ndone > 0)
        return "__syncthreads reached by " + std::to_string(nblock) + " threads while " + std::to_string(ndone) +
               " had exited (a barrier in divergent code)";
      b.block_gen.fetch_add(1, std::memory_order_relaxed);
      for (int i = 0; i < b.nthreads; ++i) b.fibers[i].state.store(runnable, std::memory_order_relaxed);
      opened = true;
    }
    for (int w = 0; w < b.nwarps && !opened; ++w) {
      if (wwait[w] == 0 || wwait[w] + wdone[w] != wsize[w]) continue;
      if (wdone[w] > 0)
        return "a warp collective (shuffle, __syncwarp, mma_sync) in warp " + std::to_string(w) + " reached by " +
               std::to_string(wwait[w]) + " lanes while " + std::to_string(wdone[w]) + " had exited";
      b.warp_gen[w].fetch_add(1, std::memory_order_relaxed);
      for (int i = w * 32; i < std::min(b.nthreads, w * 32 + 32); ++i)
        b.fibers[i].state.store(runnable, std::memory_order_relaxed);
      opened = true;
    }
    if (!opened) return "deadlock: no barrier can open (" + state_summary(b) + ")";
  }
#ifdef SGEMU_TSAN
  __tsan_acquire(&b.end_sync);
#endif
  return "";
}

std::atomic<uint64_t> g_launches{0};  // seeds the shuffle of each launch
std::mutex g_log_mu;
std::vector<std::string> g_log;

}  // namespace

std::vector<std::string> take_launch_log() {
  std::lock_guard<std::mutex> lock(g_log_mu);
  return std::exchange(g_log, {});
}

__thread ThreadState* t_thread = nullptr;
__thread LaunchState* t_launch = nullptr;
int lane_id() { return fiber().ts.linear & 31; }
void* warp_scratch() { return block().scratch.data() + (size_t)fiber().warp * kWarpScratchBytes; }
CpAsyncQueue& cp_async_queue() { return fiber().cp_async; }

void syncthreads() {
  Block& b = block();
  Fiber& f = fiber();
  const unsigned gen = b.block_gen.load(std::memory_order_relaxed);
#ifdef SGEMU_TSAN
  __tsan_release(&b.block_sync[gen & 1]);
#endif
  yield(b, f, at_block_barrier);
#ifdef SGEMU_TSAN
  __tsan_acquire(&b.block_sync[gen & 1]);
#endif
  (void)gen;
}

void syncwarp() {
  Block& b = block();
  Fiber& f = fiber();
  const unsigned gen = b.warp_gen[f.warp].load(std::memory_order_relaxed);
#ifdef SGEMU_TSAN
  __tsan_release(&b.warp_sync[f.warp][gen & 1]);
#endif
  yield(b, f, at_warp_barrier);
#ifdef SGEMU_TSAN
  __tsan_acquire(&b.warp_sync[f.warp][gen & 1]);
#endif
  (void)gen;
}

uint64_t warp_exchange(uint64_t v, int src_lane) {
  Block& b = block();
  const int lane = lane_id(), base = fiber().warp * 32;
  b.warp_slots[base + lane] = v;
  syncwarp();  // every lane has published
  const uint64_t r = b.warp_slots[base + (src_lane & 31)];
  syncwarp();  // every lane has read: the slots may be reused
  return r;
}

void run_grid(const char* name, KernelThunk thunk, const void* closure, dim3 grid, dim3 blk, size_t dynamic_smem) {
  const uint64_t threads = (uint64_t)blk.x * blk.y * blk.z;
  auto bad = [&](const std::string& why) {
    set_error(cudaErrorInvalidConfiguration, std::string(name) + ": invalid launch configuration: " + why);
  };
  if (threads == 0 || threads > (uint64_t)kMaxThreads || blk.z > 64)
    return bad(std::to_string(threads) + " threads per block");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    return bad("grid (" + std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " + std::to_string(grid.z) + ")");
  if (dynamic_smem > kMaxDynamicShared) return bad(std::to_string(dynamic_smem) + " bytes of dynamic shared memory");
  if (active_block()) throw std::logic_error("CUDA emulator: a kernel launched from inside a kernel");
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    if (g_log.size() < 100000) g_log.emplace_back(name);
  }

  static thread_local Block* blk_state = new Block();  // reused by every launch of this host thread
  Block& b = *blk_state;
  b.thunk = thunk, b.closure = closure, b.kernel = name;
  b.ls.block_dim = blk, b.ls.grid_dim = grid;
  b.nthreads = (int)threads, b.nwarps = (int)((threads + 31) / 32);
  b.dyn.assign(dynamic_smem, 0xcd);  // not zeros: a kernel must not rely on them
  b.ls.dynamic_shared = b.dyn.data(), b.ls.dynamic_shared_bytes = dynamic_smem;
  for (int i = 0; i < b.nthreads; ++i) {
    Fiber& f = b.fibers[i];
    f.ts.linear = i;
    f.ts.thread_idx = uint3{(unsigned)(i % blk.x), (unsigned)(i / blk.x % blk.y), (unsigned)(i / (blk.x * blk.y))};
    f.warp = i / 32;
  }
  static const Order order_kind = order_from_env();
  std::vector<int> order(b.nthreads);
  std::iota(order.begin(), order.end(), 0);
  if (order_kind == Order::reverse) std::reverse(order.begin(), order.end());
  if (order_kind == Order::shuffle) std::shuffle(order.begin(), order.end(), std::mt19937_64(++g_launches));
#ifdef SGEMU_TSAN
  __atomic_store_n(&b.sched_tsan, __tsan_get_current_fiber(), __ATOMIC_RELAXED);
#endif
  __atomic_store_n(&t_block, &b, __ATOMIC_RELAXED);
  __atomic_store_n(&t_launch, &b.ls, __ATOMIC_RELAXED);
  std::string err;
  for (unsigned z = 0; z < grid.z && err.empty(); ++z)
    for (unsigned y = 0; y < grid.y && err.empty(); ++y)
      for (unsigned x = 0; x < grid.x && err.empty(); ++x) {
        b.ls.block_idx = uint3{x, y, z};
        err = run_block(b, order);
        b.abandoned = !err.empty();
        if (!err.empty())
          err = std::string(name) + ": block (" + std::to_string(x) + ", " + std::to_string(y) + ", " +
                std::to_string(z) + "): " + err;
      }
  __atomic_store_n(&t_block, nullptr, __ATOMIC_RELAXED);
  __atomic_store_n(&t_launch, nullptr, __ATOMIC_RELAXED);
  __atomic_store_n(&t_thread, nullptr, __ATOMIC_RELAXED);
  if (!err.empty()) set_error(cudaErrorLaunchFailure, err);
}

}  // namespace sgemu

void sgemu_check_full_mask(unsigned mask, const char* what) {
  if (mask != 0xffffffffu)
    throw std::runtime_error(std::string(what) + ": the emulator supports full-warp masks only, got " +
                             std::to_string(mask));
}

// ---- runtime API ---------------------------------------------------------------------------------
namespace {

std::mutex g_mem_mu;
size_t g_mem_used = 0;
std::vector<std::pair<void*, size_t>>* g_blocks = new std::vector<std::pair<void*, size_t>>();

size_t device_bytes() {
  static const size_t total = [] {
    const char* e = std::getenv("SG_EMU_DEVICE_MIB");
    const long long mib = e ? std::atoll(e) : 0;
    return (size_t)(mib > 0 ? mib : 8192) << 20;
  }();
  return total;
}

struct sgemu_stream_t {};
sgemu_stream_t g_stream;

// ---- stream capture ----------------------------------------------------------------------------
// One capture at a time (the emulator has one stream). Recorded operations are closures that
// hold copies of their arguments; a graph and its executable hold the list.
struct Capture {
  bool open = false, invalidated = false;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id thread;
  std::vector<std::function<void()>> ops;
  std::string why;  // the call that invalidated it
};
std::mutex g_cap_mu;
Capture g_capture;
std::atomic<bool> g_capturing{false};
thread_local cudaStreamCaptureMode t_capture_mode = cudaStreamCaptureModeGlobal;

// Whether this thread may not make a "potentially unsafe" call (cudaMalloc, cudaFree) now:
// the rules of cudaThreadExchangeStreamCaptureMode.
bool unsafe_call_prohibited() {
  std::lock_guard<std::mutex> lock(g_cap_mu);
  if (!g_capture.open || g_capture.mode == cudaStreamCaptureModeRelaxed) return false;
  if (t_capture_mode == cudaStreamCaptureModeRelaxed) return false;
  const bool mine = g_capture.thread == std::this_thread::get_id();
  return t_capture_mode == cudaStreamCaptureModeThreadLocal ? mine
                                                            : mine || g_capture.mode == cudaStreamCaptureModeGlobal;
}

// A call that stream capture forbids: invalidates the capture and fails, as CUDA does.
cudaError_t refuse_during_capture(const std::string& what) {
  {
    std::lock_guard<std::mutex> lock(g_cap_mu);
    if (!g_capture.invalidated) g_capture.why = what;
    g_capture.invalidated = true;
  }
  return sgemu::set_error(cudaErrorStreamCaptureUnsupported,
                          what + " while the stream is being captured (the capture is now invalidated)");
}

const char* kind_name(cudaMemcpyKind kind) {
  switch (kind) {
    case cudaMemcpyHostToHost:
      return "HostToHost";
    case cudaMemcpyHostToDevice:
      return "HostToDevice";
    case cudaMemcpyDeviceToHost:
      return "DeviceToHost";
    case cudaMemcpyDeviceToDevice:
      return "DeviceToDevice";
    default:
      return "Default";
  }
}

}  // namespace

struct sgemu_graph {
  std::vector<std::function<void()>> ops;
};
struct sgemu_graph_exec {
  std::shared_ptr<const std::vector<std::function<void()>>> ops;
};

namespace sgemu {

bool capturing() { return g_capturing.load(std::memory_order_relaxed); }

cudaError_t record(const char* what, std::function<void()> op) {
  std::lock_guard<std::mutex> lock(g_cap_mu);
  if (g_capture.invalidated)
    return set_error(cudaErrorStreamCaptureInvalidated,
                     std::string(what) + ": the capture was invalidated earlier by " + g_capture.why);
  g_capture.ops.push_back(std::move(op));
  return cudaSuccess;
}

}  // namespace sgemu

cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode mode) {
  std::lock_guard<std::mutex> lock(g_cap_mu);
  if (g_capture.open)
    return sgemu::set_error(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is already being captured");
  g_capture = Capture{};
  g_capture.open = true, g_capture.mode = mode, g_capture.thread = std::this_thread::get_id();
  g_capturing.store(true, std::memory_order_relaxed);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t* graph) {
  std::lock_guard<std::mutex> lock(g_cap_mu);
  *graph = nullptr;
  if (!g_capture.open)
    return sgemu::set_error(cudaErrorIllegalState, "cudaStreamEndCapture: the stream is not being captured");
  if (g_capture.mode != cudaStreamCaptureModeRelaxed && g_capture.thread != std::this_thread::get_id())
    return sgemu::set_error(cudaErrorStreamCaptureWrongThread,
                            "cudaStreamEndCapture: called from another thread than cudaStreamBeginCapture");
  Capture c = std::move(g_capture);
  g_capture = Capture{};
  g_capturing.store(false, std::memory_order_relaxed);
  if (c.invalidated)
    return sgemu::set_error(cudaErrorStreamCaptureInvalidated,
                            "cudaStreamEndCapture: the capture was invalidated by " + c.why);
  *graph = new sgemu_graph{std::move(c.ops)};
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus* status) {
  std::lock_guard<std::mutex> lock(g_cap_mu);
  *status = !g_capture.open         ? cudaStreamCaptureStatusNone
            : g_capture.invalidated ? cudaStreamCaptureStatusInvalidated
                                    : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode) {
  std::swap(*mode, t_capture_mode);
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  *exec = nullptr;
  if (!graph) return sgemu::set_error(cudaErrorInvalidValue, "cudaGraphInstantiate: null graph");
  *exec = new sgemu_graph_exec{std::make_shared<const std::vector<std::function<void()>>>(graph->ops)};
  return cudaSuccess;
}

// Runs the graph's operations in the order they were captured (every call is synchronous);
// during a capture, the launch itself is recorded.
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t) {
  if (!exec) return sgemu::set_error(cudaErrorInvalidValue, "cudaGraphLaunch: null graph");
  auto run = [ops = exec->ops] {
    for (const auto& op : *ops) op();
  };
  if (sgemu::capturing()) return sgemu::record("cudaGraphLaunch", run);
  run();
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0)
    return sgemu::set_error(cudaErrorInvalidValue, "cudaGetDeviceProperties: no device " + std::to_string(device));
  std::memset(p, 0, sizeof(*p));
  std::snprintf(p->name, sizeof(p->name), "stylegrad CUDA emulator (CPU)");
  p->totalGlobalMem = device_bytes();
  p->sharedMemPerBlock = 48 << 10;
  p->maxThreadsPerBlock = 1024;
  p->maxGridSize[0] = 2147483647, p->maxGridSize[1] = 65535, p->maxGridSize[2] = 65535;
  p->warpSize = 32;
  p->multiProcessorCount = 1;
  p->major = 9, p->minor = 0;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = reinterpret_cast<cudaStream_t>(&g_stream);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {  // every call is synchronous: only capture matters
  if (sgemu::capturing()) return refuse_during_capture("cudaStreamSynchronize");
  return cudaSuccess;
}

// Device memory is host memory of exactly the size asked for (so AddressSanitizer sees the
// end of each allocation), within an emulated capacity: SG_EMU_DEVICE_MIB (default 8192).
cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = nullptr;
  if (unsafe_call_prohibited()) return refuse_during_capture("cudaMalloc");
  std::lock_guard<std::mutex> lock(g_mem_mu);
  if (bytes > device_bytes() - g_mem_used) return cudaErrorMemoryAllocation;  // not sticky, as CUDA
  void* q = nullptr;
  if (posix_memalign(&q, 256, bytes == 0 ? 1 : bytes) != 0) return cudaErrorMemoryAllocation;
  g_mem_used += bytes;
  g_blocks->emplace_back(q, bytes);
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (unsafe_call_prohibited()) return refuse_during_capture("cudaFree");
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_mem_mu);
  auto it = std::find_if(g_blocks->begin(), g_blocks->end(), [&](auto& b) { return b.first == p; });
  if (it == g_blocks->end()) return sgemu::set_error(cudaErrorInvalidDevicePointer, "cudaFree: not a device pointer");
  g_mem_used -= it->second;
  g_blocks->erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(g_mem_mu);
  *total_bytes = device_bytes();
  *free_bytes = device_bytes() - g_mem_used;
  return cudaSuccess;
}

// During capture, copies between device buffers are recorded; a copy from or to host memory
// is refused: the engine's host memory is pageable, which stream capture does not accept.
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t) {
  auto run = [=] {
    if (n) std::memmove(dst, src, n);
  };
  if (sgemu::capturing()) {
    if (kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault)
      return refuse_during_capture(std::string("cudaMemcpyAsync ") + kind_name(kind));
    return sgemu::record("cudaMemcpyAsync", run);
  }
  run();
  return cudaSuccess;
}

cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t) {
  if (width > dpitch || width > spitch)
    return sgemu::set_error(cudaErrorInvalidValue, "cudaMemcpy2DAsync: width > pitch");
  auto run = [=] {
    for (size_t r = 0; r < height; ++r)
      std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  };
  if (sgemu::capturing()) {
    if (kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault)
      return refuse_during_capture(std::string("cudaMemcpy2DAsync ") + kind_name(kind));
    return sgemu::record("cudaMemcpy2DAsync", run);
  }
  run();
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t) {
  auto run = [=] {
    if (n) std::memset(p, value, n);
  };
  if (sgemu::capturing()) return sgemu::record("cudaMemsetAsync", run);
  run();
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lock(sgemu::g_err_mu);
  const cudaError_t e = sgemu::g_last_error;
  sgemu::g_last_error = cudaSuccess;
  return e;
}

const char* cudaGetErrorString(cudaError_t e) {
  static thread_local std::string text;
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      text = "invalid argument";
      break;
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      text = "invalid configuration argument";
      break;
    case cudaErrorInvalidDevicePointer:
      text = "invalid device pointer";
      break;
    case cudaErrorLaunchFailure:
      text = "unspecified launch failure";
      break;
    case cudaErrorIllegalState:
      text = "the operation cannot be performed in the present state";
      break;
    case cudaErrorStreamCaptureUnsupported:
      text = "operation not permitted when stream is capturing";
      break;
    case cudaErrorStreamCaptureInvalidated:
      text = "operation failed due to a previous error during capture";
      break;
    case cudaErrorStreamCaptureWrongThread:
      text = "attempt to terminate a thread-local capture sequence from another thread";
      break;
    default:
      return "unknown error";
  }
  std::lock_guard<std::mutex> lock(sgemu::g_err_mu);
  if (!sgemu::g_last_message.empty()) text += " (CUDA emulator: " + sgemu::g_last_message + ")";
  sgemu::g_last_message.clear();
  return text.c_str();
}

// ---- cuBLAS ------------------------------------------------------------------------------------
struct sgemu_cublas {
  cublasMath_t mode = CUBLAS_DEFAULT_MATH;
};

cublasStatus_t cublasCreate(cublasHandle_t* h) {
  *h = new sgemu_cublas();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  h->mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

namespace {

// Column-major C[m, n] = alpha op(A)[m, k] op(B)[k, n] + beta C, batch times; beta == 0 does
// not read C (it may hold NaN), as cuBLAS.
template <class T>
cublasStatus_t gemm(bool tf32, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, T alpha, const T* A,
                    int lda, long long sa, const T* B, int ldb, long long sb, T beta, T* C, int ldc, long long sc,
                    int batch) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  using CMap = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
  using MMap = Eigen::Map<Mat, 0, Eigen::OuterStride<>>;
  const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
  const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < std::max(1, ar) || ldb < std::max(1, br) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  for (int i = 0; i < batch; ++i) {
    Mat a = CMap(A + i * sa, ar, ac, Eigen::OuterStride<>(lda));
    Mat bm = CMap(B + i * sb, br, bc, Eigen::OuterStride<>(ldb));
    if (tf32) {  // the tensor cores see TF32 inputs
      for (Eigen::Index j = 0; j < a.size(); ++j) a.data()[j] = (T)nvcuda::wmma::__float_to_tf32((float)a.data()[j]);
      for (Eigen::Index j = 0; j < bm.size(); ++j) bm.data()[j] = (T)nvcuda::wmma::__float_to_tf32((float)bm.data()[j]);
    }
    Mat prod(m, n);
    if (k == 0)
      prod.setZero();
    else if (ta == CUBLAS_OP_N && tb == CUBLAS_OP_N)
      prod.noalias() = a * bm;
    else if (ta == CUBLAS_OP_N)
      prod.noalias() = a * bm.transpose();
    else if (tb == CUBLAS_OP_N)
      prod.noalias() = a.transpose() * bm;
    else
      prod.noalias() = a.transpose() * bm.transpose();
    MMap c(C + i * sc, m, n, Eigen::OuterStride<>(ldc));
    if (beta == T(0))
      c = alpha * prod;
    else
      c = alpha * prod + beta * c;
  }
  return CUBLAS_STATUS_SUCCESS;
}

// gemm, or during stream capture its record: the arguments are checked now (a batch of
// zero checks them and touches no memory), alpha, beta and the math mode are copied now, as
// cuBLAS reads host-side scalars and its mode when the call is enqueued.
template <class T>
cublasStatus_t enqueue_gemm(bool tf32, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, T alpha,
                            const T* A, int lda, long long sa, const T* B, int ldb, long long sb, T beta, T* C, int ldc,
                            long long sc, int batch) {
  if (!sgemu::capturing())
    return gemm<T>(tf32, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
  const cublasStatus_t st = batch < 0
                                ? CUBLAS_STATUS_INVALID_VALUE
                                : gemm<T>(tf32, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, 0);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  const cudaError_t e = sgemu::record(
      "cublas gemm", [=] { gemm<T>(tf32, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch); });
  return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

}  // namespace

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  return enqueue_gemm<float>(h->mode == CUBLAS_TF32_TENSOR_OP_MATH, ta, tb, m, n, k, *alpha, A, lda, 0, B, ldb, 0,
                             *beta, C, ldc, 0, 1);
}
cublasStatus_t cublasDgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const double* alpha, const double* A, int lda, const double* B, int ldb, const double* beta,
                           double* C, int ldc) {
  return enqueue_gemm<double>(false, ta, tb, m, n, k, *alpha, A, lda, 0, B, ldb, 0, *beta, C, ldc, 0, 1);
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float* alpha, const float* A, int lda, long long sa,
                                         const float* B, int ldb, long long sb, const float* beta, float* C, int ldc,
                                         long long sc, int batch) {
  return enqueue_gemm<float>(h->mode == CUBLAS_TF32_TENSOR_OP_MATH, ta, tb, m, n, k, *alpha, A, lda, sa, B, ldb, sb,
                             *beta, C, ldc, sc, batch);
}
cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const double* alpha, const double* A, int lda, long long sa,
                                         const double* B, int ldb, long long sb, const double* beta, double* C, int ldc,
                                         long long sc, int batch) {
  return enqueue_gemm<double>(false, ta, tb, m, n, k, *alpha, A, lda, sa, B, ldb, sb, *beta, C, ldc, sc, batch);
}
