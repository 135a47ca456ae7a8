#include "kernels/cuda/common.cuh"

namespace sg::kernels::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::string device_name() {
  cudaDeviceProp p;
  SG_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
  return p.name;
}

void* stream() {
  static cudaStream_t s = [] {
    cudaStream_t st;
    SG_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    return st;
  }();
  return s;
}

void* cublas_handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t handle;
    SG_CUBLAS_CHECK(cublasCreate(&handle));
    SG_CUBLAS_CHECK(cublasSetStream(handle, cu_stream()));
    return handle;
  }();
  return h;
}

void* raw_malloc(size_t bytes) {
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return nullptr;
  }
  SG_CUDA_CHECK(e);
  return p;
}

void raw_free(void* p) { SG_CUDA_CHECK(cudaFree(p)); }

void mem_get_info(size_t* free_bytes, size_t* total_bytes) { SG_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes)); }

void memcpy_h2d(void* dst, const void* src, size_t n) {
  SG_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, cu_stream()));
  SG_CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
}

void memcpy_d2h(void* dst, const void* src, size_t n) {
  SG_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, cu_stream()));
  SG_CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
}

void memcpy_d2d(void* dst, const void* src, size_t n) {
  SG_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, cu_stream()));
}

void memset_async(void* p, int value, size_t n) { SG_CUDA_CHECK(cudaMemsetAsync(p, value, n, cu_stream())); }

void synchronize() { SG_CUDA_CHECK(cudaStreamSynchronize(cu_stream())); }

LaunchLimits& launch_limits() {
  static LaunchLimits limits;
  return limits;
}

void check_launch(const char* kernel) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw CudaError(std::string("CUDA kernel launch failed: ") + kernel + ": " + cudaGetErrorString(e));
}

}  // namespace sg::kernels::cuda
