// CUDA Philox draws (kernels/cuda/random.cu): out[i] = (T)philox_normal(seed, offset, i) or
// (T)philox_uniform(seed, offset, i), the functions of kernels/philox.h, so the CPU and CUDA
// give the same numbers for the same (seed, offset) (up to the last ulp of log / cos in
// double). The caller advances its offset (engine/random.cpp). Plain C++ header.
#pragma once
#include <cstdint>

namespace sg::kernels::cuda {

template <class T>
void philox_normal(int64_t n, T* out, uint64_t seed, uint64_t offset);

template <class T>
void philox_uniform(int64_t n, T* out, uint64_t seed, uint64_t offset);

}  // namespace sg::kernels::cuda
