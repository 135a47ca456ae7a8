// CPU elementwise and reduction loops over raw pointers.
//
//   unary:      out[i] = f(a[i])                              (contiguous, threads + simd)
//   binary:     out[idx] = f(a[idx . sa], b[idx . sb])        (numpy broadcasting: a stride of 0
//                                                              repeats an input along that dim)
//   reduce_sum: out[idx . so] += a[idx]                       (so has 0 for reduced dims)
//   strided_copy: out[idx] = a[idx . sa]                      (materialises a view)
//
// Layout: row-major; strides are in elements.
// Benchmark: none of its own; the training benchmarks (bench/run_train_bench.sh) run them.
// The fixed-stride rows of binary, reduce_sum and strided_copy (vectorized: a broadcast row
// times one style, a row into one sum) and the Winograd transforms (kernels/cpu/winograd.h)
// together made the main job's training 1.16x faster at 1 thread, measured side by side
// (bench/pair_ab.sh train; bench/results/main_job_pair_2026-12-01.txt). strided_copy and
// reduce_sum also take a short innermost dim of 2-4 (an expand of a size-1 last dim, 2x2
// mean pooling's windows) one window per element of the dim above, not one tiny row each:
// seed32's G forward and G step, measured with perf (commits 630fbff, 7e2722b); reduce_sum
// the same with the dim above reduced too (a 3x3 kernel's 9 taps).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/transpose.h"

namespace sg::kernels::cpu {

// Elements below which a loop stays on one thread. With passive waiting a region costs
// 50-75 us (the sleeping thread's wake-up), and a 2-thread a[i] + b[i] beats one thread only
// from about 120,000 floats (build/bench_omp_region, bench/results/omp_region_2026-12-01.txt);
// with spinning threads the break-even is under 16,000 floats, so this costs a spinning run a
// few microseconds per op of 32K-128K floats. (2^14 while the pool's threads spin measured no
// faster on the main job: 17.2 against 17.5 s/kimg, 4 interleaved runs each, within the noise.)
constexpr int64_t kParallelGrain = 1 << 17;

// body(i) for i in [0, n), in chunks over the threads when n > kParallelGrain.
template <class F>
void elementwise(int64_t n, F body) {
  parallel_for(n, n > kParallelGrain, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) body(i);
  });
}

// out[k * SO] += w * in[k * SM] for k in [0, n), the strides fixed at compile time so that
// the loop vectorizes (strided loads and stores become permutes): col2im's scatter-add
// (kernels/cpu/conv.cpp, w = 1) and upfirdn2d's horizontal taps (kernels/cpu/upfirdn2d.cpp).
template <int64_t SO, int64_t SM, class T>
void strided_axpy(T* __restrict out, const T* __restrict in, T w, int64_t n) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) out[k * SO] += w * in[k * SM];
}

template <class T, class F>
void unary(int64_t n, const T* a, T* out, F f) {
  elementwise(n, [&](int64_t i) { out[i] = f(a[i]); });
}

// Visits every index of `shape` in row-major order, calling body(offsets, inner, strides)
// once per innermost row with one running offset per stride vector. Dims of size 1 are
// dropped and adjacent dims that are contiguous for every operand are merged first, so the
// innermost row is as long as possible. With `parallel`, rows are split across the
// threads (only for loops whose rows write disjoint outputs).
template <size_t K, class F>
void strided_loop(const std::vector<int64_t>& shape0, const std::vector<int64_t> (&strides0)[K], F body,
                  bool parallel = false) {
  std::vector<int64_t> shape;
  std::vector<int64_t> strides[K];
  int64_t total = 1;
  for (size_t d = 0; d < shape0.size(); ++d) {
    total *= shape0[d];
    if (shape0[d] == 1) continue;
    bool merge = !shape.empty();
    for (size_t k = 0; k < K && merge; ++k) merge = strides[k].back() == strides0[k][d] * shape0[d];
    if (merge) {
      shape.back() *= shape0[d];
      for (size_t k = 0; k < K; ++k) strides[k].back() = strides0[k][d];
    } else {
      shape.push_back(shape0[d]);
      for (size_t k = 0; k < K; ++k) strides[k].push_back(strides0[k][d]);
    }
  }
  if (total == 0) return;
  if (shape.empty()) {
    int64_t off[K] = {};
    body(off, 1, strides);
    return;
  }
  const int nd = (int)shape.size();
  const int64_t inner = shape[nd - 1], rows = total / inner;
  auto run_rows = [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx(nd, 0);
    int64_t off[K] = {};
    for (int d = nd - 2; d >= 0; --d) {
      int64_t below = 1;
      for (int e = d + 1; e < nd - 1; ++e) below *= shape[e];
      idx[d] = (r0 / below) % shape[d];
      for (size_t k = 0; k < K; ++k) off[k] += idx[d] * strides[k][d];
    }
    for (int64_t row = r0; row < r1; ++row) {
      body(off, inner, strides);
      for (int d = nd - 2; d >= 0; --d) {
        idx[d]++;
        for (size_t k = 0; k < K; ++k) off[k] += strides[k][d];
        if (idx[d] < shape[d]) break;
        for (size_t k = 0; k < K; ++k) off[k] -= strides[k][d] * shape[d];
        idx[d] = 0;
      }
    }
  };
  parallel_for(rows, parallel && total > kParallelGrain, run_rows);
}

