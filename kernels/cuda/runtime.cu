// The CUDA runtime wrappers of kernels/cuda/runtime.h: device queries, the stream, cuBLAS's
// handle, memory, copies, launch checks and CUDA graph capture / launch.
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
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return nullptr;
  }
  if (e != cudaSuccess)  // (SG_CUDA_CHECK(e) would name `e`, not the call)
    throw CudaError(std::string("CUDA error: cudaMalloc(") + std::to_string(bytes) +
                    " bytes): " + cudaGetErrorString(e));
  return p;
}

namespace {
// This thread in cudaStreamCaptureModeRelaxed for a scope.
struct RelaxedCaptureMode {
  cudaStreamCaptureMode prev = cudaStreamCaptureModeRelaxed;
  RelaxedCaptureMode() { SG_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&prev)); }
  ~RelaxedCaptureMode() { cudaThreadExchangeStreamCaptureMode(&prev); }
};
}  // namespace

void* raw_malloc_during_capture(size_t bytes) {
  RelaxedCaptureMode relaxed;
  return raw_malloc(bytes);
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

void graph_capture_begin() { SG_CUDA_CHECK(cudaStreamBeginCapture(cu_stream(), cudaStreamCaptureModeGlobal)); }

void* graph_capture_end() {
  cudaGraph_t graph = nullptr;
  SG_CUDA_CHECK(cudaStreamEndCapture(cu_stream(), &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);  // the executable graph is independent of it
  SG_CUDA_CHECK(e);
  return exec;
}

void graph_capture_abort() {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(cu_stream(), &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    cudaGraph_t graph = nullptr;
    if (cudaStreamEndCapture(cu_stream(), &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
  }
  cudaGetLastError();  // the capture's error (unsupported / invalidated), not a sticky one
}

bool stream_capturing() {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  SG_CUDA_CHECK(cudaStreamIsCapturing(cu_stream(), &status));
  return status != cudaStreamCaptureStatusNone;
}

void graph_launch(void* exec) {
  SG_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), cu_stream()));
  check_launch("a CUDA graph's kernels");
}

void graph_destroy(void* exec) {
  if (exec) SG_CUDA_CHECK(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec)));
}

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
