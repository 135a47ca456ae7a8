// The CUDA emulator's stand-in for <cuda_runtime.h>: what kernels/cuda/*.cu use of CUDA,
// for a host C++ compiler. Built with -DSG_CUDA_EMU=ON (CMake puts this folder first on the
// include path of the CUDA sources only); docs/cuda-emulator.md explains the whole emulator.
//
// Three parts:
//   1. the language: __global__ / __device__ / __shared__ ... as plain C++. A __shared__
//      variable is a `static thread_local`: one copy per host thread, and every block runs
//      on the launching host thread, so the threads of a block share it as on a GPU;
//   2. the device built-ins: threadIdx / blockIdx / blockDim / gridDim of the running GPU
//      thread, __syncthreads, the warp shuffles, min / max, the dynamic shared buffer;
//   3. the runtime API calls the engine makes (memory, copies, one stream, errors, device
//      properties), all synchronous, on host memory; and stream capture into CUDA graphs:
//      while the stream is captured, kernel launches, cudaMemcpyAsync (device to device),
//      cudaMemsetAsync and cuBLAS calls are recorded, not run, and cudaGraphLaunch runs them in
//      order. Calls a capture forbids fail as on a GPU: cudaMalloc / cudaFree (unless the
//      thread switched to cudaStreamCaptureModeRelaxed), cudaStreamSynchronize, and copies from
//      or to host memory (all host memory here is pageable) return
//      cudaErrorStreamCaptureUnsupported and invalidate the capture; what follows returns
//      cudaErrorStreamCaptureInvalidated, and so does cudaStreamEndCapture.
// Launches go through sgemu::launch (kernels/cuda/common.cuh calls it instead of <<<...>>>):
// every GPU thread of a block is a fiber of its own; emu.cpp runs them.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

// ---- 1. the language -------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __grid_constant__
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local

// ---- vector types and launch geometry --------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};

// ---- runtime types ---------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorIllegalState = 401,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureWrongThread = 908,
};
using cudaStream_t = struct sgemu_stream*;
using cudaGraph_t = struct sgemu_graph*;
using cudaGraphExec_t = struct sgemu_graph_exec*;
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
constexpr unsigned cudaStreamNonBlocking = 1;
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int maxThreadsPerBlock;
  int maxGridSize[3];
  int warpSize;
  int multiProcessorCount;
  int major, minor;
};

cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t s);
cudaError_t cudaGetLastError();
const char* cudaGetErrorString(cudaError_t e);
// Stream capture and graphs (the emulator has one stream: every cudaStream_t is it).
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status);
cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

// ---- 2. device built-ins -----------------------------------------------------------------
namespace sgemu {

// The running GPU thread (a fiber) and its block; valid inside a kernel only.
struct ThreadState {
  uint3 thread_idx;
  int linear;  // threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)
};
struct LaunchState {
  uint3 block_idx;
  dim3 block_dim, grid_dim;
  unsigned char* dynamic_shared;
  size_t dynamic_shared_bytes;
};
// Set by the scheduler at every switch (emu.cpp); null outside a kernel. Read with relaxed
// atomic loads: under ThreadSanitizer the scheduler and each fiber are different TSan
// threads, and these pointers are the emulator's state, not the kernel's.
extern __thread ThreadState* t_thread;
extern __thread LaunchState* t_launch;
inline ThreadState& current_thread() { return *__atomic_load_n(&t_thread, __ATOMIC_RELAXED); }
inline LaunchState& current_launch() { return *__atomic_load_n(&t_launch, __ATOMIC_RELAXED); }

void syncthreads();
void syncwarp();
// Every lane of the current warp passes its 8-byte value in; returns lane src_lane's.
uint64_t warp_exchange(uint64_t v, int src_lane);
int lane_id();
// Warp-collective scratch for the WMMA emulation (mma.h): 4 KiB per warp.
void* warp_scratch();
// The running GPU thread's cp.async copies not yet carried out (kernels/cuda/mma_ptx.cuh):
// those issued since its last commit, and its committed groups, oldest first. Kept with the
// thread's fiber (no state shared between GPU threads) and emptied at every launch.
struct CpAsyncCopy {
  void* dst;
  const void* src;
  bool valid;
};
struct CpAsyncQueue {
  std::vector<CpAsyncCopy> open;
  std::vector<std::vector<CpAsyncCopy>> groups;
};
CpAsyncQueue& cp_async_queue();

template <class T>
T shfl(T v, int src_lane) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a type wider than 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warp_exchange(bits, src_lane);
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}

