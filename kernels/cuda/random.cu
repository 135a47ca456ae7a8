// CUDA Philox4x32-10 draws: normal (Box-Muller) and uniform in (0, 1).
//
// Formula (kernels/philox.h, shared with the CPU): uniform element i uses counter block
// offset + i/4, word i%4: u = (word + 0.5) 2^-32; normal element i uses block offset + i/2,
// words 2(i%2), 2(i%2)+1 -> u1, u2, z = sqrt(-2 ln u1) cos(2 pi u2). Everything is computed in
// double and cast to T at the store, exactly the CPU's expression.
//
// The counter offset is `offset`, plus *offset_base when a base is given (a draw captured in a
// CUDA graph reads its base when it runs: kernels/cuda/random.h).
//
// Layout: out contiguous, n elements. One thread per element in a grid-stride loop (each
// element computes its own Philox block: 10 rounds of two 32x32->64 multiplies, cheap next
// to the double log / cos).
//
// Benchmark: no benchmark yet.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/random.h"
#include "kernels/philox.h"

namespace sg::kernels::cuda {

namespace {

constexpr int kThreads = 256;

template <class T, bool kNormal>
__global__ void philox_kernel(int64_t n, T* __restrict__ out, uint64_t seed, uint64_t offset,
                              const uint64_t* __restrict__ offset_base) {
  const uint64_t off = offset + (offset_base ? *offset_base : 0);
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    if constexpr (kNormal)
      out[i] = (T)::sg::kernels::philox_normal(seed, off, i);
    else
      out[i] = (T)::sg::kernels::philox_uniform(seed, off, i);
  }
}

__global__ void set_base_kernel(uint64_t* base, uint64_t value) { *base = value; }

}  // namespace

template <class T>
void philox_normal(int64_t n, T* out, uint64_t seed, uint64_t offset, const uint64_t* offset_base) {
  if (n <= 0) return;
  launch("philox_kernel<normal>", philox_kernel<T, true>, blocks_for(n, kThreads), kThreads, 0, n, out, seed, offset,
         offset_base);
}

template <class T>
void philox_uniform(int64_t n, T* out, uint64_t seed, uint64_t offset, const uint64_t* offset_base) {
  if (n <= 0) return;
  launch("philox_kernel<uniform>", philox_kernel<T, false>, blocks_for(n, kThreads), kThreads, 0, n, out, seed, offset,
         offset_base);
}

void philox_set_base(uint64_t* base, uint64_t value) {
  launch("philox_set_base", set_base_kernel, 1, 1, 0, base, value);
}

template void philox_normal<float>(int64_t, float*, uint64_t, uint64_t, const uint64_t*);
template void philox_normal<double>(int64_t, double*, uint64_t, uint64_t, const uint64_t*);
template void philox_uniform<float>(int64_t, float*, uint64_t, uint64_t, const uint64_t*);
template void philox_uniform<double>(int64_t, double*, uint64_t, uint64_t, const uint64_t*);

}  // namespace sg::kernels::cuda
