// f32 GEMM for x86-64 with AVX2 + FMA: packed panels and a 6x16 register-blocked micro-kernel,
// the structure of GotoBLAS / BLIS written out small enough to read.
//
// Formula: C = alpha * op(A) @ op(B) + beta * C, row-major (the contract of kernels/cpu/gemm.h);
// op(A) is [M, K], op(B) is [K, N]. beta == 0 never reads C (it may hold NaN or garbage).
//
// Loops, outermost first (blocking sizes below; r = MR x NR is one micro-tile of C):
//   jc over N by NC      a column panel of C and op(B)
//     pc over K by KC    pack op(B)[pc:pc+KC, jc:jc+NC] into Bp: NR-wide slivers, each
//                        [KC][NR] contiguous (zero past N), so the kernel reads it in order
//       ic over M by MC  pack op(A)[ic:ic+MC, pc:pc+KC] into Ap: MR-tall slivers [KC][MR]
//         jr by NR, ir by MR: micro-kernel C[r] (+)= Ap sliver @ Bp sliver, KC rank-1 updates
// The micro-kernel keeps the 6x16 tile of C in 12 ymm registers; each k step loads 2 vectors
// of B, broadcasts 6 scalars of A and issues 12 FMAs (no loads or stores of C inside the k
// loop). A 16-wide sliver of Bp (KC x 16 floats = 16 KiB at KC = 256) stays in L1 while the
// MR-slivers of Ap stream past it; Ap's block (MC x KC = 144 KiB) stays in L2; Bp's panel
// sits in L3. The first k block applies beta, later ones add (beta = 1). Tiles at the M or N
// edge are computed into a 6x16 scratch and only their valid part is written.
//
// Prepacked A (gemm_pack_a_avx2 / gemm_prepacked_avx2, kernels/cpu/gemm.h): op(A) packed once,
// all M rows per k block ([K / KC blocks][M rounded up to MR rows][kc] as MR-slivers), and the
// ic loop reads its block from there instead of packing: for the Winograd convolution, whose
// 16 weight matrices meet every chunk of tiles.
//
// Implicit B (gemm_prepacked_implicit, kernels/cpu/gemm.h ImplicitB): the pc loop calls the
// caller's packer for Bp's panel instead of pack<NR> (the stride-2 convs' im2col columns,
// gathered from the images: kernels/cpu/conv.cpp S2Columns); the rest is unchanged.
//
// Row tables (kernels/cpu/gemm.h RowTable; AVX-512 only), for the stride-2 convs with 16-wide
// output rows, whose taps are 16 contiguous floats of column-split image rows (conv.cpp
// S2Planes): gemm_prepacked_row_table packs no B at all, the 6x32 kernel (12x32 where
// gemm_serial would take it) loads row k of a sliver from base + off[k] (the k blocks and the
// order of additions are those above, so the bits are those of packing the same B);
// gemm_prepacked_scatter_add adds each row of its 6x32 tiles to base + off[i] instead of storing
// C (the data gradient, with col2im's additions in its order); gemm_row_table_a reads A's rows
// in place (the weight gradient's col, k along a row in runs of 16), B packed.
//
// Threads: called from inside a parallel region (kernels/cpu/parallel.h: the conv kernels'
// tasks), it runs on the calling thread. Outside one, with at least kParallelFlops of work,
// the N (or, when N is narrow, the M) range is cut into one slice per thread (a region of the
// pool), each an independent GEMM with its own packing buffers (each thread packs the shared
// operand again: M*K or K*N extra copies against M*N*K/threads multiply-adds).
//
// Packing reads each operand in memory order. A sliver whose source rows are contiguous in k
// (A not transposed, B transposed) is packed 8 k at a time through 8x8 register transposes;
// measured (bench_cpu_gemm, 1 thread, old and new interleaved): Linear's [16, 64] @ [64, 64]^T
// 30-37 -> 49-51 GFLOP/s, [32, 192] @ [192, 192]^T 56-59 -> 70-77, the Winograd weight
// gradient's 64-channel GEMM 59-62 -> 66-74 (bench/results/cpu_gemm_pack_2026-12-01.txt); the
// others unchanged, and so is the main job's training (bench/pair_ab.sh train: 22.69 against
// 22.84 s/kimg, identical losses).
//
// AVX-512 (where the CPU reports AVX-512F): the same packed panels, and micro-kernels with
// 16-wide vectors: 6x32 (two slivers of Bp at once, 12 zmm accumulators) and, for a single
// sliver (N <= 16: the Winograd path's 16-tile chunks), 12x16 (two slivers of A); and, chosen
// by the CPU's vendor, 12x32 (two of each, 24 accumulators: off AMD's cores) and the 12x16 one
// with three of its broadcasts from a register (on AMD's cores; on Intel's a register broadcast
// takes an FMA port), measured on a Zen 5 and an Intel Xeon (cpu_gemm_intel_2026-12-03.txt).
// Every output adds its products in k order as the 6x16 kernel does, so results are the same
// bits whichever runs (tested). Measured on AMD EPYC Zen 5 (which executes 512-bit FMAs at full
// width: FMA chains 524 against 259 GFLOP/s on 2 threads, by the roofline that read 12/11 high
// until 3 December 2026, bench/roofline.h), bench_cpu_gemm, 2 threads: StyleGAN2's Winograd
// and im2col shapes 1.5-1.9x the 6x16 kernel (292-433 against 153-236 GFLOP/s);
// seed32's G forward, D, G and R1 steps 1.15-1.35x, its PL step within the noise
// (bench_train_phases, the binaries before and after alternating).
// SG_CPU_GEMM=avx2 (or gemm_use_avx512(false)) keeps the 6x16 kernel.
//
// Portable builds: the functions carry __attribute__((target("avx2,fma"))) (the AVX-512 ones
// target("avx512f,avx2,fma")), so this file compiles without -march flags; kernels/cpu/gemm.cpp
// calls it only when the CPU reports AVX2 and FMA at run time and falls back to Eigen otherwise
// (and for f64).
//
// Benchmark: build/bench_cpu_gemm (bench/bench_cpu_gemm.cpp) times this against Eigen's GEMM
// and against the machine's FMA roofline measured in the same run.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/scratch.h"

#if defined(__x86_64__) || defined(__i386__)
#include "kernels/cpu/avx2.h"

