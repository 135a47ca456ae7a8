// The CUDA runtime as the engine sees it: plain functions, no CUDA types, so engine/ code
// compiles with the host compiler alone. One stream per process (device 0): every kernel
// is launched on it, asynchronously; the host waits only where it reads (memcpy_d2h,
// synchronize). Every CUDA / cuBLAS call is checked; a failure throws CudaError naming
// the call, the file and line.
//
// Only built when CMake finds a CUDA compiler (SG_HAVE_CUDA).
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace sg::kernels::cuda {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int device_count();         // 0 when there is no driver or no device (never throws)
std::string device_name();  // of device 0
void* stream();             // the cudaStream_t kernels are launched on
void* cublas_handle();      // cublasHandle_t bound to stream()

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

// CUDA graphs on stream() (the engine's sg::CudaGraph, engine/cuda_graph.h, is the one user).
// graph_capture_begin starts capturing stream() in cudaStreamCaptureModeGlobal: from then on
// the work queued on it is recorded, not run, and calls that a capture forbids fail (and
// throw CudaError naming them): cudaMalloc, cudaFree, stream synchronisation, copies between
// host and device (memcpy_h2d / memcpy_d2h). graph_capture_end ends the capture and returns
// the instantiated graph (an opaque cudaGraphExec_t); it throws CudaError if the capture was
// invalidated. graph_capture_abort ends a capture that failed, whatever its state, drops
// what it recorded and clears the error it left behind.
void graph_capture_begin();
void* graph_capture_end();
void graph_capture_abort();
bool stream_capturing();         // stream() is being captured (possibly invalidated)
void graph_launch(void* exec);   // async on stream()
void graph_destroy(void* exec);  // the instantiated graph
// cudaMalloc for the caching allocator during a capture: the call runs with this thread in
// cudaStreamCaptureModeRelaxed, where CUDA allows it; nullptr on out-of-memory. The block is
// not part of the graph: the allocator keeps it for the graph (its private pool).
void* raw_malloc_during_capture(size_t bytes);

// Thresholds the host code plans launches with: the hardware's grid limits, the cap on
// grid-stride grids, and where index arithmetic switches from 32 to 64 bits. Tests lower them
// (LaunchLimitsOverride in tests/cuda/test_cuda_paths.cpp) to reach grid chunking, multi-pass
// grid-stride loops and the 64-bit-index kernels with small tensors; results must not change.
struct LaunchLimits {
  int64_t max_grid_yz = 65535;                    // gridDim.y and gridDim.z
  int64_t max_blocks = int64_t(1) << 20;          // blocks_for's cap on 1-D grids
  int64_t index32_elements = int64_t(1) << 30;    // more elements: 64-bit indices
  int64_t index32_span = (int64_t(1) << 31) - 1;  // an operand's offset span at least this: 64-bit
  int64_t uint32_span = int64_t(1) << 32;         // bias_act: n + grid threads below this: uint32
};
LaunchLimits& launch_limits();

}  // namespace sg::kernels::cuda
