// Devices: whether CUDA is there, the caching allocator's counters, synchronisation.
//
// The CUDA caching allocator (engine/cuda_allocator.cpp) keeps freed blocks in size-binned
// free lists and hands them out again, so the hot path never calls cudaMalloc / cudaFree.
// Blocks are rounded up to 512 bytes (small) or 2 MiB (large, >= 1 MiB); a request takes
// the smallest cached block of its rounded size or the next larger bins up to 2x. All
// kernels run on one stream, so a block freed by the host can be reused at once: anything
// queued before the free still runs before anything queued after the reuse.
// Out of memory: the cache is emptied and the allocation retried once; then an sg::Error
// says how much was asked for and how much is allocated and cached.
// CUDA graphs (engine/cuda_graph.h): a block allocated or freed during a capture belongs to
// that graph's private pool until the graph is destroyed, so no eager tensor ever shares an
// address that a replay writes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace sg {

// CPU threads (kernels/cpu/parallel.h): how many the CPU kernels use (default: the CPUs this
// process may run on, or OMP_NUM_THREADS), and how idle ones wait: SG_THREAD_WAIT, "auto"
// (the default: spin while the machine is quiet, sleep while it is busy), "spin" or "passive";
// an invalid SG_THREAD_WAIT makes cpu_thread_wait() throw an sg::Error naming it.
int cpu_threads();
void set_cpu_threads(int n);  // n >= 1
std::string cpu_thread_wait();
struct CpuThreadStats {
  int64_t regions = 0;     // parallel regions run on more than one thread
  int64_t times_busy = 0;  // auto: times the idle threads went to sleep because the machine was busy
};
CpuThreadStats cpu_thread_stats();

bool cuda_built();      // compiled with the CUDA backend
bool cuda_available();  // built, and a device is present
std::string cuda_device_name();

struct CudaMemoryStats {
  int64_t allocated = 0;       // bytes in live tensors
  int64_t peak_allocated = 0;  // high-water mark of `allocated` since reset
  int64_t cached = 0;          // bytes held from cudaMalloc (live + free blocks)
  int64_t num_device_mallocs = 0;
  int64_t num_device_frees = 0;
};
CudaMemoryStats cuda_memory_stats();
void cuda_reset_peak();
void cuda_empty_cache();  // returns free cached blocks to the driver
void cuda_synchronize();

// The arithmetic of f32 convolutions and matmuls on CUDA (f64 is always exact f64):
//   f32   (default) FMA convolutions, cuBLAS in true fp32; the exactness tests run this
//   tf32  convolutions on tensor cores with TF32 inputs (10-bit mantissas, mma.sync
//         m16n8k8), cuBLAS CUBLAS_TF32_TENSOR_OP_MATH
//   bf16  convolutions on tensor cores with bf16 inputs (7-bit mantissas, mma.sync m16n8k16),
//         matmuls in TF32; f32 accumulation, f32 activations and parameters throughout
// Each rounds the inputs of every product and accumulates in f32 (kernels/cuda/conv.h).
// Defined in engine/ops/matmul.cpp; without the CUDA backend the setting is only remembered.
enum class CudaMath { f32, tf32, bf16 };
void set_cuda_math(CudaMath math);
CudaMath cuda_math();
const char* cuda_math_name(CudaMath math);  // "f32", "tf32", "bf16"
// The inverse of cuda_math_name: "f32", "tf32" or "bf16"; anything else throws sg::Error
// naming `what` (the flag or option being parsed) and the valid names.
CudaMath parse_cuda_math(const std::string& name, const std::string& what);
// set_cuda_tf32(on) is set_cuda_math(on ? tf32 : f32); cuda_tf32() is cuda_math() != f32
// (cuBLAS runs in TF32 whenever the math is not f32).
void set_cuda_tf32(bool on);
bool cuda_tf32();

// Sets the CUDA math for a scope and restores the previous one at its end. An autograd node
// remembers the math in effect when its op ran and its backward runs under that math again
// (engine/autograd.cpp), so a layer run under a guard (bf16-mixed: the highest resolutions
// in bf16) also has its gradients, and their gradients, computed in that math.
struct CudaMathGuard {
  CudaMath prev;
  explicit CudaMathGuard(CudaMath math) : prev(cuda_math()) {
    if (math != prev) set_cuda_math(math);
  }
  ~CudaMathGuard() {
    if (cuda_math() != prev) set_cuda_math(prev);
  }
  CudaMathGuard(const CudaMathGuard&) = delete;
  CudaMathGuard& operator=(const CudaMathGuard&) = delete;
};

namespace detail {
void* cuda_alloc(size_t bytes);  // through the caching allocator; sg::Error on OOM
void cuda_free(void* p);
// For sg::CudaGraph: from begin to end of a capture, allocations come from (and frees go to)
// a new private pool, whose id is returned; release hands the pool's blocks back to the cache.
uint64_t cuda_pool_begin_capture();
void cuda_pool_end_capture();
void cuda_pool_release(uint64_t pool);
}  // namespace detail

}  // namespace sg