namespace sg::kernels::cpu {

namespace {

constexpr int64_t MR = kPackMR, NR = 16;   // the micro-tile: 6 rows x 2 ymm of C
constexpr int64_t MC = 144, KC = kPackKC;  // Ap block: 144 x 256 floats = 144 KiB (L2)
static_assert(MR == 6 && KC == 256, "the micro-kernel and the blocking comments assume these");
constexpr int64_t NC = 3072;                // Bp panel: 256 x 3072 floats = 3 MiB (L3)
constexpr double kParallelFlops = 1 << 21;  // below this a call stays on one thread

struct Operand {  // op(X) as a read-only view: element (r, c) of the [rows, cols] matrix op(X)
  const float* p;
  int64_t ld;
  bool trans;                           // op(X) = X^T: element (r, c) is p[c * ld + r]
  const ImplicitB* implicit = nullptr;  // B only: packed by implicit->pack (p unused), ...
  int64_t j0 = 0;                       // ... from its column j0 (a thread's slice)
};
static_assert(NR == kPackNR, "ImplicitB writes slivers of the micro-kernel's width");

// The transposing pack of a full sliver, 8 k at a time: dst[k * Wd + i] = src[i * ld + k] for
// the Wd rows i (Wd = 16: two 8x8 transposes; Wd = 6: one, over 6 rows and 2 zero rows, of
// which 6 lanes are stored). Returns the k it packed (a multiple of 8); the caller packs the
// rest.
template <int64_t Wd>
SG_AVX2 int64_t pack_rows_transposed(const float* src, int64_t ld, int64_t kc, float* dst) {
  static_assert(Wd == 16 || Wd == 6);
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8)
    for (int64_t g = 0; g < Wd; g += 8) {
      __m256 r[8];
      for (int64_t i = 0; i < 8; ++i) r[i] = g + i < Wd ? _mm256_loadu_ps(src + (g + i) * ld + k) : _mm256_setzero_ps();
      transpose8x8(r);  // r[kk][i] = src[(g + i) * ld + k + kk]
      for (int64_t kk = 0; kk < 8; ++kk) {
        float* d = dst + (k + kk) * Wd + g;
        if constexpr (Wd == 16)
          _mm256_storeu_ps(d, r[kk]);
        else  // lanes 0-3, then 4-5 (a masked store is slow on AMD's cores)
          _mm_storeu_ps(d, _mm256_castps256_ps128(r[kk])),
              _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), _mm256_extractf128_ps(r[kk], 1));
      }
    }
  return k;
}

bool use_avx512();

// A full 6-wide sliver of a k-major operand (A stored transposed: W^T in the data gradient of a
// 1x1 conv), 8 k at a time: the 8 rows' 6 floats (masked loads, nothing read past them) put
// side by side by lane permutes into 48 consecutive floats, three stores; returns the k done.
// With pack's blocks of 32 k across the slivers (below) a 384 x 384 W^T packs in 17.8 us where
// the loop of 6-float copies took 31.5 (bench/results/cpu_conv_s2_region_2026-12-03.txt).
SG_AVX512 int64_t pack_a6_k_major_avx512(const float* src, int64_t ld, int64_t kc, float* dst) {
  // Pairs of rows: [r0 0-5, r1 0-5, zeros]; then the 48 floats from the four pairs.
  alignas(64) int32_t pair[16], q[3][16];
  for (int l = 0; l < 16; ++l) pair[l] = l < 6 ? l : l < 12 ? 16 + l - 6 : 0;
  for (int o = 0; o < 3; ++o)
    for (int l = 0; l < 16; ++l) {
      const int f = 16 * o + l, pr = f / 12, within = f % 12;  // float f of the 48: pair pr, lane within
      q[o][l] = (pr - o) * 16 + within;                        // output o reads pairs o and o + 1
    }
  const __m512i ip = _mm512_load_si512(pair);
  const __m512i i0 = _mm512_load_si512(q[0]), i1 = _mm512_load_si512(q[1]), i2 = _mm512_load_si512(q[2]);
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    __m512 t[4];
    for (int j = 0; j < 4; ++j)
      t[j] = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(0x3F, src + (k + 2 * j) * ld), ip,
                                    _mm512_maskz_loadu_ps(0x3F, src + (k + 2 * j + 1) * ld));
    float* d = dst + k * 6;
    _mm512_storeu_ps(d, _mm512_permutex2var_ps(t[0], i0, t[1]));
    _mm512_storeu_ps(d + 16, _mm512_permutex2var_ps(t[1], i1, t[2]));
    _mm512_storeu_ps(d + 32, _mm512_permutex2var_ps(t[2], i2, t[3]));
  }
  return k;
}

