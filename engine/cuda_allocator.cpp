// The CUDA caching allocator (see engine/device.h for the policy).
#include <map>
#include <mutex>
#include <unordered_map>

#include "engine/device.h"
#include "engine/error.h"
#ifdef SG_HAVE_CUDA
#include "kernels/cuda/runtime.h"
#endif

// On the CUDA emulator device memory is host memory, so AddressSanitizer can check kernels'
// accesses: the allocator poisons the rounding slack of every block it hands out and whole
// blocks while they sit in the cache, so a write past a tensor's end, or into a freed
// tensor, is reported even though the block itself stays allocated.
#if defined(__SANITIZE_ADDRESS__)
#define SG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SG_ASAN 1
#endif
#endif
#if defined(SG_CUDA_EMU) && defined(SG_ASAN)
#include <sanitizer/asan_interface.h>
#define SG_POISON(p, n) __asan_poison_memory_region((p), (n))
#define SG_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define SG_POISON(p, n) ((void)(p), (void)(n))
#define SG_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace sg {

bool cuda_built() {
#ifdef SG_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

#ifndef SG_HAVE_CUDA
bool cuda_available() { return false; }
std::string cuda_device_name() { return "none (built without CUDA)"; }
CudaMemoryStats cuda_memory_stats() { return {}; }
void cuda_reset_peak() {}
void cuda_empty_cache() {}
void cuda_synchronize() {}
namespace detail {
void* cuda_alloc(size_t bytes) {
  throw Error(str("cuda: cannot allocate ", bytes, " bytes: stylegrad was built without the CUDA backend"));
}
void cuda_free(void*) {}
uint64_t cuda_pool_begin_capture() { return 0; }
void cuda_pool_end_capture() {}
void cuda_pool_release(uint64_t) {}
}  // namespace detail
#else
namespace kc = kernels::cuda;

namespace {

constexpr size_t kSmall = 512, kLarge = size_t(2) << 20, kLargeThreshold = size_t(1) << 20;

size_t round_size(size_t n) {
  if (n == 0) n = 1;
  if (n < kLargeThreshold) return (n + kSmall - 1) / kSmall * kSmall;
  return (n + kLarge - 1) / kLarge * kLarge;
}

// A block belongs to the shared cache (pool 0) or to a CUDA graph's private pool (an id > 0,
// engine/cuda_graph.cpp). Blocks used during a capture are the graph's: its replays write
// them, so while the graph lives they go back to its pool, never to the shared cache, where
// eager code could take them. (AddressSanitizer: a graph's blocks stay unpoisoned while it
// lives, free or not, whole: a replay touches them as every captured use did.)
struct Allocator {
  struct Block {
    size_t size;
    uint64_t pool;
  };
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;                           // rounded size -> block
  std::unordered_map<uint64_t, std::multimap<size_t, void*> > pools;  // a graph's free blocks
  std::unordered_map<void*, Block> live;                              // block -> rounded size, pool
  uint64_t capturing = 0, next_pool = 1;                              // the pool of the capture in progress
  CudaMemoryStats stats;

  // The smallest block of `bins` that fits `want` (and is at most twice it), taken out.
  static void* take(std::multimap<size_t, void*>& bins, size_t want, size_t* sz) {
    auto it = bins.lower_bound(want);
    if (it == bins.end() || it->first > want * 2) return nullptr;
    void* p = it->second;
    *sz = it->first;
    bins.erase(it);
    return p;
  }

  void* alloc(size_t bytes) {
    const size_t want = round_size(bytes);
    std::lock_guard<std::mutex> lock(mu);
    size_t sz = 0;
    void* p = capturing ? take(pools[capturing], want, &sz) : nullptr;
    if (!p) p = take(free_blocks, want, &sz);
    if (p) {
      live[p] = {sz, capturing};
      note_alloc(sz);
      SG_UNPOISON(p, capturing ? sz : bytes);
      if (!capturing) SG_POISON(static_cast<char*>(p) + bytes, sz - bytes);
      return p;
    }
    p = capturing ? kc::raw_malloc_during_capture(want) : kc::raw_malloc(want);
    if (!p && !capturing) {  // (emptying the cache synchronises, which a capture forbids)
      release_free_blocks();
      p = kc::raw_malloc(want);
    }
    if (!p) {
      size_t f = 0, t = 0;
      kc::mem_get_info(&f, &t);
      throw Error(str("cuda: out of memory allocating ", bytes, " bytes (", want, " rounded); stylegrad holds ",
                      stats.allocated, " bytes in tensors and ", stats.cached, " bytes cached; the device has ", f,
                      " of ", t, " bytes free"));
    }
    stats.cached += (int64_t)want;
    stats.num_device_mallocs++;
    live[p] = {want, capturing};
    note_alloc(want);
    if (!capturing) SG_POISON(static_cast<char*>(p) + bytes, want - bytes);
    return p;
  }

  void note_alloc(size_t sz) {
    stats.allocated += (int64_t)sz;
    if (stats.allocated > stats.peak_allocated) stats.peak_allocated = stats.allocated;
  }

  void free(void* p) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = live.find(p);
    if (it == live.end()) return;
    const auto [sz, owner] = it->second;
    const uint64_t pool = owner ? owner : capturing;  // freed during a capture: the graph may reuse it
    stats.allocated -= (int64_t)sz;
    if (pool)
      SG_UNPOISON(p, sz);
    else
      SG_POISON(p, sz);
    (pool ? pools[pool] : free_blocks).emplace(sz, p);
    live.erase(it);
  }

  // A graph is gone: its free blocks join the shared cache, its live ones will when freed.
  void release_pool(uint64_t pool) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = pools.find(pool);
    if (it != pools.end()) {
      for (auto& [sz, p] : it->second) SG_POISON(p, sz);
      free_blocks.insert(it->second.begin(), it->second.end());
      pools.erase(it);
    }
    for (auto& [p, b] : live)
      if (b.pool == pool) b.pool = 0;
  }

  void release_free_blocks() {  // caller holds mu
    if (free_blocks.empty()) return;
    kc::synchronize();
    for (auto& [sz, p] : free_blocks) {
      SG_UNPOISON(p, sz);
      kc::raw_free(p);
      stats.cached -= (int64_t)sz;
      stats.num_device_frees++;
    }
    free_blocks.clear();
  }
};

