// CUDA elementwise kernels: unary ops by op code, binary ops and where() with numpy
// broadcasting, f32 <-> f64 cast, fill. Declarations and op formulas: elementwise.h.
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
// Unary ops are one kernel template per op code (the op is a compile-time constant, so the
// loop body is straight-line code); the host switch picks the instantiation.
//
// Numerics: the same expressions as the CPU loops (IEEE division and sqrt; nvcc is not given
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

__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return ::exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return ::log(x); }
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return ::sqrt(x); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return ::tanh(x); }
__device__ __forceinline__ float m_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double m_log1p(double x) { return ::log1p(x); }
__device__ __forceinline__ float m_pow(float x, float p) { return powf(x, p); }
__device__ __forceinline__ double m_pow(double x, double p) { return ::pow(x, p); }
__device__ __forceinline__ float m_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double m_abs(double x) { return ::fabs(x); }
template <class T>
__device__ __forceinline__ T m_inf() {
  return (T)INFINITY;
}
// std::max / std::min semantics: (a < b) ? b : a, so a NaN first argument propagates.
template <class T>
__device__ __forceinline__ T s_max(T a, T b) {
  return (a < b) ? b : a;
}
template <class T>
__device__ __forceinline__ T s_min(T a, T b) {
  return (b < a) ? b : a;
}

struct Params {
  double p0, p1, p2;
};

template <UnaryOp OP, class T>
__device__ __forceinline__ T apply_unary(T x, const Params& p) {
  if constexpr (OP == UnaryOp::neg)
    return -x;
  else if constexpr (OP == UnaryOp::exp)
    return m_exp(x);
  else if constexpr (OP == UnaryOp::log)
    return m_log(x);
  else if constexpr (OP == UnaryOp::sqrt)
    return m_sqrt(x);
  else if constexpr (OP == UnaryOp::rsqrt)
    return T(1) / m_sqrt(x);
  else if constexpr (OP == UnaryOp::pow)
    return m_pow(x, (T)p.p0);
  else if constexpr (OP == UnaryOp::square)
    return x * x;
  else if constexpr (OP == UnaryOp::abs)
    return m_abs(x);
  else if constexpr (OP == UnaryOp::sign)
    return (T)((x > T(0)) - (x < T(0)));
  else if constexpr (OP == UnaryOp::tanh)
    return m_tanh(x);
  else if constexpr (OP == UnaryOp::sigmoid)
    return T(1) / (T(1) + m_exp(-x));
  else if constexpr (OP == UnaryOp::softplus)
    return s_max(x, T(0)) + m_log1p(m_exp(-m_abs(x)));
  else if constexpr (OP == UnaryOp::leaky_relu)
    return x > T(0) ? x : x * (T)p.p0;
  else if constexpr (OP == UnaryOp::leaky_relu_mask)
    return x > T(0) ? T(1) : (T)p.p0;
  else if constexpr (OP == UnaryOp::clamp)
    return s_min(s_max(x, (T)p.p0), (T)p.p1);
  else if constexpr (OP == UnaryOp::clamp_mask)
    return (T)((double)x > p.p0 && (double)x < p.p1);
  else if constexpr (OP == UnaryOp::add_scalar)
    return x + (T)p.p0;
  else if constexpr (OP == UnaryOp::mul_scalar)
    return x * (T)p.p0;
  else if constexpr (OP == UnaryOp::gt_scalar)
    return (T)((double)x > p.p0);
  else if constexpr (OP == UnaryOp::lt_scalar)
    return (T)((double)x < p.p0);
  else if constexpr (OP == UnaryOp::nan_to_num) {
    if (x != x) return (T)p.p0;
    if (m_abs(x) == m_inf<T>()) return x > T(0) ? (T)p.p1 : (T)p.p2;
    return x;
  } else {
    static_assert(OP == UnaryOp::isfinite_mask, "unhandled unary op");
    return (T)(m_abs(x) < m_inf<T>());  // false for NaN and +-inf
  }
}

