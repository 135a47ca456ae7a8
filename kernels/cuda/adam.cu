// Fused Adam update on CUDA. Declaration and formula: adam.h (the CPU twin: kernels/cpu/adam.h).
//
// Layout: param, grad, exp_avg, exp_avg_sq: contiguous, n elements each, same type.
//
// Variants: float, double. With all four pointers 16-byte aligned, 128-bit loads and stores
// (4 floats / 2 doubles per access) in a grid-stride loop, a scalar loop for the tail;
// otherwise the scalar loop alone. adam_multi_kernel: the same loop over one kAdamChunk chunk
// of one of up to kAdamMultiMax tensors per block (a block finds its tensor by binary search in
// the launch's block0 table), the descriptors and constants in the kernel's parameters.
// The arithmetic is in T with T-rounded constants, the same expression order as the CPU loop
// (nvcc may contract a*b+c into an FMA, as GCC does on the CPU with -march=native, so the two
// agree to an ulp, not always bit for bit).
//
// Benchmark: bench/run_cuda_bench.sh (build/bench_cuda_kernels --filter adam): sg::Adam::step
// over a StyleGAN2-256-G-sized parameter set (~31M f32), next to PyTorch and the d2d copy
// roofline of the same run (memory bound: 4 reads + 3 writes per element).
#include "kernels/cuda/adam.h"
#include "kernels/cuda/common.cuh"
#include "kernels/elementwise.h"

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
  bool nan_to_num;  // g read as NanToNum{nan, posinf, neginf}(g) (AdamStepParams::nan_to_num)
  double nan, posinf, neginf;
};

__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return ::sqrt(x); }

template <class T>
__device__ __forceinline__ void update(T& param, T g, T& m_io, T& v_io, const Consts<T>& c) {
  if (c.nan_to_num) g = NanToNum{c.nan, c.posinf, c.neginf}(g);
  const T m = m_io * c.beta1 + g * c.one_minus_beta1;
  const T v = v_io * c.beta2 + g * g * c.one_minus_beta2;
  m_io = m;
  v_io = v;
  const T denom = m_sqrt(v) / c.bc2_sqrt + c.eps;
  param = param + c.neg_step_size * (m / denom);
}

// Elements [0, n) of one tensor, thread `first` of `step` (a grid-stride or block-stride loop).
template <class T>
__device__ __forceinline__ void adam_range(int64_t n, T* __restrict__ param, const T* __restrict__ grad,
                                           T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq, const Consts<T>& c,
                                           bool vec, int64_t first, int64_t step) {
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

template <class T>
__global__ void adam_kernel(int64_t n, T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ exp_avg,
                            T* __restrict__ exp_avg_sq, Consts<T> c, bool vec) {
  adam_range(n, param, grad, exp_avg, exp_avg_sq, c, vec, (int64_t)blockIdx.x * blockDim.x + threadIdx.x,
             (int64_t)gridDim.x * blockDim.x);
}

// adam_step_multi's launch: tensor t owns blocks [block0[t], block0[t + 1]).
template <class T>
struct MultiArgs {
  int count;
  int block0[kAdamMultiMax + 1];
  int64_t n[kAdamMultiMax];
  T* param[kAdamMultiMax];
  const T* grad[kAdamMultiMax];
  T* exp_avg[kAdamMultiMax];
  T* exp_avg_sq[kAdamMultiMax];
  Consts<T> c[kAdamMultiMax];
  bool vec[kAdamMultiMax];
};

// Kernel parameters beyond 4 KB need CUDA 12.1 and sm_70 or newer; 32764 bytes at most.
static_assert(sizeof(MultiArgs<double>) <= 32764, "adam_multi_kernel's parameters exceed 32 KB");

template <class T>
__global__ void adam_multi_kernel(__grid_constant__ const MultiArgs<T> a) {
  const int b = (int)blockIdx.x;
  int t = 0, hi = a.count - 1;  // the last t with block0[t] <= b
  while (t < hi) {
    const int mid = (t + hi + 1) / 2;
    if (a.block0[mid] <= b)
      t = mid;
    else
      hi = mid - 1;
  }
  const int64_t off = (int64_t)(b - a.block0[t]) * kAdamChunk, len = min(kAdamChunk, a.n[t] - off);
  // kAdamChunk is a multiple of every Pack<T>::N, so an aligned tensor's chunks stay aligned.
  adam_range(len, a.param[t] + off, a.grad[t] + off, a.exp_avg[t] + off, a.exp_avg_sq[t] + off, a.c[t], a.vec[t],
             (int64_t)threadIdx.x, (int64_t)blockDim.x);
}

bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

// Launches the tensors gathered in a (blocks blocks), then empties it.
template <class T>
void flush_multi(MultiArgs<T>& a, int64_t& blocks) {
  if (a.count == 0) return;
  launch("adam_multi_kernel", adam_multi_kernel<T>, (unsigned)blocks, kThreads, 0, a);
  a = MultiArgs<T>{};
  blocks = 0;
}

template <class T>
Consts<T> consts(const cpu::AdamStepParams& p) {
  return {(T)p.beta1,    (T)(1.0 - p.beta1), (T)p.beta2, (T)(1.0 - p.beta2), (T)p.eps, (T)(-p.step_size),
          (T)p.bc2_sqrt, p.nan_to_num,       p.nan,      p.posinf,           p.neginf};
}

}  // namespace

template <class T>
void adam_step(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, const cpu::AdamStepParams& p) {
  if (n <= 0) return;
  const Consts<T> c = consts<T>(p);
  const bool vec = aligned16(param) && aligned16(grad) && aligned16(exp_avg) && aligned16(exp_avg_sq);
  const int64_t work = vec ? (n + Pack<T>::N - 1) / Pack<T>::N : n;
  launch("adam_kernel", adam_kernel<T>, blocks_for(work, kThreads), kThreads, 0, n, param, grad, exp_avg, exp_avg_sq, c,
         vec);
}

template <class T>
void adam_step_multi(const std::vector<AdamTensor<T>>& tensors) {
  MultiArgs<T> a{};
  int64_t blocks = 0;
  for (const AdamTensor<T>& x : tensors) {
    if (x.n <= 0) continue;
    const int64_t nb = (x.n + kAdamChunk - 1) / kAdamChunk;
    if (a.count == kAdamMultiMax || blocks + nb > launch_limits().max_blocks) flush_multi(a, blocks);
    if (nb > launch_limits().max_blocks) {  // one tensor larger than a grid: on its own
      ::sg::kernels::cuda::adam_step<T>(x.n, x.param, x.grad, x.exp_avg, x.exp_avg_sq, x.p);
      continue;
    }
    const int i = a.count++;
    a.block0[i] = (int)blocks;
    a.n[i] = x.n, a.param[i] = x.param, a.grad[i] = x.grad, a.exp_avg[i] = x.exp_avg, a.exp_avg_sq[i] = x.exp_avg_sq;
    a.c[i] = consts<T>(x.p);
    a.vec[i] = aligned16(x.param) && aligned16(x.grad) && aligned16(x.exp_avg) && aligned16(x.exp_avg_sq);
    blocks += nb;
    a.block0[i + 1] = (int)blocks;
  }
  flush_multi(a, blocks);
}

template void adam_step<float>(int64_t, float*, const float*, float*, float*, const cpu::AdamStepParams&);
template void adam_step_multi<float>(const std::vector<AdamTensor<float>>&);
template void adam_step_multi<double>(const std::vector<AdamTensor<double>>&);
template void adam_step<double>(int64_t, double*, const double*, double*, double*, const cpu::AdamStepParams&);

}  // namespace sg::kernels::cuda