// Packs slivers of width Wd (MR for A, NR for B) of an operand seen as [rows x cols] =
// [n x kc] from (i0, k0): dst[k * Wd + i] = X(i0 + i, k0 + k) for each sliver of Wd rows,
// zero past n. X(i, k) is p[k * ld + i] when k_major (Wd consecutive floats per k), else
// p[i * ld + k] (one contiguous row per i); each loop reads its source in memory order.
//   Ap: X = op(A) (rows i of C), k_major = A is stored transposed;
//   Bp: X = op(B)^T (columns j of C), k_major = B is stored as is.
template <int64_t Wd>
SG_AVX2 void pack(const float* p, int64_t ld, bool k_major, int64_t i0, int64_t n, int64_t k0, int64_t kc, float* dst) {
  if constexpr (Wd == 16) {
    if (k_major && n >= Wd) {
      // The full 16-wide slivers, 8 rows of k at a time across all slivers: 8 source rows are
      // read in order side by side. Sliver by sliver down all kc rows, every load lands on
      // another row (at a row length of 1024 floats another 4 KiB page each time, which the
      // prefetchers do not follow), and row by row across the slivers every store does (16 KiB
      // apart). Measured (1 thread, both builds side by side, bench/results/
      // cpu_gemm_pack_b_2026-12-03.txt): [64 x 576] @ [576 x 1024] 170-178 -> 200-202
      // GFLOP/s, [64 x 576] @ [576 x 4096] 126-132 -> 161-162, the other conv shapes 2-12%
      // faster; blocks of 4 or 16 rows gained less.
      const int64_t full = n / Wd;
      for (int64_t kb = 0; kb < kc; kb += 8) {
        const int64_t ke = std::min<int64_t>(kc, kb + 8);
        for (int64_t s = 0; s < full; ++s)
          for (int64_t k = kb; k < ke; ++k) {
            const float* src = p + (k0 + k) * ld + i0 + s * Wd;
            float* d = dst + s * Wd * kc + k * Wd;
            _mm256_store_ps(d, _mm256_loadu_ps(src)), _mm256_store_ps(d + 8, _mm256_loadu_ps(src + 8));
          }
      }
      if (full * Wd == n) return;
      i0 += full * Wd, n -= full * Wd, dst += full * Wd * kc;  // the partial sliver, below
    }
  }
  // A's full slivers, k-major, in blocks of 32 k across all the slivers (sliver by sliver down
  // all kc rows, each row on another page: bound by the TLB, 31 us for a 384 x 384 W^T).
  int64_t a6_done = 0;  // the k rows of the full slivers done here
  if constexpr (Wd == 6)
    if (k_major && n >= Wd && use_avx512()) {
      a6_done = kc / 8 * 8;
      for (int64_t kb = 0; kb < a6_done; kb += 32)
        for (int64_t s = 0; s < n / Wd; ++s)
          pack_a6_k_major_avx512(p + (k0 + kb) * ld + i0 + s * Wd, ld, std::min<int64_t>(32, a6_done - kb),
                                 dst + s * Wd * kc + kb * Wd);
    }
  for (int64_t ir = 0; ir < n; ir += Wd, dst += Wd * kc) {
    const int64_t w = std::min(Wd, n - ir);
    if (k_major) {
      for (int64_t k = w == Wd ? a6_done : 0; k < kc; ++k) {
        const float* src = p + (k0 + k) * ld + i0 + ir;
        float* d = dst + k * Wd;
        if constexpr (Wd == 16) {
          if (w == Wd) {
            _mm256_store_ps(d, _mm256_loadu_ps(src)), _mm256_store_ps(d + 8, _mm256_loadu_ps(src + 8));
            continue;
          }
        }
        for (int64_t i = 0; i < w; ++i) d[i] = src[i];
        for (int64_t i = w; i < Wd; ++i) d[i] = 0.f;
      }
    } else {
      int64_t k_done = 0;  // a full sliver: 8 k at a time, as 8x8 transposes
      if (w == Wd) k_done = pack_rows_transposed<Wd>(p + (i0 + ir) * ld + k0, ld, kc, dst);
      for (int64_t i = 0; i < Wd; ++i) {
        if (i >= w) {
          for (int64_t k = k_done; k < kc; ++k) dst[k * Wd + i] = 0.f;
          continue;
        }
        const float* src = p + (i0 + ir + i) * ld + k0;
        for (int64_t k = k_done; k < kc; ++k) dst[k * Wd + i] = src[k];
      }
    }
  }
}

// row[0:16] = alpha * [lo hi] + beta * row (beta == 0: row not read).
SG_AVX2 inline void store_row(float* row, __m256 lo, __m256 hi, float alpha, float beta) {
  const __m256 va = _mm256_set1_ps(alpha);
  lo = _mm256_mul_ps(lo, va), hi = _mm256_mul_ps(hi, va);
  if (beta != 0.f) {
    const __m256 vb = _mm256_set1_ps(beta);
    lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row), lo);
    hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row + 8), hi);
  }
  _mm256_storeu_ps(row, lo), _mm256_storeu_ps(row + 8, hi);
}

// C[0:6, 0:16] = alpha * (a @ b) + beta * C (beta == 0: C not read). a: [kc][6], b: [kc][16].
SG_AVX2 void micro_kernel(int64_t kc, const float* a, const float* b, float alpha, float beta, float* c, int64_t ldc) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(),
         c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(),
         c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4  // with the prefetch: kept, though no gain was measurable in the noise
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ai = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00), c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10), c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20), c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30), c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40), c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50), c51 = _mm256_fmadd_ps(ai, b1, c51);
  }
  store_row(c + 0 * ldc, c00, c01, alpha, beta), store_row(c + 1 * ldc, c10, c11, alpha, beta);
  store_row(c + 2 * ldc, c20, c21, alpha, beta), store_row(c + 3 * ldc, c30, c31, alpha, beta);
  store_row(c + 4 * ldc, c40, c41, alpha, beta), store_row(c + 5 * ldc, c50, c51, alpha, beta);
}

// The AVX-512 kernel: C[0:6, 0:32] = alpha * (a @ [b0 b1]) + beta * C, two adjacent 16-wide
// slivers of Bp (b0, b1: [kc][16] each) in one zmm each and the 6x32 tile in 12 zmm registers;
// each k step loads 2 vectors of B, broadcasts 6 scalars of A and issues 12 FMAs, as
// micro_kernel does on half the width. Every lane adds its products in k order and stores
// alpha * acc (+ beta * C) as micro_kernel does, so the two give the same bits: which one runs
// never changes a result. On CPUs that execute 512-bit FMAs at full width (Zen 5, Intel's
// server cores) it has twice micro_kernel's peak; on Zen 4 (two 256-bit halves) about the same.
SG_AVX512 inline void store_row512(float* row, __m512 v, float alpha, float beta) {
  v = _mm512_mul_ps(v, _mm512_set1_ps(alpha));
  if (beta != 0.f) v = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_loadu_ps(row), v);
  _mm512_storeu_ps(row, v);
}

// With a row table (kTable: gemm_prepacked_row_table), B is read in place: row k of the two
// slivers is the 16 floats at b0 + off[k] and at b1 + off[k].
// c1: where the second 16 columns of C start, from c (NR: beside the first).
template <bool kTable = false>
SG_AVX512 void micro_kernel_6x32(int64_t kc, const float* a, const float* b0, const float* b1, float alpha, float beta,
                                 float* c, int64_t ldc, const int32_t* off = nullptr, int64_t c1 = NR) {
  __m512 c0[MR], c1v[MR];
  for (int i = 0; i < MR; ++i) c0[i] = _mm512_setzero_ps(), c1v[i] = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k, a += MR) {
    __m512 v0, v1;
    if constexpr (kTable) {
      v0 = _mm512_loadu_ps(b0 + off[k]), v1 = _mm512_loadu_ps(b1 + off[k]);
    } else {
      _mm_prefetch(reinterpret_cast<const char*>(b0 + 8 * NR), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b1 + 8 * NR), _MM_HINT_T0);
      v0 = _mm512_loadu_ps(b0), v1 = _mm512_loadu_ps(b1);
      b0 += NR, b1 += NR;
    }
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      c0[i] = _mm512_fmadd_ps(ai, v0, c0[i]), c1v[i] = _mm512_fmadd_ps(ai, v1, c1v[i]);
    }
  }
  for (int i = 0; i < MR; ++i)
    store_row512(c + i * ldc, c0[i], alpha, beta), store_row512(c + i * ldc + c1, c1v[i], alpha, beta);
}

