// Warp-level tensor-core products through PTX mma.sync (sm_80 and newer), for kernels/cuda/conv.cu.
//
//   mma_m16n8k8_tf32:  D[16x8] += A[16x8] * B[8x8],   A and B in TF32 (one .b32 register each)
//   mma_m16n8k16_bf16: D[16x8] += A[16x16] * B[16x8], A and B in bf16 (two per .b32 register)
// with f32 accumulators D (4 per lane), A row-major and B column-major (".row.col").
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k8" and "... mma.m16n8k16 with
// floating point type"), with g = lane / 4 and t = lane % 4:
//   m16n8k8 .tf32  A: a0 (g, t)  a1 (g+8, t)  a2 (g, t+4)  a3 (g+8, t+4)          (row, col)
//                  B: b0 (t, g)  b1 (t+4, g)
//   m16n8k16 .bf16 A: reg 0 (g, 2t..2t+1)  reg 1 (g+8, 2t..2t+1)
//                     reg 2 (g, 2t+8..2t+9)  reg 3 (g+8, 2t+8..2t+9)
//                  B: reg 0 (2t..2t+1, g)  reg 1 (2t+8..2t+9, g)
//                  (in a register, the lower column / row sits in the low 16 bits)
//   both           D: d0 (g, 2t)  d1 (g, 2t+1)  d2 (g+8, 2t)  d3 (g+8, 2t+1)
//
// Data movement for the multi-stage kernels (kernels/cuda/conv_tc.cu):
//   ldmatrix_x4(r, p):   ldmatrix.sync.aligned.m8n8.x4.shared.b16: four 8 x 8 matrices of 16-bit
//                        elements (8 rows of 16 bytes each); lanes 8j..8j+7 give the row addresses
//                        of matrix j (16-byte aligned) and every lane receives, in r[j], the 32-bit
//                        word (row lane / 4, word lane % 4) of matrix j. For 32-bit elements (TF32)
//                        a row holds 4 elements, so r[j] is element (lane / 4, lane % 4).
//   ldmatrix_x4_trans(r, p): the same with .trans (16-bit elements only): r[j] holds elements
//                        (2 (lane % 4), lane / 4) in its low half and (2 (lane % 4) + 1, lane / 4)
//                        in its high half, i.e. the fragment of the transposed matrix.
//   cp_async_16(dst, src, valid): cp.async.cg.shared.global of 16 bytes, global to shared, in
//                        the background; valid = false writes 16 zero bytes and reads nothing.
//   cp_async_commit():   closes the group of this thread's copies issued since the last commit.
//   cp_async_wait<N>():  waits until at most the N most recent groups of this thread are pending.
//
// Conversions: to_tf32 rounds f32 to TF32 to nearest, ties away from zero (cvt.rna.tf32.f32);
// pack_bf16x2 rounds two f32 to bf16 to nearest even (__floats2bfloat162_rn).
//
// On the CUDA emulator (SG_CUDA_EMU) these are warp collectives written from the tables
// above: each lane publishes its fragment elements at their (row, col) in the warp's scratch,
// the warp meets, each lane computes its own D entries (products exact in f32, summed in f32 in
// k order), and meets again. A kernel that indexes a fragment differently from the PTX ISA gets
// wrong results there, so the CPU tests check our indexing; the tests on a GPU check the rest.
#pragma once
#include <cstdint>

#ifdef SG_CUDA_EMU
#include <cstring>
#include <stdexcept>

#include "cuda_runtime.h"
#else
#include <cuda_bf16.h>
#endif

