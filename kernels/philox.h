// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
// a counter-based generator. philox(counter, key) -> four 32-bit words; the same
// (seed, counter) gives the same numbers on the CPU and on CUDA (this header is meant to be
// host and device code).
//
// stylegrad's mapping, shared by every backend:
//   uniform element i of a draw at `offset`: block = offset + i / 4, word i % 4,
//     u = (word + 0.5) * 2^-32, in (0, 1)
//   normal element i: block = offset + i / 2, words 2(i%2), 2(i%2)+1 -> u1, u2,
//     z = sqrt(-2 ln u1) cos(2 pi u2)    (Box-Muller)
// The generator's offset then advances by the number of blocks used.
#pragma once
#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define SG_HD __host__ __device__ inline
#else
#define SG_HD inline
#endif

namespace sg::kernels {

struct Philox4 {
  uint32_t v[4];
};

SG_HD Philox4 philox4x32_10(uint64_t counter_lo, uint64_t counter_hi, uint64_t key) {
  uint32_t c0 = (uint32_t)counter_lo, c1 = (uint32_t)(counter_lo >> 32);
  uint32_t c2 = (uint32_t)counter_hi, c3 = (uint32_t)(counter_hi >> 32);
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    const uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  return {{c0, c1, c2, c3}};
}

// The values of one block's words: a uniform from one word, a normal from two.
SG_HD double uniform_of_word(uint32_t w) { return ((double)w + 0.5) * (1.0 / 4294967296.0); }
SG_HD double normal_of_words(uint32_t w1, uint32_t w2) {
  const double u1 = uniform_of_word(w1), u2 = uniform_of_word(w2);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

SG_HD double philox_uniform(uint64_t seed, uint64_t offset, int64_t i) {
  Philox4 r = philox4x32_10(offset + (uint64_t)(i / 4), 0, seed);
  return uniform_of_word(r.v[i % 4]);
}

SG_HD double philox_normal(uint64_t seed, uint64_t offset, int64_t i) {
  Philox4 r = philox4x32_10(offset + (uint64_t)(i / 2), 0, seed);
  const int w = 2 * (int)(i % 2);
  return normal_of_words(r.v[w], r.v[w + 1]);
}

}  // namespace sg::kernels