// Whether strides st (of a tensor seen with `shape`, n elements in all) hold one value per row of
// `shape`'s last dims (st 0 there, or size 1) and are contiguous over the dims before them (the
// product of the later leading sizes): then value r belongs to the r-th row of the returned
// length. 0 where not, or where that is a single row or rows of 1 (a [N, C, 1, 1] against a
// contiguous [N, C, H, W]: binary's per-row factor, reduce_sum's per-row sum).
inline int64_t rows_of_one_value(const std::vector<int64_t>& shape, const std::vector<int64_t>& st, int64_t n) {
  int64_t inner = 1, d = (int64_t)shape.size() - 1;
  for (; d >= 0 && (shape[d] == 1 || st[d] == 0); --d) inner *= shape[d];
  bool ok = inner > 1 && inner < n;
  for (int64_t s = 1, e = d; e >= 0 && ok; s *= shape[e], --e) ok = shape[e] == 1 || st[e] == s;
  return ok ? inner : 0;
}

template <class T, class F>
void binary(const std::vector<int64_t>& shape, const T* a, const std::vector<int64_t>& sa, const T* b,
            const std::vector<int64_t>& sb, T* out, F f) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  bool a_full = true, b_full = true;
  {
    int64_t s = 1;
    for (int d = (int)shape.size() - 1; d >= 0; --d) {
      if (shape[d] != 1 && sa[d] != s) a_full = false;
      if (shape[d] != 1 && sb[d] != s) b_full = false;
      s *= shape[d];
    }
  }
  if (a_full && b_full) return elementwise(n, [&](int64_t i) { out[i] = f(a[i], b[i]); });
  // a contiguous times one value of b per row of its last dims (b [.., 1, 1] against a [.., h, w]
  // with b contiguous over the leading dims: a weight [O, C, 3, 3] times [O, C, 1, 1], a row of x
  // times one style): rows of `inner` with no per-row bookkeeping. strided_loop's rows of 9
  // cost 0.76 ms on a 384 x 384 x 3 x 3 weight, 8 times its memory traffic (seed32's PL step).
  if (a_full)
    if (const int64_t inner = rows_of_one_value(shape, sb, n))
      return parallel_for(n / inner, n > kParallelGrain, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const T vb = b[r];
          const T* __restrict pa = a + r * inner;
          T* __restrict po = out + r * inner;
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], vb);
        }
      });
  std::vector<int64_t> so(shape.size());
  int64_t s = 1;
  for (int d = (int)shape.size() - 1; d >= 0; --d) so[d] = s, s *= shape[d];
  const std::vector<int64_t> strides[3] = {sa, sb, so};
  strided_loop<3>(
      shape, strides,
      [&](const int64_t* off, int64_t inner, const std::vector<int64_t>(&st)[3]) {
        const int64_t ia = st[0].empty() ? 0 : st[0].back(), ib = st[1].empty() ? 0 : st[1].back();
        const T* __restrict pa = a + off[0];
        const T* __restrict pb = b + off[1];
        T* __restrict po = out + off[2];
        // The rows of broadcasting ops (a row of x times one style, a row plus one bias) with
        // the strides fixed, so that they vectorize; any other stride pair takes the general loop.
        if (ia == 1 && ib == 0) {
          const T vb = pb[0];
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], vb);
        } else if (ia == 0 && ib == 1) {
          const T va = pa[0];
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) po[i] = f(va, pb[i]);
        } else if (ia == 1 && ib == 1) {
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], pb[i]);
        } else {
          for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i * ia], pb[i * ib]);
        }
      },
      true);
}

