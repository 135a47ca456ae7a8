// x86-64 SIMD helpers shared by the CPU kernels (gemm_avx2.cpp, winograd.cpp, conv.cpp): the
// target attributes for AVX2 and AVX-512 functions, and 8x8 and 16x16 register transposes.
//
// Each function carries __attribute__((target("avx2,fma"))) (SG_AVX2), so the files that use
// them compile without -march flags (portable builds, -DSG_NATIVE=OFF); callers take these
// paths only when gemm_avx2_available() (kernels/cpu/gemm.h) reports AVX2 and FMA at run time
// (and AVX-512 ones, SG_AVX512, when gemm_avx512_available() reports AVX-512F).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define SG_AVX2 __attribute__((target("avx2,fma")))
// The same for AVX-512 functions (gemm_avx2.cpp's micro_kernel_6x32 / _12x16): callers check
// gemm_avx512_available().
#define SG_AVX512 __attribute__((target("avx512f,avx2,fma")))

namespace sg::kernels::cpu {

// r[0..7] (8 rows of 8) becomes its transpose in place: r[i][j] <- r[j][i]. Three rounds of
// shuffles: pairs of rows interleaved (unpack), pairs of pairs (shuffle), then 128-bit halves.
SG_AVX2 inline void transpose8x8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2)
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44), u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44), u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// r[0..15] (16 rows of 16) becomes its transpose in place, the same three rounds with a
// fourth: pairs of rows (unpack), pairs of pairs (shuffle, each 128-bit lane then holds a 4x4
// block transposed), then the 4x4 grid of 128-bit lanes transposed (two rounds of
// shuffle_f32x4).
SG_AVX512 inline void transpose16x16(__m512 r[16]) {
  const __mmask16 all = 0xFFFF;  // (the unmasked intrinsics trip GCC 12's -Wmaybe-uninitialized)
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_ps(all, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_ps(all, r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // u[i + k], lane L: rows i .. i + 3 of column 4 L + k
    u[i] = _mm512_maskz_shuffle_ps(all, t[i], t[i + 2], 0x44);
    u[i + 1] = _mm512_maskz_shuffle_ps(all, t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm512_maskz_shuffle_ps(all, t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm512_maskz_shuffle_ps(all, t[i + 1], t[i + 3], 0xEE);
  }
  for (int k = 0; k < 4; ++k) {  // column 4 L + k: lane L of u[k], u[4 + k], u[8 + k], u[12 + k]
    const __m512 p0 = _mm512_maskz_shuffle_f32x4(all, u[k], u[4 + k], 0x44);
    const __m512 p1 = _mm512_maskz_shuffle_f32x4(all, u[k], u[4 + k], 0xEE);
    const __m512 p2 = _mm512_maskz_shuffle_f32x4(all, u[8 + k], u[12 + k], 0x44);
    const __m512 p3 = _mm512_maskz_shuffle_f32x4(all, u[8 + k], u[12 + k], 0xEE);
    r[k] = _mm512_maskz_shuffle_f32x4(all, p0, p2, 0x88);
    r[4 + k] = _mm512_maskz_shuffle_f32x4(all, p0, p2, 0xDD);
    r[8 + k] = _mm512_maskz_shuffle_f32x4(all, p1, p3, 0x88);
    r[12 + k] = _mm512_maskz_shuffle_f32x4(all, p1, p3, 0xDD);
  }
}

}  // namespace sg::kernels::cpu

#endif