// Two slivers of A against two of B: C[0:12, 0:32] in 24 zmm accumulators; each k step loads
// 2 vectors of B, broadcasts 12 scalars of A and issues 24 FMAs (14 loads per 24 FMAs, against
// the 6x32 kernel's 8 per 12). The same FMAs in the same order per element: the same bits.
// Taken where tall_wide_switch() says (Intel's cores: there, with the data in L1, 188-194
// against the 6x32 kernel's 175-185 GFLOP/s, and bench_cpu_gemm's StyleGAN2 shapes 1.05-1.4x;
// on Zen 5 an earlier 12x32 kernel gained nothing: bench/results/cpu_gemm_intel_2026-12-03.txt).
// With a row table (kTable), B is read in place and C's second 16 columns start at c + c1, as
// in micro_kernel_6x32.
template <bool kTable = false>
SG_AVX512 void micro_kernel_12x32(int64_t kc, const float* a0, const float* a1, const float* b0, const float* b1,
                                  float alpha, float beta, float* c, int64_t ldc, const int32_t* off = nullptr,
                                  int64_t c1 = NR) {
  __m512 acc[2 * MR][2];
  for (int i = 0; i < 2 * MR; ++i) acc[i][0] = _mm512_setzero_ps(), acc[i][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k, a0 += MR, a1 += MR) {
    __m512 v0, v1;
    if constexpr (kTable) {
      v0 = _mm512_loadu_ps(b0 + off[k]), v1 = _mm512_loadu_ps(b1 + off[k]);
    } else {
      v0 = _mm512_loadu_ps(b0), v1 = _mm512_loadu_ps(b1);
      b0 += NR, b1 += NR;
    }
    for (int i = 0; i < 2 * MR; ++i) {
      const __m512 ai = _mm512_set1_ps(i < MR ? a0[i] : a1[i - MR]);
      acc[i][0] = _mm512_fmadd_ps(ai, v0, acc[i][0]), acc[i][1] = _mm512_fmadd_ps(ai, v1, acc[i][1]);
    }
  }
  for (int i = 0; i < 2 * MR; ++i)
    store_row512(c + i * ldc, acc[i][0], alpha, beta), store_row512(c + i * ldc + c1, acc[i][1], alpha, beta);
}

// The 6x32 kernel with A's six rows read in place (gemm_row_table_a): row i's k-th value at
// a[i][(k / 16) * a_stride + k % 16]; kc a multiple of 16. The same FMAs in the same order.
SG_AVX512 void micro_kernel_6x32_rows_a(int64_t kc, const float* const* a, int64_t a_stride, const float* b0,
                                        const float* b1, float* c, int64_t ldc) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) c0[i] = _mm512_setzero_ps(), c1[i] = _mm512_setzero_ps();
  for (int64_t k0 = 0; k0 < kc; k0 += 16) {
    const float* r[MR];
    for (int i = 0; i < MR; ++i) r[i] = a[i] + (k0 / 16) * a_stride;
#pragma GCC unroll 4
    for (int64_t kk = 0; kk < 16; ++kk, b0 += NR, b1 += NR) {
      const __m512 v0 = _mm512_loadu_ps(b0), v1 = _mm512_loadu_ps(b1);
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(r[i][kk]);
        c0[i] = _mm512_fmadd_ps(ai, v0, c0[i]), c1[i] = _mm512_fmadd_ps(ai, v1, c1[i]);
      }
    }
  }
  for (int i = 0; i < MR; ++i) _mm512_storeu_ps(c + i * ldc, c0[i]), _mm512_storeu_ps(c + i * ldc + NR, c1[i]);
}

// The other AVX-512 shape, for GEMMs one sliver of Bp wide (N <= 16: the Winograd path's
// chunks of 16 tiles at low resolution): C[0:12, 0:16] from two adjacent 6-row slivers of A
// (a0, a1: [kc][6] each) and one of B, 12 zmm accumulators; each k step loads 1 vector of B,
// broadcasts 12 scalars of A and issues 12 FMAs. The same bits as micro_kernel, as above.
// Broadcasting all 12 from memory (13 loads per 12 FMAs) ran 7-10% slower than the 6x32
// kernel (8 loads), with its data in L1: Zen 5 seems to take two such loads per cycle.
// So there (kSpread) a1[0:3] come from one 128-bit load, spread in registers (vbroadcastss
// from a register, after a movshdup or movhlps for lanes 1 and 2): 11 loads. Measured (1
// thread, the old and new builds alternating, bench/results/cpu_gemm_12x16_2026-12-03.txt):
// [384 x 384] @ [384 x 16] 205-214 -> 227-236 GFLOP/s; seed32's 1x1 skip at 4x4 (per-image
// GEMMs of 16 columns), 2 threads, forward 1.10-1.19x, data gradient 1.05-1.09x. Spreading
// a0's lanes too, or any of the 6x32 kernel's, gained nothing. On Intel's cores the opposite:
// a register broadcast is a shuffle, and shuffles share port 5 with the second FMA unit, so
// the spread kernel ran 134 against 173 GFLOP/s with its data in L1 (a Xeon with AVX-512,
// bench/results/cpu_gemm_intel_2026-12-03.txt). spread_switch() picks by vendor.
template <bool kSpread>
SG_AVX512 void micro_kernel_12x16(int64_t kc, const float* a0, const float* a1, const float* b, float alpha, float beta,
                                  float* c, int64_t ldc) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) c0[i] = _mm512_setzero_ps(), c1[i] = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k, a0 += MR, a1 += MR, b += NR) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
    const __m512 v = _mm512_loadu_ps(b);
    __m512 a1r[3] = {};
    if constexpr (kSpread) {
      const __m128 q = _mm_loadu_ps(a1);  // a1[0:4]: three of its lanes broadcast in registers
      a1r[0] = _mm512_set1_ps(_mm_cvtss_f32(q)), a1r[1] = _mm512_set1_ps(_mm_cvtss_f32(_mm_movehdup_ps(q)));
      a1r[2] = _mm512_set1_ps(_mm_cvtss_f32(_mm_movehl_ps(q, q)));
    }
    for (int i = 0; i < MR; ++i) {
      c0[i] = _mm512_fmadd_ps(_mm512_set1_ps(a0[i]), v, c0[i]);
      c1[i] = _mm512_fmadd_ps(kSpread && i < 3 ? a1r[i] : _mm512_set1_ps(a1[i]), v, c1[i]);
    }
  }
  for (int i = 0; i < MR; ++i)
    store_row512(c + i * ldc, c0[i], alpha, beta), store_row512(c + (MR + i) * ldc, c1[i], alpha, beta);
}