template <BinaryOp OP, class T>
__device__ __forceinline__ T apply_binary(T x, T z) {
  if constexpr (OP == BinaryOp::add)
    return x + z;
  else if constexpr (OP == BinaryOp::sub)
    return x - z;
  else if constexpr (OP == BinaryOp::mul)
    return x * z;
  else if constexpr (OP == BinaryOp::div)
    return x / z;
  else if constexpr (OP == BinaryOp::gt)
    return (T)(x > z);
  else if constexpr (OP == BinaryOp::lt)
    return (T)(x < z);
  else if constexpr (OP == BinaryOp::ge)
    return (T)(x >= z);
  else {
    static_assert(OP == BinaryOp::le, "unhandled binary op");
    return (T)(x <= z);
  }
}

__device__ __forceinline__ int64_t grid_start() { return (int64_t)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_step() { return (int64_t)gridDim.x * blockDim.x; }

bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

// ---- unary -----------------------------------------------------------------------------------
template <UnaryOp OP, class T>
__global__ void unary_kernel(int64_t n, const T* __restrict__ a, T* __restrict__ out, Params p, bool vec) {
  int64_t start = 0;
  if (vec) {
    constexpr int N = Pack<T>::N;
    const int64_t nv = n / N;
    const Pack<T>* av = reinterpret_cast<const Pack<T>*>(a);
    Pack<T>* ov = reinterpret_cast<Pack<T>*>(out);
    for (int64_t i = grid_start(); i < nv; i += grid_step()) {
      Pack<T> v = av[i];
#pragma unroll
      for (int j = 0; j < N; ++j) v.v[j] = apply_unary<OP>(v.v[j], p);
      ov[i] = v;
    }
    start = nv * N;
  }
  for (int64_t i = start + grid_start(); i < n; i += grid_step()) out[i] = apply_unary<OP>(a[i], p);
}

template <UnaryOp OP, class T>
void launch_unary(int64_t n, const T* a, T* out, Params p) {
  const bool vec = aligned16(a) && aligned16(out);
  const int64_t work = vec ? (n + Pack<T>::N - 1) / Pack<T>::N : n;
  launch("unary_kernel", unary_kernel<OP, T>, blocks_for(work, kThreads), kThreads, 0, n, a, out, p, vec);
}

// ---- binary ----------------------------------------------------------------------------------
template <BinaryOp OP, class T>
__global__ void binary_contig_kernel(int64_t n, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                                     bool vec) {
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
      for (int j = 0; j < N; ++j) r.v[j] = apply_binary<OP>(x.v[j], z.v[j]);
      ov[i] = r;
    }
    start = nv * N;
  }
  for (int64_t i = start + grid_start(); i < n; i += grid_step()) out[i] = apply_binary<OP>(a[i], b[i]);
}

template <BinaryOp OP, class T, class I>
__global__ void binary_strided_kernel(I n, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                                      StridedIndexer<2, I> ix) {
  for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += (I)(gridDim.x * blockDim.x)) {
    I off[2];
    ix.offsets(i, off);
    out[i] = apply_binary<OP>(a[off[0]], b[off[1]]);
  }
}

std::string too_many_dims(const char* what, int ndim) {
  return std::string(what) + ": " + std::to_string(ndim) +
         " dims remain after coalescing; the CUDA kernels take at most " + std::to_string(kMaxDims);
}