// One launch: runs kernel(args...) for every thread of every block (emu.cpp). Errors are
// sticky, as on a GPU: cudaGetLastError returns them.
using KernelThunk = void (*)(const void* closure);
void run_grid(const char* name, KernelThunk thunk, const void* closure, dim3 grid, dim3 block, size_t dynamic_smem);

template <class... P>
struct Closure {
  void (*kernel)(P...);
  std::tuple<P...> args;
  static void call(const void* c) {
    const Closure& self = *static_cast<const Closure*>(c);
    std::apply(self.kernel, self.args);  // each GPU thread gets its own copies of the arguments
  }
};

// Stream capture (emu.cpp): capturing() is true while cudaStreamBeginCapture's capture is
// open (valid or invalidated). record(what, op) appends op to it and returns cudaSuccess, or,
// if the capture was invalidated, records nothing and returns (and sets as the last error)
// cudaErrorStreamCaptureInvalidated naming `what`.
bool capturing();
cudaError_t record(const char* what, std::function<void()> op);

// A launch during capture is recorded with a copy of its arguments, as CUDA copies a
// kernel's parameters when it is captured.
template <class... P, class... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t dynamic_smem, A&&... args) {
  const Closure<P...> c{kernel, std::tuple<P...>(static_cast<P>(std::forward<A>(args))...)};
  if (capturing()) {  // (the name may be a temporary string's: the record keeps a copy)
    record(name, [c, kernel_name = std::string(name), grid, block, dynamic_smem] {
      run_grid(kernel_name.c_str(), &Closure<P...>::call, &c, grid, block, dynamic_smem);
    });
    return;
  }
  run_grid(name, &Closure<P...>::call, &c, grid, block, dynamic_smem);
}

template <class T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(current_launch().dynamic_shared);
}

}  // namespace sgemu

#define threadIdx (::sgemu::current_thread().thread_idx)
#define blockIdx (::sgemu::current_launch().block_idx)
#define blockDim (::sgemu::current_launch().block_dim)
#define gridDim (::sgemu::current_launch().grid_dim)

inline void __syncthreads() { sgemu::syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) { sgemu::syncwarp(); }
// The kernels shuffle with a full mask and warps that are whole; the emulator checks the mask.
void sgemu_check_full_mask(unsigned mask, const char* what);
template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  sgemu_check_full_mask(mask, "__shfl_sync");
  const int lane = sgemu::lane_id();
  return sgemu::shfl(v, (lane & ~(width - 1)) + (src & (width - 1)));
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  sgemu_check_full_mask(mask, "__shfl_down_sync");
  const int lane = sgemu::lane_id(), base = lane & ~(width - 1);
  const int src = (lane - base) + (int)delta < width ? lane + (int)delta : lane;  // out of range: own value
  return sgemu::shfl(v, src);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  sgemu_check_full_mask(mask, "__shfl_xor_sync");
  const int lane = sgemu::lane_id(), base = lane & ~(width - 1);
  const int src = ((lane - base) ^ lane_mask) < width ? base + ((lane - base) ^ lane_mask) : lane;
  return sgemu::shfl(v, src);
}

// CUDA's device min / max: overloads for mixed integer types promote like the arithmetic.
template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}