Allocator& allocator() {
  static Allocator* a = new Allocator();  // never destroyed: tensors may outlive statics
  return *a;
}

}  // namespace

bool cuda_available() {
  static const bool available = kc::device_count() > 0;  // asked once: allocations call this
  return available;
}
std::string cuda_device_name() { return cuda_available() ? kc::device_name() : "none (no CUDA device)"; }
CudaMemoryStats cuda_memory_stats() {
  std::lock_guard<std::mutex> lock(allocator().mu);
  return allocator().stats;
}
void cuda_reset_peak() {
  std::lock_guard<std::mutex> lock(allocator().mu);
  allocator().stats.peak_allocated = allocator().stats.allocated;
}
void cuda_empty_cache() {
  std::lock_guard<std::mutex> lock(allocator().mu);
  allocator().release_free_blocks();
}
void cuda_synchronize() {
  if (cuda_available()) kc::synchronize();
}
namespace detail {
void* cuda_alloc(size_t bytes) {
  SG_CHECK(cuda_available(), "cuda", "no CUDA device is available (cannot allocate ", bytes, " bytes)");
  return allocator().alloc(bytes);
}
void cuda_free(void* p) { allocator().free(p); }
uint64_t cuda_pool_begin_capture() {
  std::lock_guard<std::mutex> lock(allocator().mu);
  SG_CHECK(allocator().capturing == 0, "cuda", "a capture is already in progress");
  allocator().capturing = allocator().next_pool++;
  return allocator().capturing;
}
void cuda_pool_end_capture() {
  std::lock_guard<std::mutex> lock(allocator().mu);
  allocator().capturing = 0;
}
void cuda_pool_release(uint64_t pool) { allocator().release_pool(pool); }
}  // namespace detail
#endif

}  // namespace sg