template <BinaryOp OP, class T>
void launch_binary(const std::vector<int64_t>& shape, const T* a, const std::vector<int64_t>& sa, const T* b,
                   const std::vector<int64_t>& sb, T* out) {
  const std::vector<int64_t>* strides[2] = {&sa, &sb};
  Coalesced<2> c(shape, strides);
  if (c.numel == 0) return;
  if (c.ndim() > kMaxDims) throw CudaError(too_many_dims("binary", c.ndim()));
  const bool contig = c.ndim() == 1 && c.stride[0][0] == 1 && c.stride[1][0] == 1;
  if (contig) {
    const bool vec = aligned16(a) && aligned16(b) && aligned16(out);
    const int64_t work = vec ? (c.numel + Pack<T>::N - 1) / Pack<T>::N : c.numel;
    launch("binary_contig_kernel", binary_contig_kernel<OP, T>, blocks_for(work, kThreads), kThreads, 0, c.numel, a, b,
           out, vec);
  } else if (c.small) {
    launch("binary_strided_kernel<int32>", binary_strided_kernel<OP, T, int32_t>, blocks_for(c.numel, kThreads),
           kThreads, 0, (int32_t)c.numel, a, b, out, c.template indexer<int32_t>());
  } else {
    launch("binary_strided_kernel<int64>", binary_strided_kernel<OP, T, int64_t>, blocks_for(c.numel, kThreads),
           kThreads, 0, c.numel, a, b, out, c.template indexer<int64_t>());
  }
}

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
void unary(UnaryOp op, int64_t n, const T* a, T* out, double p0, double p1, double p2) {
  if (n <= 0) return;
  const Params p{p0, p1, p2};
  switch (op) {
#define SG_UNARY_CASE(name) \
  case UnaryOp::name:       \
    return launch_unary<UnaryOp::name, T>(n, a, out, p);
    SG_UNARY_CASE(neg)
    SG_UNARY_CASE(exp)
    SG_UNARY_CASE(log)
    SG_UNARY_CASE(sqrt)
    SG_UNARY_CASE(rsqrt)
    SG_UNARY_CASE(pow)
    SG_UNARY_CASE(square)
    SG_UNARY_CASE(abs)
    SG_UNARY_CASE(sign)
    SG_UNARY_CASE(tanh)
    SG_UNARY_CASE(sigmoid)
    SG_UNARY_CASE(softplus)
    SG_UNARY_CASE(leaky_relu)
    SG_UNARY_CASE(leaky_relu_mask)
    SG_UNARY_CASE(clamp)
    SG_UNARY_CASE(clamp_mask)
    SG_UNARY_CASE(add_scalar)
    SG_UNARY_CASE(mul_scalar)
    SG_UNARY_CASE(gt_scalar)
    SG_UNARY_CASE(lt_scalar)
    SG_UNARY_CASE(nan_to_num)
    SG_UNARY_CASE(isfinite_mask)
#undef SG_UNARY_CASE
  }
  throw CudaError("unary: unknown op code " + std::to_string((int)op));
}

template <class T>
void binary(BinaryOp op, const std::vector<int64_t>& shape, const T* a, const std::vector<int64_t>& sa, const T* b,
            const std::vector<int64_t>& sb, T* out) {
  switch (op) {
    case BinaryOp::add:
      return launch_binary<BinaryOp::add, T>(shape, a, sa, b, sb, out);
    case BinaryOp::sub:
      return launch_binary<BinaryOp::sub, T>(shape, a, sa, b, sb, out);
    case BinaryOp::mul:
      return launch_binary<BinaryOp::mul, T>(shape, a, sa, b, sb, out);
    case BinaryOp::div:
      return launch_binary<BinaryOp::div, T>(shape, a, sa, b, sb, out);
    case BinaryOp::gt:
      return launch_binary<BinaryOp::gt, T>(shape, a, sa, b, sb, out);
    case BinaryOp::lt:
      return launch_binary<BinaryOp::lt, T>(shape, a, sa, b, sb, out);
    case BinaryOp::ge:
      return launch_binary<BinaryOp::ge, T>(shape, a, sa, b, sb, out);
    case BinaryOp::le:
      return launch_binary<BinaryOp::le, T>(shape, a, sa, b, sb, out);
  }
  throw CudaError("binary: unknown op code " + std::to_string((int)op));
}

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

template void unary<float>(UnaryOp, int64_t, const float*, float*, double, double, double);
template void unary<double>(UnaryOp, int64_t, const double*, double*, double, double, double);
template void binary<float>(BinaryOp, const std::vector<int64_t>&, const float*, const std::vector<int64_t>&,
                            const float*, const std::vector<int64_t>&, float*);
template void binary<double>(BinaryOp, const std::vector<int64_t>&, const double*, const std::vector<int64_t>&,
                             const double*, const std::vector<int64_t>&, double*);
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
