// CUDA Philox draws (kernels/cuda/random.cu): out[i] = (T)philox_normal(seed, offset, i) or
// (T)philox_uniform(seed, offset, i), the functions of kernels/philox.h, so the CPU and CUDA
// give the same numbers for the same (seed, offset) (up to the last ulp of log / cos in
// double). The caller advances its offset (engine/random.cpp). Plain C++ header.
//
// offset_base (CUDA graphs): null in eager mode. Otherwise a device uint64 that the kernel
// reads when it runs and adds to offset, so a draw captured into a graph (engine/cuda_graph.h)
// takes a fresh counter at every replay: the caller passes the draw's offset relative to the
// capture's start and, before each replay, sets *offset_base to the generator's offset with
// philox_set_base (a one-thread kernel on the stream, no host synchronisation).
#pragma once
#include <cstdint>

namespace sg::kernels::cuda {

template <class T>
void philox_normal(int64_t n, T* out, uint64_t seed, uint64_t offset, const uint64_t* offset_base = nullptr);

template <class T>
void philox_uniform(int64_t n, T* out, uint64_t seed, uint64_t offset, const uint64_t* offset_base = nullptr);

// *base = value, asynchronously on the stream.
void philox_set_base(uint64_t* base, uint64_t value);

}  // namespace sg::kernels::cuda