// Whether micro_kernel_12x16 spreads a1's lanes in registers: on AMD's cores (measured on Zen
// 5), not on others (Intel's, where shuffles take an FMA port). SG_CPU_SPREAD=0 or 1 fixes it;
// gemm_spread_broadcasts (gemm.h) switches it.
bool cpu_is_amd() {
  __builtin_cpu_init();
  return __builtin_cpu_is("amd") != 0;
}
// The environment variable `name` as a switch ("0": off, anything else: on), else `fallback`.
bool env_switch(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  return v ? std::strcmp(v, "0") != 0 : fallback;
}
std::atomic<bool>& spread_switch() {
  static std::atomic<bool> on{env_switch("SG_CPU_SPREAD", cpu_is_amd())};
  return on;
}
// Whether gemm_serial runs micro_kernel_12x32 where two slivers of both A and B remain: not on
// AMD's cores (measured on Zen 5: no gain), on others (Intel's). SG_CPU_12X32=0 or 1 fixes it;
// gemm_tall_wide (gemm.h) switches it.
std::atomic<bool>& tall_wide_switch() {
  static std::atomic<bool> on{env_switch("SG_CPU_12X32", !cpu_is_amd())};
  return on;
}

// Per-thread packing buffers (slot 0: Bp, 1: Ap), grow-only and aligned for the aligned loads
// of Bp (kernels/cpu/scratch.h): the conv kernels call GEMMs of the same few shapes again and
// again.
struct GemmScratch;
float* scratch(int slot, int64_t floats) { return thread_scratch<GemmScratch, float>(slot, floats); }

// Whether gemm_serial takes the AVX-512 micro-kernels: the CPU has AVX-512F, and SG_CPU_GEMM is
// not "avx2" (kernels/cpu/gemm.cpp: the 256-bit kernel alone, to compare the two in one build);
// gemm_use_avx512 (gemm.h) switches it.
std::atomic<bool>& avx512_switch() {
  static std::atomic<bool> on = [] {
    const char* v = std::getenv("SG_CPU_GEMM");
    return gemm_avx512_available() && !(v && std::strcmp(v, "avx2") == 0);
  }();
  return on;
}
bool use_avx512() { return avx512_switch().load(std::memory_order_relaxed); }

// One thread: C[0:M, 0:N] = alpha * op(A) @ op(B) + beta * C with the loops of the header.
// Apre: op(A) already packed (gemm_pack_a_avx2, Mpad rows padded to MR) and these M rows
// starting at its row a_row0 (a multiple of MR); null: A is packed here, block by block.
SG_AVX2 void gemm_serial(int64_t M, int64_t N, int64_t K, float alpha, const Operand& A, const Operand& B, float beta,
                         float* C, int64_t ldc, const float* Apre = nullptr, int64_t Mpad = 0, int64_t a_row0 = 0) {
  const int64_t nc_max = std::min(NC, (N + NR - 1) / NR * NR), kc_max = std::min(KC, K);
  const int64_t mc_max = std::min(MC, (M + MR - 1) / MR * MR);
  float* const Bp = scratch(0, nc_max * kc_max);
  float* const Ap = Apre ? nullptr : scratch(1, mc_max * kc_max);
  alignas(64) float edge[2 * MR * 2 * NR];
  const bool wide_ok = use_avx512(), spread = spread_switch().load(std::memory_order_relaxed);
  const bool tall_wide = tall_wide_switch().load(std::memory_order_relaxed);
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const float beta_k = pc == 0 ? beta : 1.f;
      if (B.implicit)
        B.implicit->pack(B.implicit->ctx, B.j0 + jc, nc, pc, kc, Bp);
      else
        pack<NR>(B.p, B.ld, !B.trans, jc, nc, pc, kc, Bp);
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        const float* Ablk = Ap;
        if (Apre)  // its k block pc holds Mpad rows of kc: rows a_row0 + ic on
          Ablk = Apre + pc * Mpad + (a_row0 + ic) * kc;
        else
          pack<MR>(A.p, A.ld, A.trans, ic, mc, pc, kc, Ap);
        // Where the CPU has AVX-512: two slivers of Bp at a time (micro_kernel_6x32, or with
        // two slivers of A micro_kernel_12x32 where tall_wide), or for a single sliver two
        // slivers of A (micro_kernel_12x16); else, and at the edges, one of each through
        // micro_kernel. Partial tiles go through `edge`.
        for (int64_t jr = 0, step; jr < nc; jr += step) {
          const bool wide = wide_ok && nc - jr >= 2 * NR;
          step = wide ? 2 * NR : NR;
          const int64_t nr = std::min(step, nc - jr);
          const float* b = Bp + jr * kc;
          for (int64_t ir = 0, rows; ir < mc; ir += rows) {
            const bool tall = wide_ok && (!wide || tall_wide) && mc - ir >= 2 * MR;  // two slivers of A
            rows = tall ? 2 * MR : MR;
            const int64_t mr = std::min(rows, mc - ir);
            const float* a = Ablk + ir * kc;
            float* c = C + (ic + ir) * ldc + jc + jr;
            const bool full = mr == rows && nr == step;
            const float al = full ? alpha : 1.f, be = full ? beta_k : 0.f;
            float* const out = full ? c : edge;
            const int64_t ldo = full ? ldc : step;
            if (wide && tall)
              micro_kernel_12x32(kc, a, a + MR * kc, b, b + NR * kc, al, be, out, ldo);
            else if (wide)
              micro_kernel_6x32(kc, a, b, b + NR * kc, al, be, out, ldo);
            else if (tall && spread)
              micro_kernel_12x16<true>(kc, a, a + MR * kc, b, al, be, out, ldo);
            else if (tall)
              micro_kernel_12x16<false>(kc, a, a + MR * kc, b, al, be, out, ldo);
            else
              micro_kernel(kc, a, b, al, be, out, ldo);
            if (full) continue;
            for (int64_t i = 0; i < mr; ++i)
              for (int64_t j = 0; j < nr; ++j) {
                const float v = alpha * edge[i * step + j];
                c[i * ldc + j] = beta_k == 0.f ? v : v + beta_k * c[i * ldc + j];
              }
          }
        }
      }
    }
  }
}

}  // namespace

