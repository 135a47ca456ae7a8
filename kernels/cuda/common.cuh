// Shared by the .cu files: error-checking macros and the launch helpers.
//
// Every kernel launch goes through launch() below, never <<<...>>> directly, so the same
// sources build two ways: with nvcc for the GPU, and with a host C++ compiler against the CUDA
// emulator (kernels/cuda/emu/, -DSG_CUDA_EMU=ON, docs/cuda-emulator.md), where <cuda_runtime.h>,
// <cublas_v2.h> and <mma.h> are the emulator's.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <utility>

#include "kernels/cuda/runtime.h"

#define SG_CUDA_CHECK(call)                                                                                        \
  do {                                                                                                             \
    cudaError_t err_ = (call);                                                                                     \
    if (err_ != cudaSuccess)                                                                                       \
      throw ::sg::kernels::cuda::CudaError(std::string("CUDA error: ") + #call + ": " + cudaGetErrorString(err_) + \
                                           " at " + __FILE__ + ":" + std::to_string(__LINE__));                    \
  } while (0)

#define SG_CUBLAS_CHECK(call)                                                                                       \
  do {                                                                                                              \
    cublasStatus_t st_ = (call);                                                                                    \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                               \
      throw ::sg::kernels::cuda::CudaError(std::string("cuBLAS error ") + std::to_string((int)st_) + ": " + #call + \
                                           " at " + __FILE__ + ":" + std::to_string(__LINE__));                     \
  } while (0)

// The dynamically sized shared-memory array of a kernel (the launch's dynamic_smem bytes).
#ifdef SG_CUDA_EMU
#define SG_DYNAMIC_SHARED(type, name) type* name = ::sgemu::dynamic_shared<type>()
#else
#define SG_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) type name[]
#endif

namespace sg::kernels::cuda {

inline cudaStream_t cu_stream() { return static_cast<cudaStream_t>(stream()); }

inline unsigned blocks_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  const int64_t cap = launch_limits().max_blocks;  // grid-stride loops cover the rest
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

// Launches kernel<<<grid, block, dynamic_smem, stream()>>>(args...) — on the emulator, runs
// it — and checks the launch (check_launch names `name` in the error).
template <class... P, class... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t dynamic_smem, A&&... args) {
#ifdef SG_CUDA_EMU
  ::sgemu::launch(name, kernel, grid, block, dynamic_smem, std::forward<A>(args)...);
#else
  // clang-format 14 would split >>> into > > >, which nvcc rejects.
  // clang-format off
  kernel<<<grid, block, dynamic_smem, cu_stream()>>>(std::forward<A>(args)...);
  // clang-format on
#endif
  check_launch(name);
}

}  // namespace sg::kernels::cuda
