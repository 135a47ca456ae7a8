// CUDA sum over any dims. Declarations: reduce.h.
//
// Formula: out[o] = sum_r in[kept_offset(o) + reduced_offset(r)], accumulated in double (for
// f32 too: the sum is memory bound, so the f64 adds are free on H100, and f32 results then
// agree with the CPU, which also accumulates in double, to the final rounding).
//
// Layout: the input is contiguous row-major. The host splits its dims into a kept group and a
// reduced group, drops size-1 dims and merges dims that are adjacent in memory within each
// group (innermost first, at most 8 per group). Output o is the row-major index over the kept
// dims, i.e. the output tensor is contiguous.
//
// Variants (the choice depends only on the shape, so results are bit-reproducible):
//   - thread: one thread per output, a sequential loop over r. For tiny reductions (R < 32 when
//     the reduction is innermost, R < 16 otherwise) and for R == 1 (a pure cast/copy).
//   - warp:   the reduced run is innermost (stride 1) and R <= 4096: one warp per output,
//     lanes read consecutive elements (coalesced), __shfl_down_sync tree at the end.
//   - block:  innermost reduction, R > 4096: 256 threads per output, each block reducing one
//     chunk of r; warp shuffles, then the 8 warp sums through shared memory.
//   - column: the kept run is innermost (e.g. [N, C] summed over N, a bias gradient over the
//     batch): blocks of 32 outputs x 8 reduction lanes; the 32 threads of a warp read 32
//     adjacent outputs' elements (coalesced); the 8 lanes are added in order via shared memory.
//   block and column split r into S chunks when there are too few outputs to fill the GPU
//   (target ~512 blocks): each chunk's double partial sum goes to the workspace, and a
//   finalize kernel adds an output's S partials in order. No atomics anywhere.
//   Index math is int32 when the input has at most 2^30 elements, int64 otherwise.
//
// Benchmark: no benchmark yet.
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/reduce.h"