bool gemm_avx2_available() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

bool gemm_avx512_available() {
  static const bool ok = gemm_avx2_available() && __builtin_cpu_supports("avx512f");
  return ok;
}

bool gemm_use_avx512(bool on) { return avx512_switch().exchange(on && gemm_avx512_available()); }

bool gemm_avx512_enabled() { return use_avx512(); }

bool gemm_spread_broadcasts(bool on) { return spread_switch().exchange(on); }

bool gemm_tall_wide(bool on) { return tall_wide_switch().exchange(on); }

namespace {
// gemm_f32_avx2 and gemm_prepacked_avx2 once the shapes are non-trivial (M, N, K > 0, alpha
// != 0): on this thread, or sliced across the threads.
void run(int64_t M, int64_t N, int64_t K, float alpha, const Operand& a, const Operand& b, float beta, float* C,
         int64_t ldc, const float* Apre, int64_t Mpad) {
  const bool trans_a = a.trans, trans_b = b.trans;
  const float *A = a.p, *B = b.p;
  const int64_t lda = a.ld, ldb = b.ld;
  const int threads = in_parallel() ? 1 : num_threads();
  if (threads <= 1 || 2.0 * double(M) * double(N) * double(K) < kParallelFlops) {
    gemm_serial(M, N, K, alpha, a, b, beta, C, ldc, Apre, Mpad, 0);
    return;
  }
  // One slice per thread: columns (multiples of NR) when N is wide enough, else rows.
  const bool split_n = N >= threads * 4 * NR || N >= M;
  const int64_t extent = split_n ? N : M, unit = split_n ? NR : MR;
  const int64_t units = (extent + unit - 1) / unit;
  const int64_t slices = std::min<int64_t>(threads, units);
  parallel_for(slices, true, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t u0 = units * s / slices, u1 = units * (s + 1) / slices;
      const int64_t lo = u0 * unit, hi = std::min(extent, u1 * unit);
      if (hi <= lo) continue;
      if (split_n) {
        Operand bs = b;
        if (b.implicit)
          bs.j0 += lo;
        else
          bs.p = trans_b ? B + lo * ldb : B + lo;
        gemm_serial(M, hi - lo, K, alpha, a, bs, beta, C + lo, ldc, Apre, Mpad, 0);
      } else {
        const Operand as{trans_a ? A + lo : A + lo * lda, lda, trans_a};
        gemm_serial(hi - lo, N, K, alpha, as, b, beta, C + lo * ldc, ldc, Apre, Mpad, lo);
      }
    }
  });
}

// C = beta * C (no product: K == 0 or alpha == 0).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
}
}  // namespace

void gemm_f32_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.f) return scale_c(M, N, beta, C, ldc);
  run(M, N, K, alpha, Operand{A, lda, trans_a}, Operand{B, ldb, trans_b}, beta, C, ldc, nullptr, 0);
}

void gemm_pack_a_avx2(PackedA& p, bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda) {
  p.trans = trans_a, p.M = M, p.K = K, p.lda = lda, p.src = A;
  if (M <= 0 || K <= 0) return p.data.clear();  // keeps its memory
  const int64_t Mpad = (M + MR - 1) / MR * MR;
  // Not cleared first: resize value-initializes only elements past the old size, and the pack
  // below writes every element (zero past M), so packing again at the same size fills nothing.
  // (clear() then resize() zeroed the whole buffer each time: 3% of seed32's G forward and PL
  // step samples, perf.)
  p.data.resize((size_t)(Mpad * K));
  for (int64_t pc = 0; pc < K; pc += KC)
    pack<MR>(A, lda, trans_a, 0, M, pc, std::min(KC, K - pc), p.data.data() + pc * Mpad);
}

void gemm_packed_a_prepare_avx2(PackedA& p, int64_t M, int64_t K) {
  // src: the packed data itself, seen as [M, K] (never read: gemm_serial reads Apre), so that
  // run()'s slicing offsets a real pointer.
  p.trans = false, p.M = M, p.K = K, p.lda = std::max<int64_t>(K, 1);
  if (M <= 0 || K <= 0) return p.data.clear(), void(p.src = nullptr);
  const int64_t Mpad = (M + MR - 1) / MR * MR;
  p.data.resize((size_t)(Mpad * K));  // not cleared: the caller writes every element of its M rows
  p.src = p.data.data();
  if (Mpad == M) return;
  for (int64_t pc = 0; pc < K; pc += KC) {  // the last sliver's rows M .. Mpad - 1 of each k block
    const int64_t kc = std::min(KC, K - pc);
    float* last = p.data.data() + pc * Mpad + (Mpad - MR) * kc;
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t i = M - (Mpad - MR); i < MR; ++i) last[k * MR + i] = 0.f;
  }
}