// out (already zeroed, accumulated in double) += a, with `so` mapping input index -> output.
// Threads: split along the longest dim that the output keeps (so[d] != 0), so each thread
// owns its own sums and every sum adds its terms in the same order as on one thread (the
// same bits at any thread count); a full reduction (no kept dim) stays on one thread.
template <class T>
void reduce_sum(const std::vector<int64_t>& shape, const T* a, const std::vector<int64_t>& so, double* out) {
  std::vector<int64_t> sa(shape.size());
  int64_t s = 1;
  for (int d = (int)shape.size() - 1; d >= 0; --d) sa[d] = s, s *= shape[d];
  int kept = -1;
  for (int d = 0; d < (int)shape.size(); ++d)
    if (so[d] != 0 && shape[d] > 1 && (kept < 0 || shape[d] > shape[kept])) kept = d;
  // Each of the leading dims' rows summed whole (a [N, C, H, W] into [N, C, 1, 1]: the gradient
  // of a per-channel factor, a mean over the pixels): the strided loop's row into one sum (below)
  // without its bookkeeping per row (at 4x4 grids that was 5 times the sums' own time).
  if (const int64_t inner = rows_of_one_value(shape, so, s))
    return parallel_for(s / inner, s > kParallelGrain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* __restrict pa = a + r * inner;
        double acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t i = 0; i < inner; ++i) acc += (double)pa[i];
        out[r] += acc;
      }
    });
  // Sums of r <= 4 consecutive elements (2x2 mean pooling's [.., W/2, 2] windows, the gradient
  // of an expand of a size-1 last dim): the loop runs over the dims above the last, each of its
  // elements adding its r inputs, rather than over rows of r (measured: reduce_sum was 7.6% of
  // seed32's G step, mostly such windows). The terms are added in the same order either way.
  // When the dim above is reduced too (a 3x3 kernel's taps: sum(square(w), {2, 3}) of the
  // modulated convs' demodulation), each element of the loop adds its r1 windows of r, in
  // index order, rather than a row of r1 windows per element (the same order, so the same bits).
  const size_t nd = shape.size();
  const int64_t r = nd >= 2 && shape[nd - 1] > 1 && shape[nd - 1] <= 4 && so[nd - 1] == 0 ? shape[nd - 1] : 1;
  const int64_t r1 = r > 1 && nd >= 3 && shape[nd - 2] > 1 && so[nd - 2] == 0 ? shape[nd - 2] : 1;
  const std::vector<int64_t> loop_shape(shape.begin(), shape.end() - (r > 1 ? 1 : 0) - (r1 > 1 ? 1 : 0));
  const std::vector<int64_t> strides[2] = {{sa.begin(), sa.begin() + loop_shape.size()},
                                           {so.begin(), so.begin() + loop_shape.size()}};
  auto sum_slice = [&](int64_t b, int64_t e) {  // [b, e) of dim `kept` (everything when kept < 0)
    std::vector<int64_t> sub = loop_shape;
    const T* a0 = a;
    double* out0 = out;
    if (kept >= 0) sub[kept] = e - b, a0 += b * sa[kept], out0 += b * so[kept];
    strided_loop<2>(sub, strides, [&](const int64_t* off, int64_t inner, const std::vector<int64_t>(&st)[2]) {
      const int64_t io = st[1].empty() ? 0 : st[1].back();
      const T* __restrict pa = a0 + off[0];
      double* __restrict po = out0 + off[1];
      if (r1 > 1) {  // inner elements of r1 windows of r consecutive inputs each
        const int64_t ia = st[0].empty() ? r1 * r : st[0].back();
        for (int64_t i = 0; i < inner; ++i)
          for (int64_t w = 0; w < r1; ++w) {
            double acc = 0;
            for (int64_t k = 0; k < r; ++k) acc += (double)pa[i * ia + w * r + k];
            po[i * io] += acc;
          }
      } else if (r > 1) {  // inner elements of r consecutive inputs each
        const int64_t ia = st[0].empty() ? r : st[0].back();
        if (r == 2 && ia == 2 && io == 1) {
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) {
            double acc = (double)pa[2 * i];
            acc += (double)pa[2 * i + 1];
            po[i] += acc;
          }
        } else {
          for (int64_t i = 0; i < inner; ++i) {
            double acc = 0;
            for (int64_t k = 0; k < r; ++k) acc += (double)pa[i * ia + k];
            po[i * io] += acc;
          }
        }
      } else if (io == 0) {  // a row into one sum: in vector lanes (double keeps the order's effect ~1e-16)
        double acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t i = 0; i < inner; ++i) acc += (double)pa[i];
        po[0] += acc;
      } else if (io == 1) {
#pragma omp simd
        for (int64_t i = 0; i < inner; ++i) po[i] += (double)pa[i];
      } else {
        for (int64_t i = 0; i < inner; ++i) po[i * io] += (double)pa[i];
      }
    });
  };
  if (kept < 0) return sum_slice(0, 1);
  parallel_for(shape[kept], s > kParallelGrain, sum_slice);
}

