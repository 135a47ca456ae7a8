// CUDA elementwise kernels: unary and binary ops, where() with numpy broadcasting, f32 <-> f64
// cast, fill. Declarations: elementwise.h; the ops' math: kernels/elementwise.h (the functors
// the CPU loops call too).
//
// Formula: out[i] = f(a[i . sa], b[i . sb]) over the output's row-major index i (out is
// contiguous); a broadcast dim has stride 0.
//
// Variants (chosen on the host, per call):
//   - contiguous, 16-byte aligned operands: 128-bit loads and stores (4 floats = float4 width,
//     2 doubles = double2 width) in a grid-stride loop, a scalar loop for the tail;
//   - contiguous, unaligned: the scalar grid-stride loop;
//   - broadcast / strided: dims coalesced on the host, then one thread per output element
//     maps its index to input offsets (StridedIndexer), in int32 when every offset fits
//     (far cheaper divisions) and int64 otherwise.
// Each op is its own kernel instantiation (the functor is a template argument, so the loop
// body is straight-line code); the list at the end instantiates every functor of
// kernels/elementwise.h.
//
// Numerics: the same functors as the CPU loops (IEEE division and sqrt; nvcc is not given
// --use_fast_math); transcendental functions (exp, log, tanh, log1p, pow) are CUDA's
// libdevice versions, within a few ulp of glibc's.
//
// Benchmark: bench/run_cuda_bench.sh (build/bench_cuda_kernels --filter add): add() of two
// same-shape f32 tensors through the engine, GB/s next to PyTorch and the d2d copy roofline
// of the same run. No benchmark of the broadcast or unary paths yet.
#include <cmath>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/elementwise.h"

namespace sg::kernels::cuda {

namespace {

constexpr int kThreads = 256;

// 16 bytes of T, loaded and stored as one 128-bit access.
template <class T>
struct alignas(16) Pack {
  static constexpr int N = 16 / sizeof(T);
  T v[N];
};

__device__ __forceinline__ int64_t grid_start() { return (int64_t)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_step() { return (int64_t)gridDim.x * blockDim.x; }

bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

// ---- unary -----------------------------------------------------------------------------------
template <class T, class F>
__global__ void unary_kernel(int64_t n, const T* __restrict__ a, T* __restrict__ out, F f, bool vec) {
  int64_t start = 0;
  if (vec) {
    constexpr int N = Pack<T>::N;
    const int64_t nv = n / N;
    const Pack<T>* av = reinterpret_cast<const Pack<T>*>(a);
    Pack<T>* ov = reinterpret_cast<Pack<T>*>(out);
    for (int64_t i = grid_start(); i < nv; i += grid_step()) {
      Pack<T> v = av[i];
#pragma unroll
      for (int j = 0; j < N; ++j) v.v[j] = f(v.v[j]);
      ov[i] = v;
    }
    start = nv * N;
  }
  for (int64_t i = start + grid_start(); i < n; i += grid_step()) out[i] = f(a[i]);
}

}  // namespace

template <class T, class F>
void unary(int64_t n, const T* a, T* out, F f) {
  if (n <= 0) return;
  const bool vec = aligned16(a) && aligned16(out);
  const int64_t work = vec ? (n + Pack<T>::N - 1) / Pack<T>::N : n;
  launch("unary_kernel", unary_kernel<T, F>, blocks_for(work, kThreads), kThreads, 0, n, a, out, f, vec);
}

namespace {

// ---- binary ----------------------------------------------------------------------------------
template <class T, class F>
__global__ void binary_contig_kernel(int64_t n, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                                     F f, bool vec) {
  int64_t start = 0;
  if (vec) {
    constexpr int N = Pack<T>::N;
    const int64_t nv = n / N;
    const Pack<T>* av = reinterpret_cast<const Pack<T>*>(a);
    const Pack<T>* bv = reinterpret_cast<const Pack<T>*>(b);
    Pack<T>* ov = reinterpret_cast<Pack<T>*>(out);
    for (int64_t i = grid_start(); i < nv; i += grid_step()) {
      const Pack<T> x = av[i], z = bv[i];
      Pack<T> r;
#pragma unroll
      for (int j = 0; j < N; ++j) r.v[j] = f(x.v[j], z.v[j]);
      ov[i] = r;
    }
    start = nv * N;
  }
  for (int64_t i = start + grid_start(); i < n; i += grid_step()) out[i] = f(a[i], b[i]);
}

template <class T, class F, class I>
__global__ void binary_strided_kernel(I n, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out, F f,
                                      StridedIndexer<2, I> ix) {
  for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += (I)(gridDim.x * blockDim.x)) {
    I off[2];
    ix.offsets(i, off);
    out[i] = f(a[off[0]], b[off[1]]);
  }
}

std::string too_many_dims(const char* what, int ndim) {
  return std::string(what) + ": " + std::to_string(ndim) +
         " dims remain after coalescing; the CUDA kernels take at most " + std::to_string(kMaxDims);
}

}  // namespace

template <class T, class F>
void binary(const std::vector<int64_t>& shape, const T* a, const std::vector<int64_t>& sa, const T* b,
            const std::vector<int64_t>& sb, T* out, F f) {
  const std::vector<int64_t>* strides[2] = {&sa, &sb};
  Coalesced<2> c(shape, strides);
  if (c.numel == 0) return;
  if (c.ndim() > kMaxDims) throw CudaError(too_many_dims("binary", c.ndim()));
  const bool contig = c.ndim() == 1 && c.stride[0][0] == 1 && c.stride[1][0] == 1;
  if (contig) {
    const bool vec = aligned16(a) && aligned16(b) && aligned16(out);
    const int64_t work = vec ? (c.numel + Pack<T>::N - 1) / Pack<T>::N : c.numel;
    launch("binary_contig_kernel", binary_contig_kernel<T, F>, blocks_for(work, kThreads), kThreads, 0, c.numel, a, b,
           out, f, vec);
  } else if (c.small) {
    launch("binary_strided_kernel<int32>", binary_strided_kernel<T, F, int32_t>, blocks_for(c.numel, kThreads),
           kThreads, 0, (int32_t)c.numel, a, b, out, f, c.template indexer<int32_t>());
  } else {
    launch("binary_strided_kernel<int64>", binary_strided_kernel<T, F, int64_t>, blocks_for(c.numel, kThreads),
           kThreads, 0, c.numel, a, b, out, f, c.template indexer<int64_t>());
  }
}

namespace {

// ---- where -----------------------------------------------------------------------------------
template <class T, class I>
__global__ void where_kernel(I n, const T* __restrict__ c, const T* __restrict__ a, const T* __restrict__ b,
                             T* __restrict__ out, StridedIndexer<3, I> ix) {
  for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += (I)(gridDim.x * blockDim.x)) {
    I off[3];
    ix.offsets(i, off);
    out[i] = c[off[0]] != T(0) ? a[off[1]] : b[off[2]];
  }
}

// ---- cast, fill ------------------------------------------------------------------------------
template <class S, class D>
__global__ void cast_kernel(int64_t n, const S* __restrict__ in, D* __restrict__ out) {
  for (int64_t i = grid_start(); i < n; i += grid_step()) out[i] = (D)in[i];
}

template <class T>
__global__ void fill_kernel(int64_t n, T* __restrict__ out, T value, bool vec) {
  int64_t start = 0;
  if (vec) {
    constexpr int N = Pack<T>::N;
    const int64_t nv = n / N;
    Pack<T> v;
#pragma unroll
    for (int j = 0; j < N; ++j) v.v[j] = value;
    Pack<T>* ov = reinterpret_cast<Pack<T>*>(out);
    for (int64_t i = grid_start(); i < nv; i += grid_step()) ov[i] = v;
    start = nv * N;
  }
  for (int64_t i = start + grid_start(); i < n; i += grid_step()) out[i] = value;
}

}  // namespace