namespace sg::kernels::cuda::ptx {

#ifndef SG_CUDA_EMU

__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo, .y = hi
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

#else  // the emulator

namespace detail {
inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float bf16_to_float(uint32_t h) { return from_bits((h & 0xffffu) << 16); }

// D (16 x 8) += A (16 x K) B (K x 8): a_at(g, t, e, row, col) returns this lane's A element e
// and sets its position (na of them; b_at likewise for B, nb of them).
template <int K, class AAt, class BAt>
void mma_16x8(float (&d)[4], int na, AAt a_at, int nb, BAt b_at) {
  static_assert((16 * K + K * 8) * sizeof(float) <= 4096, "fragment tiles exceed the warp scratch");
  float* A = static_cast<float*>(::sgemu::warp_scratch());  // [16][K]
  float* B = A + 16 * K;                                    // [K][8]
  const int lane = ::sgemu::lane_id(), g = lane / 4, t = lane % 4;
  for (int e = 0; e < na; ++e) {
    int r, c;
    const float v = a_at(g, t, e, r, c);
    A[r * K + c] = v;
  }
  for (int e = 0; e < nb; ++e) {
    int r, c;
    const float v = b_at(g, t, e, r, c);
    B[r * 8 + c] = v;
  }
  ::sgemu::syncwarp();
  for (int i = 0; i < 4; ++i) {
    const int r = g + (i >= 2 ? 8 : 0), c = 2 * t + (i & 1);
    float acc = 0.0f;
    for (int k = 0; k < K; ++k) acc += A[r * K + k] * B[k * 8 + c];
    d[i] += acc;
  }
  ::sgemu::syncwarp();
}
}  // namespace detail

inline uint32_t to_tf32(float x) {
  uint32_t u = detail::bits(x);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;  // inf / NaN pass
  return u;
}

inline uint32_t pack_bf16x2(float lo, float hi) {
  auto rne = [](float f) -> uint32_t {
    const uint32_t u = detail::bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;  // NaN stays a (quiet) NaN
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  };
  return rne(lo) | (rne(hi) << 16);
}

inline void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  // The tensor cores read the 19 high bits of each .b32 operand (the TF32 value).
  detail::mma_16x8<8>(
      d, 4,
      [&](int g, int t, int e, int& r, int& c) {
        r = g + ((e & 1) ? 8 : 0), c = t + ((e & 2) ? 4 : 0);
        return detail::from_bits(a[e] & 0xffffe000u);
      },
      2,
      [&](int g, int t, int e, int& r, int& c) {
        r = t + (e ? 4 : 0), c = g;
        return detail::from_bits(b[e] & 0xffffe000u);
      });
}

inline void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  detail::mma_16x8<16>(
      d, 8,
      [&](int g, int t, int e, int& r, int& c) {  // element e: register e / 2, half e % 2
        const int reg = e / 2;
        r = g + ((reg & 1) ? 8 : 0), c = 2 * t + (e & 1) + ((reg & 2) ? 8 : 0);
        return detail::bf16_to_float(a[reg] >> (16 * (e & 1)));
      },
      4,
      [&](int g, int t, int e, int& r, int& c) {
        const int reg = e / 2;
        r = 2 * t + (e & 1) + (reg ? 8 : 0), c = g;
        return detail::bf16_to_float(b[reg] >> (16 * (e & 1)));
      });
}

// ldmatrix: each lane reads the row address lane 8j + lane / 4 gave for matrix j.
inline void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0) throw std::runtime_error("ldmatrix: row address not 16-byte aligned");
  const int lane = ::sgemu::lane_id();
  for (int j = 0; j < 4; ++j) {
    const auto* row = static_cast<const unsigned char*>(::sgemu::shfl(p, 8 * j + lane / 4));
    std::memcpy(&r[j], row + 4 * (lane % 4), 4);
  }
}

// ldmatrix .trans: each lane reads two rows of each matrix (2 (lane % 4) and the next) at
// column lane / 4.
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0) throw std::runtime_error("ldmatrix: row address not 16-byte aligned");
  const int lane = ::sgemu::lane_id();
  for (int j = 0; j < 4; ++j) {
    r[j] = 0;
    for (int h = 0; h < 2; ++h) {
      const auto* row = static_cast<const unsigned char*>(::sgemu::shfl(p, 8 * j + 2 * (lane % 4) + h));
      uint16_t v;
      std::memcpy(&v, row + 2 * (lane / 4), 2);
      r[j] |= (uint32_t)v << (16 * h);
    }
  }
}

// cp.async: a copy is queued when issued and carried out only when a cp_async_wait lets its
// group go (the latest moment the hardware may complete it), so a kernel that reads a stage
// before waiting for it reads stale data here and fails the tests. The queue is the running GPU
// thread's own (sgemu::cp_async_queue, kept with its fiber).
inline void cp_async_16(void* dst, const void* src, bool valid) {
  if (reinterpret_cast<uintptr_t>(dst) % 16 != 0 || (valid && reinterpret_cast<uintptr_t>(src) % 16 != 0))
    throw std::runtime_error("cp.async: address not 16-byte aligned");
  ::sgemu::cp_async_queue().open.push_back({dst, src, valid});
}

inline void cp_async_commit() {
  ::sgemu::CpAsyncQueue& q = ::sgemu::cp_async_queue();
  q.groups.push_back(std::move(q.open));
  q.open.clear();
}

template <int N>
void cp_async_wait() {
  ::sgemu::CpAsyncQueue& q = ::sgemu::cp_async_queue();
  while (q.groups.size() > (size_t)N) {
    for (const ::sgemu::CpAsyncCopy& c : q.groups.front()) {
      if (c.valid)
        std::memcpy(c.dst, c.src, 16);
      else
        std::memset(c.dst, 0, 16);
    }
    q.groups.erase(q.groups.begin());
  }
}

#endif

}  // namespace sg::kernels::cuda::ptx