// out[idx] = a[idx . sa] : materialises a permuted or broadcast view.
template <class T>
void strided_copy(const std::vector<int64_t>& shape, const T* a, const std::vector<int64_t>& sa, T* out) {
  std::vector<int64_t> so(shape.size());
  int64_t s = 1;
  for (int d = (int)shape.size() - 1; d >= 0; --d) so[d] = s, s *= shape[d];
  const size_t nd = shape.size();
  if (nd >= 2 && shape[nd - 1] > 1 && shape[nd - 1] <= 4 && sa[nd - 1] == 0) {
    // Each element repeated r <= 4 times along the innermost dim (an expand of a size-1 last
    // dim, as nearest-neighbour upsampling's [.., W, 1] -> [.., W, 2]): rows of the dims
    // above, each element written r times, rather than a row of r per element (measured:
    // that was 6.5% of seed32's G forward).
    const int64_t r = shape[nd - 1];
    const std::vector<int64_t> shape1(shape.begin(), shape.end() - 1);
    const std::vector<int64_t> strides1[2] = {{sa.begin(), sa.end() - 1}, {so.begin(), so.end() - 1}};
    strided_loop<2>(
        shape1, strides1,
        [&](const int64_t* off, int64_t inner, const std::vector<int64_t>(&st)[2]) {
          const int64_t ia = st[0].empty() ? 0 : st[0].back(), io = st[1].empty() ? r : st[1].back();
          const T* __restrict pa = a + off[0];
          T* __restrict po = out + off[1];
          if (r == 2 && ia == 1 && io == 2) {
#pragma omp simd
            for (int64_t i = 0; i < inner; ++i) po[2 * i] = pa[i], po[2 * i + 1] = pa[i];
          } else {
            for (int64_t i = 0; i < inner; ++i)
              for (int64_t k = 0; k < r; ++k) po[i * io + k] = pa[i * ia];
          }
        },
        true);
    return;
  }
  if (nd >= 2 && sa[nd - 2] == 1 && shape[nd - 2] >= 8 && shape[nd - 1] >= 8 && sa[nd - 1] >= shape[nd - 2]) {
    // The last two dims swapped (transpose / permute of a matrix, or of each in a batch):
    // out[.., p, q] = a[.., p + q S]. Reading a column per output row went a cache line per
    // element; transpose2d goes by blocks (kernels/cpu/transpose.h).
    const int64_t P = shape[nd - 2], Q = shape[nd - 1], outer = s / (P * Q);
    for (int64_t o = 0; o < outer; ++o) {
      int64_t off = 0;
      for (int64_t d = (int64_t)nd - 3, rest = o; d >= 0; --d) off += rest % shape[d] * sa[d], rest /= shape[d];
      transpose2d(a + off, Q, P, sa[nd - 1], out + o * P * Q, Q);
    }
    return;
  }
  const std::vector<int64_t> strides[2] = {sa, so};
  strided_loop<2>(
      shape, strides,
      [&](const int64_t* off, int64_t inner, const std::vector<int64_t>(&st)[2]) {
        const int64_t ia = st[0].empty() ? 0 : st[0].back();
        const T* __restrict pa = a + off[0];
        T* __restrict po = out + off[1];
        if (ia == 1)
          std::copy(pa, pa + inner, po);
        else if (ia == 0)
          std::fill(po, po + inner, pa[0]);
        else
          for (int64_t i = 0; i < inner; ++i) po[i] = pa[i * ia];
      },
      true);
}

}  // namespace sg::kernels::cpu

namespace sg::kernels::cpu {

// out[idx . so] = a[idx] : the adjoint of strided_copy for injective views (slice).
template <class T>
void strided_scatter(const std::vector<int64_t>& shape, const T* a, T* out, const std::vector<int64_t>& so) {
  std::vector<int64_t> sa(shape.size());
  int64_t s = 1;
  for (int d = (int)shape.size() - 1; d >= 0; --d) sa[d] = s, s *= shape[d];
  const std::vector<int64_t> strides[2] = {sa, so};
  strided_loop<2>(
      shape, strides,
      [&](const int64_t* off, int64_t inner, const std::vector<int64_t>(&st)[2]) {
        const int64_t io = st[1].empty() ? 0 : st[1].back();
        const T* pa = a + off[0];
        T* po = out + off[1];
        for (int64_t i = 0; i < inner; ++i) po[i * io] = pa[i];
      },
      true);
}

}  // namespace sg::kernels::cpu