void gemm_pack_a_segments_avx2(PackedA& p, int64_t M, int64_t K, const float* A, int64_t lda, int64_t seg,
                               int64_t seg_stride) {
  if (seg <= 0 && K > 0)
    throw std::invalid_argument("gemm_pack_a_segments: segments of " + std::to_string(seg) + " columns");
  gemm_packed_a_prepare_avx2(p, M, K);  // (its zeroing of the padding rows is redone by pack: cheap)
  if (M <= 0 || K <= 0) return;
  // One task per (k block, MR-row sliver): the sliver's [kc][MR] floats, segment by segment
  // (each run of k inside one segment is a plain row-major [MR, len] block for pack<MR>).
  const int64_t Mpad = (M + MR - 1) / MR * MR, slivers = Mpad / MR, blocks = (K + KC - 1) / KC;
  float* const data = p.data.data();
  parallel_for(blocks * slivers, 2.0 * double(M) * double(K) >= double(1 << 18), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t pc = t / slivers * KC, i0 = t % slivers * MR, kc = std::min(KC, K - pc);
      float* const dst = data + pc * Mpad + i0 * kc;
      for (int64_t k = pc, len; k < pc + kc; k += len) {
        const int64_t s = k / seg, c = k % seg;
        len = std::min(seg - c, pc + kc - k);
        pack<MR>(A + s * seg_stride, lda, false, i0, std::min(MR, M - i0), c, len, dst + (k - pc) * MR);
      }
    }
  });
}

void gemm_prepacked_implicit(const PackedA& A, int64_t N, const ImplicitB& b, float alpha, float beta, float* C,
                             int64_t ldc) {
  if (A.M <= 0 || N <= 0) return;
  if (A.K <= 0 || alpha == 0.f) return scale_c(A.M, N, beta, C, ldc);
  if (A.data.empty() || !b.pack)
    throw std::logic_error("gemm_prepacked_implicit: needs an operand packed for the packed kernel and a packer");
  Operand ob{nullptr, 0, false};
  ob.implicit = &b;
  run(A.M, N, A.K, alpha, Operand{A.src, A.lda, A.trans}, ob, beta, C, ldc, A.data.data(), (A.M + MR - 1) / MR * MR);
}

void gemm_prepacked_row_table(const PackedA& A, int64_t N, const RowTable& b, float* C, int64_t ldc,
                              int64_t c_sliver_stride) {
  if (A.M <= 0 || N <= 0) return;
  if (A.data.empty() || !use_avx512() || N % (2 * NR) != 0 || !b.off)
    throw std::logic_error(
        "gemm_prepacked_row_table: needs A packed for the packed kernel, its AVX-512 kernels on, N a multiple of 32 "
        "(got " +
        std::to_string(N) + ") and a row table");
  // The loops of gemm_serial without the packing of B: per k block, each pair of slivers against
  // all the MR-row slivers of A; k blocks after the first add to C (the same additions in the
  // same order as packing B, so the same bits); partial tiles of A's last rows through `edge`.
  const int64_t M = A.M, K = A.K, Mpad = (M + MR - 1) / MR * MR;
  const bool tall = tall_wide_switch().load(std::memory_order_relaxed);
  alignas(64) float edge[MR * 2 * NR];
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = std::min(KC, K - pc);
    const float beta = pc == 0 ? 0.f : 1.f;
    for (int64_t jr = 0; jr < N; jr += 2 * NR) {
      const float* b0 = b.base + (jr / NR) * b.sliver_stride;
      for (int64_t ir = 0, rows; ir < M; ir += rows) {
        const float* a = A.data.data() + pc * Mpad + ir * kc;
        float* c = C + ir * ldc + (jr / NR) * c_sliver_stride;
        const int64_t mr = std::min(MR, M - ir);
        rows = MR;
        if (tall && M - ir >= 2 * MR) {  // two slivers of A (Intel's cores: gemm_serial's choice)
          micro_kernel_12x32<true>(kc, a, a + MR * kc, b0, b0 + b.sliver_stride, 1.f, beta, c, ldc, b.off + pc,
                                   c_sliver_stride);
          rows = 2 * MR;
          continue;
        }
        if (mr == MR) {
          micro_kernel_6x32<true>(kc, a, b0, b0 + b.sliver_stride, 1.f, beta, c, ldc, b.off + pc, c_sliver_stride);
          continue;
        }
        micro_kernel_6x32<true>(kc, a, b0, b0 + b.sliver_stride, 1.f, 0.f, edge, 2 * NR, b.off + pc);
        for (int64_t i = 0; i < mr; ++i)
          for (int64_t j = 0; j < 2 * NR; ++j) {
            float& o = c[i * ldc + (j / NR) * c_sliver_stride + j % NR];
            o = beta == 0.f ? edge[i * 2 * NR + j] : edge[i * 2 * NR + j] + o;
          }
      }
    }
  }
}

namespace {
SG_AVX512 void add16(float* dst, const float* src) {
  _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), _mm512_loadu_ps(src)));
}
}  // namespace

void gemm_prepacked_scatter_add(const PackedA& A, int64_t N, const float* B, int64_t ldb, const RowTable& c) {
  if (A.M <= 0 || N <= 0 || A.K <= 0) return;
  if (A.data.empty() || !use_avx512() || N % (2 * NR) != 0 || A.K > KC || !c.off)
    throw std::logic_error(
        "gemm_prepacked_scatter_add: needs A packed for the packed kernel, its AVX-512 kernels on, N a multiple of 32 "
        "(got " +
        std::to_string(N) + "), K <= " + std::to_string(KC) + " (got " + std::to_string(A.K) + ") and a row table");
  // B packed whole (one k block); then A's slivers in order, each against every pair of B's
  // slivers, the 6 x 32 tile computed into `tile` and its rows added where the table says.
  const int64_t M = A.M, K = A.K;
  float* const Bp = scratch(0, N * K);
  pack<NR>(B, ldb, true, 0, N, 0, K, Bp);
  alignas(64) float tile[MR * 2 * NR];
  for (int64_t ir = 0; ir < M; ir += MR) {
    const float* a = A.data.data() + ir * K;
    const int64_t mr = std::min(MR, M - ir);
    for (int64_t jr = 0; jr < N; jr += 2 * NR) {
      micro_kernel_6x32(K, a, Bp + jr * K, Bp + (jr + NR) * K, 1.f, 0.f, tile, 2 * NR);
      float* const d = c.base + (jr / NR) * c.sliver_stride;
      for (int64_t i = 0; i < mr; ++i)
        add16(d + c.off[ir + i], tile + i * 2 * NR), add16(d + c.sliver_stride + c.off[ir + i], tile + i * 2 * NR + NR);
    }
  }
}

