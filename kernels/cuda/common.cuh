// Shared by the .cu files: error-checking macros and launch helpers.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kernels/cuda/runtime.h"

#define SG_CUDA_CHECK(call)                                                                            \
  do {                                                                                                 \
    cudaError_t err_ = (call);                                                                         \
    if (err_ != cudaSuccess)                                                                           \
      throw ::sg::kernels::cuda::CudaError(std::string("CUDA error: ") + #call + ": " +              \
                                           cudaGetErrorString(err_) + " at " + __FILE__ + ":" +       \
                                           std::to_string(__LINE__));                                 \
  } while (0)

#define SG_CUBLAS_CHECK(call)                                                                          \
  do {                                                                                                 \
    cublasStatus_t st_ = (call);                                                                       \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                  \
      throw ::sg::kernels::cuda::CudaError(std::string("cuBLAS error ") + std::to_string((int)st_) +  \
                                           ": " + #call + " at " + __FILE__ + ":" +                    \
                                           std::to_string(__LINE__));                                 \
  } while (0)

namespace sg::kernels::cuda {

inline cudaStream_t cu_stream() { return static_cast<cudaStream_t>(stream()); }

inline unsigned blocks_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b > (int64_t)1 << 20) b = (int64_t)1 << 20;  // grid-stride loops cover the rest
  return (unsigned)(b < 1 ? 1 : b);
}

}  // namespace sg::kernels::cuda
