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
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace sg {

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

// TF32 tensor-core math for f32 matmuls on CUDA (cuBLAS CUBLAS_TF32_TENSOR_OP_MATH): faster,
// with inputs rounded to a 10-bit mantissa. Off by default (true fp32); tests keep it off.
// Defined in engine/ops/matmul.cpp; without the CUDA backend the flag is only remembered.
void set_cuda_tf32(bool on);
bool cuda_tf32();

namespace detail {
void* cuda_alloc(size_t bytes);  // through the caching allocator; sg::Error on OOM
void cuda_free(void* p);
}  // namespace detail

}  // namespace sg
