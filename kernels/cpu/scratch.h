// Per-thread scratch memory that only grows, for the CPU kernels' temporary buffers (im2col
// columns, GEMM packing, Winograd tiles, upfirdn2d rows).
//
//   thread_scratch<Owner, T>(slot, n)  n elements of T, 64-byte aligned, contents unspecified:
//                                      the calling thread's buffer `slot` of that Owner,
//                                      reallocated only when a call asks for more than before
//
// Why: a kernel called again with the same shapes then allocates nothing. Allocating per call
// cost more than the arithmetic at small shapes: glibc hands large freed blocks back to the
// OS, and every 4 KiB taken again is a page fault (build/bench_cpu_conv --shapes --only _k3,
// 1 December 2026: the 4x4 and 8x8 convs of small 1.4x faster with reuse, seed32's
// 384-channel 4x4 conv 1.7x).
//
// Owner is a tag type per kernel file, so that two kernels never share a buffer: the conv
// kernels' columns stay valid while the GEMM they call packs into its own slots. A pointer is
// valid until the same thread asks for the same (Owner, T, slot) again.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>

namespace sg::kernels::cpu {

constexpr int kScratchSlots = 8;

template <class Owner, class T>
T* thread_scratch(int slot, int64_t n) {
  static_assert(std::is_trivial_v<T>, "scratch memory holds plain numbers");
  struct Buf {
    T* p = nullptr;
    int64_t n = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf bufs[kScratchSlots];
  Buf& b = bufs[slot];
  if (b.n < n) {
    std::free(b.p);
    b.p = nullptr, b.n = 0;
    const size_t bytes = ((size_t)n * sizeof(T) + 63) / 64 * 64;  // aligned_alloc: a multiple of 64
    b.p = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!b.p) throw std::bad_alloc();
    b.n = n;
  }
  return b.p;
}

}  // namespace sg::kernels::cpu