template <class T>
void where(const std::vector<int64_t>& shape, const T* cond, const std::vector<int64_t>& sc, const T* a,
           const std::vector<int64_t>& sa, const T* b, const std::vector<int64_t>& sb, T* out) {
  const std::vector<int64_t>* strides[3] = {&sc, &sa, &sb};
  Coalesced<3> c(shape, strides);
  if (c.numel == 0) return;
  if (c.ndim() > kMaxDims) throw CudaError(too_many_dims("where", c.ndim()));
  if (c.small) {
    launch("where_kernel<int32>", where_kernel<T, int32_t>, blocks_for(c.numel, kThreads), kThreads, 0,
           (int32_t)c.numel, cond, a, b, out, c.template indexer<int32_t>());
  } else {
    launch("where_kernel<int64>", where_kernel<T, int64_t>, blocks_for(c.numel, kThreads), kThreads, 0, c.numel, cond,
           a, b, out, c.template indexer<int64_t>());
  }
}

template <class S, class D>
void cast(int64_t n, const S* in, D* out) {
  if (n <= 0) return;
  launch("cast_kernel", cast_kernel<S, D>, blocks_for(n, kThreads), kThreads, 0, n, in, out);
}

template <class T>
void fill(int64_t n, T* out, double value) {
  if (n <= 0) return;
  const bool vec = aligned16(out);
  const int64_t work = vec ? (n + Pack<T>::N - 1) / Pack<T>::N : n;
  launch("fill_kernel", fill_kernel<T>, blocks_for(work, kThreads), kThreads, 0, n, out, (T)value, vec);
}

#define SG_INSTANTIATE_UNARY(F)                                    \
  template void unary<float, F>(int64_t, const float*, float*, F); \
  template void unary<double, F>(int64_t, const double*, double*, F);
SG_UNARY_FUNCTORS(SG_INSTANTIATE_UNARY)
#undef SG_INSTANTIATE_UNARY
#define SG_INSTANTIATE_BINARY(F)                                                                                       \
  template void binary<float, F>(const std::vector<int64_t>&, const float*, const std::vector<int64_t>&, const float*, \
                                 const std::vector<int64_t>&, float*, F);                                              \
  template void binary<double, F>(const std::vector<int64_t>&, const double*, const std::vector<int64_t>&,             \
                                  const double*, const std::vector<int64_t>&, double*, F);
SG_BINARY_FUNCTORS(SG_INSTANTIATE_BINARY)
#undef SG_INSTANTIATE_BINARY
template void where<float>(const std::vector<int64_t>&, const float*, const std::vector<int64_t>&, const float*,
                           const std::vector<int64_t>&, const float*, const std::vector<int64_t>&, float*);
template void where<double>(const std::vector<int64_t>&, const double*, const std::vector<int64_t>&, const double*,
                            const std::vector<int64_t>&, const double*, const std::vector<int64_t>&, double*);
template void cast<float, double>(int64_t, const float*, double*);
template void cast<double, float>(int64_t, const double*, float*);
template void cast<float, float>(int64_t, const float*, float*);
template void cast<double, double>(int64_t, const double*, double*);
template void fill<float>(int64_t, float*, double);
template void fill<double>(int64_t, double*, double);

}  // namespace sg::kernels::cuda
