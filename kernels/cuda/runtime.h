// The CUDA runtime as the engine sees it: plain functions, no CUDA types, so engine/ code
// compiles with the host compiler alone. One stream per process (device 0): every kernel
// is launched on it, asynchronously; the host waits only where it reads (memcpy_d2h,
// synchronize). Every CUDA / cuBLAS call is checked; a failure throws CudaError naming
// the call, the file and line.
//
// Only built when CMake finds a CUDA compiler (SG_HAVE_CUDA).
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>

namespace sg::kernels::cuda {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int device_count();        // 0 when there is no driver or no device (never throws)
std::string device_name();  // of device 0
void* stream();            // the cudaStream_t kernels are launched on
void* cublas_handle();     // cublasHandle_t bound to stream()

// cudaMalloc / cudaFree; raw_malloc returns nullptr on out-of-memory (other errors throw).
void* raw_malloc(size_t bytes);
void raw_free(void* p);
void mem_get_info(size_t* free_bytes, size_t* total_bytes);

void memcpy_h2d(void* dst, const void* src, size_t n);  // waits for the copy
void memcpy_d2h(void* dst, const void* src, size_t n);  // waits for the stream, then copies
void memcpy_d2d(void* dst, const void* src, size_t n);  // async on stream()
void memset_async(void* p, int value, size_t n);
void synchronize();

// Checks cudaGetLastError after a launch; throws CudaError naming the kernel.
void check_launch(const char* kernel);

}  // namespace sg::kernels::cuda