void gemm_row_table_a(int64_t M, int64_t N, int64_t K, const RowTable& a, const float* B, int64_t ldb, bool trans_b,
                      float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (!use_avx512() || N % (2 * NR) != 0 || K % 16 != 0 || K > KC || !a.off)
    throw std::logic_error("gemm_row_table_a: needs the packed kernel's AVX-512 kernels on, N a multiple of 32 (got " +
                           std::to_string(N) + "), K a multiple of 16 and at most " + std::to_string(KC) + " (got " +
                           std::to_string(K) + ") and a row table");
  if (K == 0) return scale_c(M, N, 0.f, C, ldc);
  // B packed whole (one k block); each 6-row sliver of A read in place against every pair of
  // B's slivers, partial slivers of A (its last rows repeated) through `edge`.
  float* const Bp = scratch(0, N * K);
  pack<NR>(B, ldb, !trans_b, 0, N, 0, K, Bp);
  alignas(64) float edge[MR * 2 * NR];
  for (int64_t ir = 0; ir < M; ir += MR) {
    const int64_t mr = std::min(MR, M - ir);
    const float* rows[MR];
    for (int64_t i = 0; i < MR; ++i) rows[i] = a.base + a.off[ir + std::min(i, mr - 1)];
    for (int64_t jr = 0; jr < N; jr += 2 * NR) {
      float* c = C + ir * ldc + jr;
      micro_kernel_6x32_rows_a(K, rows, a.sliver_stride, Bp + jr * K, Bp + (jr + NR) * K, mr == MR ? c : edge,
                               mr == MR ? ldc : 2 * NR);
      if (mr < MR)
        for (int64_t i = 0; i < mr; ++i) std::memcpy(c + i * ldc, edge + i * 2 * NR, sizeof(float) * 2 * NR);
    }
  }
}

PackedA gemm_pack_a_avx2(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda) {
  PackedA p;
  gemm_pack_a_avx2(p, trans_a, M, K, A, lda);
  return p;
}

void gemm_prepacked_avx2(const PackedA& A, bool trans_b, int64_t N, float alpha, const float* B, int64_t ldb,
                         float beta, float* C, int64_t ldc) {
  if (A.M <= 0 || N <= 0) return;
  if (A.K <= 0 || alpha == 0.f) return scale_c(A.M, N, beta, C, ldc);
  if (A.data.empty()) throw std::logic_error("gemm_prepacked_avx2: the operand was not packed by gemm_pack_a_avx2");
  run(A.M, N, A.K, alpha, Operand{A.src, A.lda, A.trans}, Operand{B, ldb, trans_b}, beta, C, ldc, A.data.data(),
      (A.M + MR - 1) / MR * MR);
}

void gemm_prepacked_rows(const PackedA& A, int64_t row0, int64_t rows, bool trans_b, int64_t N, float alpha,
                         const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (A.data.empty() || row0 % MR != 0 || row0 < 0 || rows < 0 || row0 + rows > A.M)
    throw std::logic_error("gemm_prepacked_rows: needs A packed for the packed kernel and rows " +
                           std::to_string(row0) + " .. " + std::to_string(row0 + rows) + " of its " +
                           std::to_string(A.M) + " from a multiple of " + std::to_string(MR));
  if (rows == 0 || N <= 0) return;
  if (A.K <= 0 || alpha == 0.f) return scale_c(rows, N, beta, C, ldc);
  gemm_serial(rows, N, A.K, alpha, Operand{A.src, A.lda, A.trans}, Operand{B, ldb, trans_b}, beta, C, ldc,
              A.data.data(), (A.M + MR - 1) / MR * MR, row0);
}

}  // namespace sg::kernels::cpu

#else  // not x86: no AVX2; kernels/cpu/gemm.cpp always takes Eigen's GEMM

namespace sg::kernels::cpu {
bool gemm_avx2_available() { return false; }
bool gemm_avx512_available() { return false; }
bool gemm_use_avx512(bool) { return false; }
bool gemm_avx512_enabled() { return false; }
bool gemm_spread_broadcasts(bool) { return false; }
bool gemm_tall_wide(bool) { return false; }
void gemm_f32_avx2(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                   float*, int64_t) {
  throw std::logic_error("gemm_f32_avx2: this build is not for x86-64");
}
void gemm_packed_a_prepare_avx2(PackedA&, int64_t, int64_t) {
  throw std::logic_error("gemm_packed_a_prepare_avx2: this build is not for x86-64");
}
PackedA gemm_pack_a_avx2(bool, int64_t, int64_t, const float*, int64_t) {
  throw std::logic_error("gemm_pack_a_avx2: this build is not for x86-64");
}
void gemm_pack_a_avx2(PackedA&, bool, int64_t, int64_t, const float*, int64_t) {
  throw std::logic_error("gemm_pack_a_avx2: this build is not for x86-64");
}
void gemm_prepacked_avx2(const PackedA&, bool, int64_t, float, const float*, int64_t, float, float*, int64_t) {
  throw std::logic_error("gemm_prepacked_avx2: this build is not for x86-64");
}
void gemm_prepacked_rows(const PackedA&, int64_t, int64_t, bool, int64_t, float, const float*, int64_t, float, float*,
                         int64_t) {
  throw std::logic_error("gemm_prepacked_rows: this build is not for x86-64");
}
void gemm_pack_a_segments_avx2(PackedA&, int64_t, int64_t, const float*, int64_t, int64_t, int64_t) {
  throw std::logic_error("gemm_pack_a_segments_avx2: this build is not for x86-64");
}
void gemm_prepacked_implicit(const PackedA&, int64_t, const ImplicitB&, float, float, float*, int64_t) {
  throw std::logic_error("gemm_prepacked_implicit: this build is not for x86-64");
}
void gemm_prepacked_row_table(const PackedA&, int64_t, const RowTable&, float*, int64_t, int64_t) {
  throw std::logic_error("gemm_prepacked_row_table: this build is not for x86-64");
}
void gemm_prepacked_scatter_add(const PackedA&, int64_t, const float*, int64_t, const RowTable&) {
  throw std::logic_error("gemm_prepacked_scatter_add: this build is not for x86-64");
}
void gemm_row_table_a(int64_t, int64_t, int64_t, const RowTable&, const float*, int64_t, bool, float*, int64_t) {
  throw std::logic_error("gemm_row_table_a: this build is not for x86-64");
}
}  // namespace sg::kernels::cpu
#endif