namespace sg::kernels::cuda {

namespace {

enum class Kind { none, zeros, thread, warp, block, column };

struct Plan {
  Kind kind = Kind::none;
  int64_t O = 1, R = 1, S = 1;
  bool small = true;
  std::vector<int64_t> ksize, kstride, rsize, rstride;  // innermost first
  size_t workspace_bytes() const { return S > 1 ? (size_t)(O * S) * sizeof(double) : 0; }
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

constexpr int64_t kTargetBlocks = 512;
constexpr int kBlockThreads = 256;
constexpr int kWarpsPerBlock = 8;
constexpr int kColLanes = 8;

Plan make_plan(const std::vector<int64_t>& shape, const std::vector<bool>& reduced) {
  if (reduced.size() != shape.size())
    throw CudaError("sum: " + std::to_string(reduced.size()) + " reduce flags for " + std::to_string(shape.size()) +
                    " dims");
  Plan p;
  int64_t numel = 1, stride = 1;
  for (auto s : shape) numel *= s;
  for (int d = (int)shape.size() - 1; d >= 0; --d) {
    const int64_t n = shape[d];
    if (reduced[d])
      p.R *= n;
    else
      p.O *= n;
    if (n != 1) {
      auto& sz = reduced[d] ? p.rsize : p.ksize;
      auto& st = reduced[d] ? p.rstride : p.kstride;
      if (!sz.empty() && stride == st.back() * sz.back())
        sz.back() *= n;
      else
        sz.push_back(n), st.push_back(stride);
    }
    stride *= n;
  }
  if (p.ksize.size() > (size_t)kMaxDims || p.rsize.size() > (size_t)kMaxDims)
    throw CudaError("sum: more than " + std::to_string(kMaxDims) + " kept or reduced dims remain after coalescing");
  p.small = numel <= launch_limits().index32_elements;
  if (p.O == 0) return p;  // nothing to write
  if (p.R == 0) {
    p.kind = Kind::zeros;
    return p;
  }
  const bool inner_reduce = !p.rsize.empty() && (p.kstride.empty() || p.rstride[0] == 1);
  if (p.rsize.empty() || (inner_reduce && p.R < 32) || (!inner_reduce && p.R < 16)) {
    p.kind = Kind::thread;
  } else if (inner_reduce && p.R <= 4096) {
    p.kind = Kind::warp;
  } else if (inner_reduce) {
    p.kind = Kind::block;
    if (p.O < kTargetBlocks / 2) p.S = clamp64(std::min(ceil_div(kTargetBlocks, p.O), ceil_div(p.R, 16384)), 1, 1024);
  } else {
    p.kind = Kind::column;
    const int64_t bx = ceil_div(p.O, 32);
    if (bx < kTargetBlocks / 2) p.S = clamp64(std::min(ceil_div(kTargetBlocks, bx), ceil_div(p.R, 256)), 1, 1024);
  }
  return p;
}

template <class I>
StridedIndexer<1, I> group_indexer(const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
  StridedIndexer<1, I> ix;
  ix.ndim = (int)size.size();
  for (size_t d = 0; d < size.size(); ++d) ix.size[d] = (I)size[d], ix.stride[0][d] = (I)stride[d];
  return ix;
}

template <class I>
__device__ __forceinline__ I offset_of(const StridedIndexer<1, I>& ix, I linear) {
  I off[1];
  ix.offsets(linear, off);
  return off[0];
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a block of kBlockThreads threads; the result is valid in thread 0. Ends with a
// barrier so the shared buffer can be reused by the next call.
__device__ __forceinline__ double block_sum(double v) {
  __shared__ double warp_sums[kBlockThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kBlockThreads / 32 ? warp_sums[lane] : 0.0;
    v = warp_sum(v);
  }
  __syncthreads();
  return v;
}

template <class T, class I>
__global__ void sum_thread_kernel(I O, I R, const T* __restrict__ in, T* __restrict__ out, StridedIndexer<1, I> kix,
                                  StridedIndexer<1, I> rix) {
  for (I o = (I)(blockIdx.x * blockDim.x + threadIdx.x); o < O; o += (I)(gridDim.x * blockDim.x)) {
    const T* base = in + offset_of(kix, o);
    double acc = 0;
    for (I r = 0; r < R; ++r) acc += (double)base[offset_of(rix, r)];
    out[o] = (T)acc;
  }
}

template <class T, class I>
__global__ void sum_warp_kernel(I O, I R, const T* __restrict__ in, T* __restrict__ out, StridedIndexer<1, I> kix,
                                StridedIndexer<1, I> rix) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (I o = (I)(blockIdx.x * kWarpsPerBlock + warp); o < O; o += (I)(gridDim.x * kWarpsPerBlock)) {
    const T* base = in + offset_of(kix, o);
    double acc = 0;
    for (I r = lane; r < R; r += 32) acc += (double)base[offset_of(rix, r)];
    acc = warp_sum(acc);
    if (lane == 0) out[o] = (T)acc;
  }
}

// grid (x: outputs, y: S chunks of `chunk` reduced elements).
template <class T, class I>
__global__ void sum_block_kernel(I O, I R, I chunk, const T* __restrict__ in, T* __restrict__ out,
                                 double* __restrict__ partial, StridedIndexer<1, I> kix, StridedIndexer<1, I> rix) {
  const I S = (I)gridDim.y, s = (I)blockIdx.y;
  const I r0 = s * chunk, r1 = min(R, r0 + chunk);
  for (I o = (I)blockIdx.x; o < O; o += (I)gridDim.x) {
    const T* base = in + offset_of(kix, o);
    double acc = 0;
    for (I r = r0 + (I)threadIdx.x; r < r1; r += kBlockThreads) acc += (double)base[offset_of(rix, r)];
    acc = block_sum(acc);
    if (threadIdx.x == 0) {
      if (S == 1)
        out[o] = (T)acc;
      else
        partial[(int64_t)o * S + s] = acc;
    }
  }
}

// block (32, kColLanes); grid (x: groups of 32 outputs, y: S chunks).
template <class T, class I>
__global__ void sum_column_kernel(I O, I R, I chunk, const T* __restrict__ in, T* __restrict__ out,
                                  double* __restrict__ partial, StridedIndexer<1, I> kix, StridedIndexer<1, I> rix) {
  __shared__ double lanes[kColLanes][33];
  const I S = (I)gridDim.y, s = (I)blockIdx.y;
  const I r0 = s * chunk, r1 = min(R, r0 + chunk);
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (I o0 = (I)blockIdx.x * 32; o0 < O; o0 += (I)gridDim.x * 32) {
    const I o = o0 + tx;
    double acc = 0;
    if (o < O) {
      const T* base = in + offset_of(kix, o);
      for (I r = r0 + ty; r < r1; r += kColLanes) acc += (double)base[offset_of(rix, r)];
    }
    lanes[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && o < O) {
      double t = 0;
#pragma unroll
      for (int l = 0; l < kColLanes; ++l) t += lanes[l][tx];
      if (S == 1)
        out[o] = (T)t;
      else
        partial[(int64_t)o * S + s] = t;
    }
    __syncthreads();
  }
}

template <class T, class I>
__global__ void sum_finalize_kernel(I O, I S, const double* __restrict__ partial, T* __restrict__ out) {
  for (I o = (I)(blockIdx.x * blockDim.x + threadIdx.x); o < O; o += (I)(gridDim.x * blockDim.x)) {
    const double* p = partial + (int64_t)o * S;
    double acc = 0;
    for (I s = 0; s < S; ++s) acc += p[s];
    out[o] = (T)acc;
  }
}

template <class T, class I>
void run(const Plan& p, const T* in, T* out, double* ws) {
  const auto kix = group_indexer<I>(p.ksize, p.kstride), rix = group_indexer<I>(p.rsize, p.rstride);
  const I O = (I)p.O, R = (I)p.R, S = (I)p.S, chunk = (I)ceil_div(p.R, p.S);
  switch (p.kind) {
    case Kind::thread:
      launch(sizeof(I) == 4 ? "sum_thread_kernel<int32>" : "sum_thread_kernel<int64>", sum_thread_kernel<T, I>,
             blocks_for(p.O, kBlockThreads), kBlockThreads, 0, O, R, in, out, kix, rix);
      return;
    case Kind::warp:
      launch(sizeof(I) == 4 ? "sum_warp_kernel<int32>" : "sum_warp_kernel<int64>", sum_warp_kernel<T, I>,
             blocks_for(p.O, kWarpsPerBlock), kBlockThreads, 0, O, R, in, out, kix, rix);
      return;
    case Kind::block: {
      const dim3 grid((unsigned)clamp64(p.O, 1, 1 << 20), (unsigned)p.S);
      launch(sizeof(I) == 4 ? "sum_block_kernel<int32>" : "sum_block_kernel<int64>", sum_block_kernel<T, I>, grid,
             kBlockThreads, 0, O, R, chunk, in, out, ws, kix, rix);
      break;
    }
    case Kind::column: {
      const dim3 grid((unsigned)clamp64(ceil_div(p.O, 32), 1, 1 << 20), (unsigned)p.S);
      launch(sizeof(I) == 4 ? "sum_column_kernel<int32>" : "sum_column_kernel<int64>", sum_column_kernel<T, I>, grid,
             dim3(32, kColLanes), 0, O, R, chunk, in, out, ws, kix, rix);
      break;
    }
    default:
      return;
  }
  if (p.S > 1) {
    launch(sizeof(I) == 4 ? "sum_finalize_kernel<int32>" : "sum_finalize_kernel<int64>", sum_finalize_kernel<T, I>,
           blocks_for(p.O, kBlockThreads), kBlockThreads, 0, O, S, ws, out);
  }
}

}  // namespace

size_t sum_workspace_bytes(const std::vector<int64_t>& shape, const std::vector<bool>& reduced) {
  return make_plan(shape, reduced).workspace_bytes();
}

template <class T>
void sum(const std::vector<int64_t>& shape, const std::vector<bool>& reduced, const T* in, T* out, void* workspace) {
  const Plan p = make_plan(shape, reduced);
  if (p.kind == Kind::none) return;
  if (p.kind == Kind::zeros) return fill<T>(p.O, out, 0.0);
  if (p.workspace_bytes() > 0 && workspace == nullptr)
    throw CudaError("sum: a workspace of " + std::to_string(p.workspace_bytes()) + " bytes is needed");
  double* ws = static_cast<double*>(workspace);
  if (p.small)
    run<T, int32_t>(p, in, out, ws);
  else
    run<T, int64_t>(p, in, out, ws);
}

template void sum<float>(const std::vector<int64_t>&, const std::vector<bool>&, const float*, float*, void*);
template void sum<double>(const std::vector<int64_t>&, const std::vector<bool>&, const double*, double*, void*);

}  // namespace sg::kernels::cuda
