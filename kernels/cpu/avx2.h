// x86-64 SIMD helpers shared by the CPU kernels (gemm_avx2.cpp, winograd.cpp): the target
// attributes for AVX2 and AVX-512 functions, and an 8x8 register transpose.
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

}  // namespace sg::kernels::cpu

#endif
