// Fused Adam update on CUDA. Declaration and formula: adam.h (the CPU twin: kernels/cpu/adam.h).
//
// Layout: param, grad, exp_avg, exp_avg_sq: contiguous, n elements each, same type.
//
// Variants: float, double. With all four pointers 16-byte aligned, 128-bit loads and stores
// (4 floats / 2 doubles per access) in a grid-stride loop, a scalar loop for the tail;
// otherwise the scalar loop alone. The arithmetic is in T with T-rounded constants, the
// same expression order as the CPU loop (nvcc may contract a*b+c into an FMA, as GCC does
// on the CPU with -march=native, so the two agree to an ulp, not always bit for bit).
//
// Benchmark: bench/run_cuda_bench.sh (build/bench_cuda_kernels --filter adam): sg::Adam::step
// over a StyleGAN2-256-G-sized parameter set (~31M f32), next to PyTorch and the d2d copy
// roofline of the same run (memory bound: 4 reads + 3 writes per element).
#include "kernels/cuda/adam.h"
#include "kernels/cuda/common.cuh"

namespace sg::kernels::cuda {

namespace {

constexpr int kThreads = 256;

template <class T>
struct alignas(16) Pack {
  static constexpr int N = 16 / sizeof(T);
  T v[N];
};

template <class T>
struct Consts {
  T beta1, one_minus_beta1, beta2, one_minus_beta2, eps, neg_step_size, bc2_sqrt;
};

__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return ::sqrt(x); }

template <class T>
__device__ __forceinline__ void update(T& param, T g, T& m_io, T& v_io, const Consts<T>& c) {
  const T m = m_io * c.beta1 + g * c.one_minus_beta1;
  const T v = v_io * c.beta2 + g * g * c.one_minus_beta2;
  m_io = m;
  v_io = v;
  const T denom = m_sqrt(v) / c.bc2_sqrt + c.eps;
  param = param + c.neg_step_size * (m / denom);
}

template <class T>
__global__ void adam_kernel(int64_t n, T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ exp_avg,
                            T* __restrict__ exp_avg_sq, Consts<T> c, bool vec) {
  const int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, step = (int64_t)gridDim.x * blockDim.x;
  int64_t start = 0;
  if (vec) {
    constexpr int N = Pack<T>::N;
    const int64_t nv = n / N;
    Pack<T>* pv = reinterpret_cast<Pack<T>*>(param);
    const Pack<T>* gv = reinterpret_cast<const Pack<T>*>(grad);
    Pack<T>* mv = reinterpret_cast<Pack<T>*>(exp_avg);
    Pack<T>* vv = reinterpret_cast<Pack<T>*>(exp_avg_sq);
    for (int64_t i = first; i < nv; i += step) {
      Pack<T> p = pv[i], m = mv[i], v = vv[i];
      const Pack<T> g = gv[i];
#pragma unroll
      for (int j = 0; j < N; ++j) update(p.v[j], g.v[j], m.v[j], v.v[j], c);
      pv[i] = p;
      mv[i] = m;
      vv[i] = v;
    }
    start = nv * N;
  }
  for (int64_t i = start + first; i < n; i += step) update(param[i], grad[i], exp_avg[i], exp_avg_sq[i], c);
}

bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

}  // namespace

template <class T>
void adam_step(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, const cpu::AdamStepParams& p) {
  if (n <= 0) return;
  const Consts<T> c{(T)p.beta1, (T)(1.0 - p.beta1), (T)p.beta2,   (T)(1.0 - p.beta2),
                    (T)p.eps,   (T)(-p.step_size),  (T)p.bc2_sqrt};
  const bool vec = aligned16(param) && aligned16(grad) && aligned16(exp_avg) && aligned16(exp_avg_sq);
  const int64_t work = vec ? (n + Pack<T>::N - 1) / Pack<T>::N : n;
  launch("adam_kernel", adam_kernel<T>, blocks_for(work, kThreads), kThreads, 0, n, param, grad, exp_avg, exp_avg_sq, c,
         vec);
}

template void adam_step<float>(int64_t, float*, const float*, float*, float*, const cpu::AdamStepParams&);
template void adam_step<double>(int64_t, double*, const double*, double*, double*, const cpu::AdamStepParams&);

}  // namespace sg::kernels::cuda
