// Winograd F(2x2, 3x3): see winograd.h.
#include "kernels/cpu/winograd.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/scratch.h"

namespace sg::kernels::cpu {

namespace {

// Scratch V and M together near this many elements per thread.
constexpr int64_t kScratchBudget = int64_t(1) << 18;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// U = G g G^T for n 3x3 kernels side by side (kernel l's tap (i, j) at g[(3*i + j) * kWB + l],
// in double), into u[e * stride + l], e = 4*i + j; computed in double and rounded once. The
// loops over l are the vector lanes (n <= kWB kernels, the input channels of one output).
constexpr int64_t kWB = 16;
template <class T>
void weight_transform(const double* g, int64_t n, T* u, int64_t stride) {
  double t[4][3][kWB];  // G g
  for (int j = 0; j < 3; ++j)
#pragma omp simd
    for (int64_t l = 0; l < kWB; ++l) {
      const double a = g[(0 * 3 + j) * kWB + l], b = g[(1 * 3 + j) * kWB + l], c = g[(2 * 3 + j) * kWB + l];
      t[0][j][l] = a;
      t[1][j][l] = 0.5 * (a + b + c);
      t[2][j][l] = 0.5 * (a - b + c);
      t[3][j][l] = c;
    }
  for (int i = 0; i < 4; ++i) {  // (G g) G^T
    T* u0 = u + (4 * i + 0) * stride;
    T* u1 = u + (4 * i + 1) * stride;
    T* u2 = u + (4 * i + 2) * stride;
    T* u3 = u + (4 * i + 3) * stride;
#pragma omp simd
    for (int64_t l = 0; l < n; ++l) {
      const double a = t[i][0][l], b = t[i][1][l], c = t[i][2][l];
      u0[l] = (T)a;
      u1[l] = (T)(0.5 * (a + b + c));
      u2[l] = (T)(0.5 * (a - b + c));
      u3[l] = (T)c;
    }
  }
}

// One run of a chunk's tiles: tiles tx0 .. tx0 + len - 1 of tile row ty of image n, at offset
// t in the chunk. Its patches cover input rows y0 .. y0 + 3 and columns x0 .. x0 + w - 1
// (w = 2 len + 2), of which [a, b) lie inside the image (zero padding outside). Its outputs
// are rows 2 ty, 2 ty + 1 and columns 2 tx0 .. 2 tx0 + 2 len - 1; `inside`: all of them exist
// (not cut by an odd Ho or Wo).
struct Run {
  int64_t n, ty, tx0, len, t, y0, x0, a, b;
  bool inside;
};

// The runs of the nq tiles from q0: a tile row's tiles in one run, split at the chunk's ends.
std::vector<Run> chunk_runs(int64_t q0, int64_t nq, int64_t tiles_per_image, int64_t tw, int64_t W, int64_t py,
                            int64_t px, int64_t Ho, int64_t Wo) {
  std::vector<Run> runs;
  for (int64_t t = 0; t < nq;) {
    const int64_t q = q0 + t, n = q / tiles_per_image, r = q % tiles_per_image;
    const int64_t ty = r / tw, tx0 = r % tw, len = std::min(tw - tx0, nq - t);
    const int64_t x0 = 2 * tx0 - px, w = 2 * len + 2;
    const int64_t a = std::clamp<int64_t>(-x0, 0, w), b = std::clamp<int64_t>(W - x0, a, w);
    runs.push_back({n, ty, tx0, len, t, 2 * ty - py, x0, a, b, 2 * ty + 1 < Ho && 2 * (tx0 + len) <= Wo});
    t += len;
  }
  return runs;
}

// Per-thread buffers that only grow, one per use (kernels/cpu/scratch.h): a convolution
// called again with the same shapes allocates nothing.
enum Slot { kU, kV, kM, kRows, kAcc, kSum, kSlots };
static_assert(kSlots <= kScratchSlots);
struct WinogradScratch;
template <class T>
T* thread_buffer(Slot slot, int64_t n) {
  return thread_scratch<WinogradScratch, T>(slot, n);
}

// A thread's scratch for the transforms of runs of at most `chunk` tiles: input_transform's
// rows t [4][w] (w <= 2 chunk + 2) and a row of zeros, and two rows of 2 chunk for a run whose
// outputs an odd Ho or Wo cuts (the forward's output block, the weight gradient's dY).
template <class T>
struct RunScratch {
  explicit RunScratch(int64_t chunk) : wmax(2 * chunk + 2), buf(thread_buffer<T>(kRows, 5 * wmax + 4 * chunk)) {
    std::fill(zero(), zero() + wmax, T(0));
  }
  T* rows() { return buf; }
  T* zero() { return buf + 4 * wmax; }
  T* edge() { return buf + 5 * wmax; }
  int64_t wmax;
  T* buf;
};

// V = B^T d B for the tiles of run r from one channel plane img [H, W], into v[e * stride + k],
// e = 4 i + j. The rows first, t = B^T d (row i of t combines input rows y0 .. y0 + 3 across
// all w columns: contiguous), then each tile's 4 columns of t (reads of stride 2): no per-tile
// copies, no bounds checks inside the loops. tbuf holds [4][w] and zero at least w zeros.
template <class T>
void input_transform(const T* img, int64_t H, int64_t W, const Run& r, const T* zero, T* __restrict tbuf, T* v,
                     int64_t stride) {
  const int64_t w = 2 * r.len + 2, a = r.a, b = r.b;
  const T* s[4];  // row i of the patch, columns a .. b - 1 (zero rows outside the image)
  for (int i = 0; i < 4; ++i) {
    const int64_t yy = r.y0 + i;
    s[i] = (yy < 0 || yy >= H) ? zero : img + yy * W + r.x0 + a;
  }
  T* __restrict t0 = tbuf;
  T* __restrict t1 = tbuf + w;
  T* __restrict t2 = tbuf + 2 * w;
  T* __restrict t3 = tbuf + 3 * w;
  for (T* t : {t0, t1, t2, t3}) std::fill(t, t + a, T(0)), std::fill(t + b, t + w, T(0));
  {
    const T* __restrict d0 = s[0], * __restrict d1 = s[1], * __restrict d2 = s[2], * __restrict d3 = s[3];
#pragma omp simd
    for (int64_t x = 0; x < b - a; ++x) {  // t = B^T d, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
      t0[a + x] = d0[x] - d2[x];
      t1[a + x] = d1[x] + d2[x];
      t2[a + x] = d2[x] - d1[x];
      t3[a + x] = d1[x] - d3[x];
    }
  }
  for (int i = 0; i < 4; ++i) {  // (B^T d) B: tile k's columns are 2k .. 2k + 3 of t
    const T* __restrict q = tbuf + i * w;
    T* __restrict v0 = v + (4 * i + 0) * stride;
    T* __restrict v1 = v + (4 * i + 1) * stride;
    T* __restrict v2 = v + (4 * i + 2) * stride;
    T* __restrict v3 = v + (4 * i + 3) * stride;
#pragma omp simd
    for (int64_t k = 0; k < r.len; ++k) {
      const T c0 = q[2 * k], c1 = q[2 * k + 1], c2 = q[2 * k + 2], c3 = q[2 * k + 3];
      v0[k] = c0 - c2;
      v1[k] = c1 + c2;
      v2[k] = c2 - c1;
      v3[k] = c1 - c3;
    }
  }
}

// y = A^T m A for the len tiles of a run, m[e * stride + k]: tile k's 2x2 block goes to
// y0[2k], y0[2k + 1] (its first output row) and y1[2k], y1[2k + 1] (its second).
template <class T>
void output_transform(const T* m, int64_t stride, int64_t len, T* __restrict y0, T* __restrict y1) {
#pragma omp simd
  for (int64_t k = 0; k < len; ++k) {
    T a[2][4];  // A^T m, A^T = [1 1 1 0; 0 1 -1 -1]
    for (int j = 0; j < 4; ++j) {
      const T m0 = m[j * stride + k], m1 = m[(4 + j) * stride + k], m2 = m[(8 + j) * stride + k],
              m3 = m[(12 + j) * stride + k];
      a[0][j] = m0 + m1 + m2;
      a[1][j] = m1 - m2 - m3;
    }
    // (A^T m) A
    y0[2 * k] = a[0][0] + a[0][1] + a[0][2];
    y0[2 * k + 1] = a[0][1] - a[0][2] - a[0][3];
    y1[2 * k] = a[1][0] + a[1][1] + a[1][2];
    y1[2 * k + 1] = a[1][1] - a[1][2] - a[1][3];
  }
}

// Z = A dY A^T (4x4 from the 2x2 block dY) for the len tiles of a run: tile k's dY is
// (r0[2k], r0[2k + 1]) over (r1[2k], r1[2k + 1]); z[e * stride + k].
template <class T>
void grad_transform(const T* __restrict r0, const T* __restrict r1, int64_t len, T* z, int64_t stride) {
#pragma omp simd
  for (int64_t k = 0; k < len; ++k) {
    // A dY: rows [a, b], [a + c, b + d], [a - c, b - d], [-c, -d]; then each row [p, q] times
    // A^T: [p, p + q, p - q, -q].
    const T a = r0[2 * k], b = r0[2 * k + 1], c = r1[2 * k], d = r1[2 * k + 1];
    const T r[4][2] = {{a, b}, {a + c, b + d}, {a - c, b - d}, {-c, -d}};
    for (int i = 0; i < 4; ++i) {
      z[(4 * i + 0) * stride + k] = r[i][0];
      z[(4 * i + 1) * stride + k] = r[i][0] + r[i][1];
      z[(4 * i + 2) * stride + k] = r[i][0] - r[i][1];
      z[(4 * i + 3) * stride + k] = -r[i][1];
    }
  }
}

// dg = G^T m G (3x3 from the 4x4 m[e * stride + l]) for n <= kWB kernels side by side (the
// vector lanes), into g[l * 9 + 3*i + j] (each kernel row-major), in double, rounded once.
template <class T>
void weight_back_transform(const T* m, int64_t stride, int64_t n, T* g) {
  double t[3][4][kWB] = {};  // G^T m; G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1]
  for (int j = 0; j < 4; ++j) {
    const T *p0 = m + j * stride, *p1 = m + (4 + j) * stride, *p2 = m + (8 + j) * stride, *p3 = m + (12 + j) * stride;
#pragma omp simd
    for (int64_t l = 0; l < n; ++l) {
      const double m0 = p0[l], m1 = p1[l], m2 = p2[l], m3 = p3[l];
      t[0][j][l] = m0 + 0.5 * (m1 + m2);
      t[1][j][l] = 0.5 * (m1 - m2);
      t[2][j][l] = 0.5 * (m1 + m2) + m3;
    }
  }
  double r[9][kWB];
  for (int i = 0; i < 3; ++i)  // (G^T m) G
#pragma omp simd
    for (int64_t l = 0; l < kWB; ++l) {
      r[3 * i + 0][l] = t[i][0][l] + 0.5 * (t[i][1][l] + t[i][2][l]);
      r[3 * i + 1][l] = 0.5 * (t[i][1][l] - t[i][2][l]);
      r[3 * i + 2][l] = 0.5 * (t[i][1][l] + t[i][2][l]) + t[i][3][l];
    }
  for (int64_t l = 0; l < n; ++l)
    for (int k = 0; k < 9; ++k) g[l * 9 + k] = (T)r[k][l];
}

// How a call splits its tiles: tiles numbered across the batch (q = (n, ty, tx)), in chunks
// that keep the per-thread scratch near `budget` (kScratchBudget, larger for the weight
// gradient of wide layers) and give every thread a task (never below 16 tiles: narrower GEMMs
// run far below peak).
struct TilePlan {
  int64_t tw = 0, tiles_per_image = 0, tiles = 0;
  bool parallel = false;
  int64_t threads = 1, chunk = 0, chunks = 0;
  TilePlan(int64_t N, int64_t Ho, int64_t Wo, int64_t G, int64_t Cg, int64_t Og, int64_t budget) {
    tw = ceil_div(Wo, 2), tiles_per_image = ceil_div(Ho, 2) * tw, tiles = N * tiles_per_image;
    parallel = !in_parallel() && 2.0 * 16 * G * Og * Cg * (double)tiles > double(1 << 20);
    threads = parallel ? num_threads() : 1;
    chunk = std::clamp<int64_t>(budget / (16 * (Cg + Og)), 16, tiles);
    // Chunks per group: a multiple of ceil(threads / G), so the static schedule gives every
    // thread the same number of tasks; then chunks of equal length, rounded up to a multiple
    // of 16, the GEMM's register tile width (kernels/cpu/gemm_avx2.cpp: 21 tiles would pad
    // the last 16-wide sliver to 32, 85 to 96), never below 16 tiles.
    const int64_t per = ceil_div(threads, G);
    const int64_t n = ceil_div(ceil_div(tiles, chunk), per) * per;
    chunk = std::min(tiles, std::max<int64_t>(16, ceil_div(ceil_div(tiles, n), 16) * 16));
    chunks = ceil_div(tiles, chunk);
  }
};

}  // namespace

bool winograd_applies(const Conv2dParams& p, bool transposed) {
  if (p.kh != 3 || p.kw != 3 || p.sy != 1 || p.sx != 1) return false;
  if (p.py < 0 || p.px < 0 || p.py > 2 || p.px > 2) return false;
  if (transposed && (p.opy != 0 || p.opx != 0)) return false;
  if (p.groups < 1 || p.Cin % p.groups != 0 || p.Cout % p.groups != 0) return false;
  return p.Cin / p.groups >= kWinogradMinChannels && p.Cout / p.groups >= kWinogradMinChannels;
}

template <class T>
void conv2d_winograd(const Conv2dParams& p, const T* x, const T* w, T* y, bool transposed) {
  const int64_t N = p.N, C = p.Cin, H = p.H, W = p.W, O = p.Cout, G = p.groups;
  const int64_t Cg = C / G, Og = O / G;
  // The equivalent conv2d's padding (transposed: 2 - p) and output size.
  const int64_t py = transposed ? 2 - p.py : p.py, px = transposed ? 2 - p.px : p.px;
  const int64_t Ho = H + 2 * py - 2, Wo = W + 2 * px - 2;
  if (N * O * Ho * Wo <= 0) return;
  const TilePlan plan(N, Ho, Wo, G, Cg, Og, kScratchBudget);
  const int64_t tw = plan.tw, tiles_per_image = plan.tiles_per_image, tiles = plan.tiles;
  const int64_t chunk = plan.chunk, chunks = plan.chunks;

  // U [G][16][Og][Cg]: the transformed weights of each group.
  T* const U = thread_buffer<T>(kU, G * 16 * Og * Cg);  // fully written below
  parallel_for(G * Og, O * Cg > 64, [&](int64_t go0, int64_t go1) {
    for (int64_t go = go0; go < go1; ++go) {
      const int64_t g = go / Og, o = go % Og;
      for (int64_t c0 = 0; c0 < Cg; c0 += kWB) {  // kWB input channels at a time
        const int64_t n = std::min(kWB, Cg - c0);
        double k[9 * kWB] = {};
        for (int64_t l = 0; l < n; ++l) {
          const int64_t c = c0 + l;
          for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j)
              k[(3 * i + j) * kWB + l] = transposed ? (double)w[((g * Cg + c) * Og + o) * 9 + (2 - i) * 3 + (2 - j)]
                                                    : (double)w[((g * Og + o) * Cg + c) * 9 + i * 3 + j];
        }
        weight_transform(k, n, U + (g * 16 * Og + o) * Cg + c0, Og * Cg);
      }
    }
  });
  // f32 with more than one chunk of tiles (and U within kMaxPrepackedFloats: not the grouped
  // conv of a fused modulated conv with many wide groups): each U[g][e] packed once for the GEMM
  // (kernels/cpu/gemm.h PackedA) rather than once per chunk, which for wide layers at low
  // resolution (a few 16-tile chunks against 384 x 384 weights) cost as much as the
  // multiply-adds.
  // (Kept per calling thread and packed in place: no allocation once as large.)
  thread_local std::vector<PackedA> packed;
  const PackedA* Up = nullptr;
  if constexpr (std::is_same_v<T, float>)
    if (chunks > 1 && G * 16 * Og * Cg <= kMaxPrepackedFloats) {
      if ((int64_t)packed.size() < G * 16) packed.resize(G * 16);
      for (int64_t ge = 0; ge < G * 16; ++ge) gemm_pack_a(packed[ge], false, Og, Cg, U + ge * Og * Cg, Cg);
      Up = packed.data();
    }

  // Tasks (g, chunk), G * chunks of them, split in contiguous blocks over the threads.
  parallel_region(plan.threads, [&](int tid, int team) {
    T *const V = thread_buffer<T>(kV, 16 * Cg * chunk), *const M = thread_buffer<T>(kM, 16 * Og * chunk);
    RunScratch<T> scratch(chunk);
    T *tbuf = scratch.rows(), *zero = scratch.zero(), *out2 = scratch.edge();
    const int64_t tasks = G * chunks;
    for (int64_t task = tasks * tid / team; task < tasks * (tid + 1) / team; ++task) {
      const int64_t g = task / chunks, ck = task % chunks;
      {
        const int64_t q0 = ck * chunk, nq = std::min(chunk, tiles - q0);
        const std::vector<Run> runs = chunk_runs(q0, nq, tiles_per_image, tw, W, py, px, Ho, Wo);
        // V [16][Cg][nq]
        for (int64_t c = 0; c < Cg; ++c)
          for (const Run& r : runs)
            input_transform(x + (r.n * C + g * Cg + c) * H * W, H, W, r, zero, tbuf, V + c * nq + r.t, Cg * nq);
        // M[e] = U[g][e] @ V[e]: [Og, Cg] @ [Cg, nq]
        for (int e = 0; e < 16; ++e) {
          if constexpr (std::is_same_v<T, float>)
            if (Up) {
              gemm_prepacked(Up[g * 16 + e], false, nq, 1.f, V + e * Cg * nq, nq, 0.f, M + e * Og * nq, nq);
              continue;
            }
          gemm<T>(false, false, Og, nq, Cg, T(1), U + (g * 16 + e) * Og * Cg, Cg, V + e * Cg * nq, nq, T(0),
                  M + e * Og * nq, nq);
        }
        // y = A^T M A per (o, tile)
        for (int64_t o = 0; o < Og; ++o)
          for (const Run& r : runs) {
            T* row0 = y + ((r.n * O + g * Og + o) * Ho + 2 * r.ty) * Wo + 2 * r.tx0;
            if (r.inside) {
              output_transform(M + o * nq + r.t, Og * nq, r.len, row0, row0 + Wo);
              continue;
            }
            output_transform(M + o * nq + r.t, Og * nq, r.len, out2, out2 + 2 * r.len);
            const int64_t cols = std::min<int64_t>(2 * r.len, Wo - 2 * r.tx0);
            for (int64_t i = 0; i < 2 && 2 * r.ty + i < Ho; ++i)
              std::copy(out2 + i * 2 * r.len, out2 + i * 2 * r.len + cols, row0 + i * Wo);
          }
      }
    }
  });
}

template <class T>
void conv2d_weight_grad_winograd(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const int64_t N = p.N, C = p.Cin, H = p.H, W = p.W, O = p.Cout, G = p.groups;
  const int64_t Cg = C / G, Og = O / G, py = p.py, px = p.px;
  const int64_t Ho = H + 2 * py - 2, Wo = W + 2 * px - 2;
  std::fill(dw, dw + O * Cg * 9, T(0));
  if (N * Ho * Wo <= 0) return;
  // Each chunk adds its 16 GEMMs into the thread's dL/dU accumulator (16 Og Cg floats), so
  // C is read and written once per chunk: once that no longer fits in L2 (4 MiB at 256
  // channels), longer chunks amortize it (measured, 4 x 256 ch at 16x16, forward + backward:
  // 44 -> 38 ms with the scratch budget x4; at 128 channels a larger budget was slower).
  const TilePlan plan(N, Ho, Wo, G, Cg, Og, kScratchBudget * std::max<int64_t>(1, 16 * Og * Cg / kScratchBudget));
  const int64_t tw = plan.tw, tiles_per_image = plan.tiles_per_image, tiles = plan.tiles;
  const int64_t chunk = plan.chunk, chunks = plan.chunks, threads = plan.threads;
  // dL/dU [G][16][Og][Cg], summed over tiles: one accumulator per thread, added at the end in
  // thread order (so a run is bit-reproducible for a given thread count). A thread's tasks are
  // a contiguous run of (group, chunk), so it meets groups [first[tid], last[tid]], each in one
  // or more consecutive tasks: the first task of a group writes its blocks (GEMM beta 0) and
  // the next add to them. Nothing is zero-filled, and a thread's other blocks are never read.
  // (At 384 channels an accumulator is 9.4 MB: filling and summing whole ones cost more than
  // the GEMMs of a 4x4 layer.)
  const int64_t msize = G * 16 * Og * Cg, gsize = 16 * Og * Cg;
  std::vector<T*> accs(threads);
  std::vector<int64_t> first(threads, 0), last(threads, -1);

  parallel_region(threads, [&](int tid, int team) {
    const int64_t tasks = G * chunks, t0 = tasks * tid / team, t1 = tasks * (tid + 1) / team;
    if (t0 >= t1) return;  // no task: accs[tid] stays null
    T* const acc = accs[tid] = thread_buffer<T>(kAcc, msize);
    first[tid] = t0 / chunks, last[tid] = (t1 - 1) / chunks;
    T *const V = thread_buffer<T>(kV, 16 * Cg * chunk), *const Z = thread_buffer<T>(kM, 16 * Og * chunk);
    RunScratch<T> scratch(chunk);
    T *tbuf = scratch.rows(), *zero = scratch.zero(), *dy2 = scratch.edge();
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t g = task / chunks, ck = task % chunks;
      const T beta = task == t0 || ck == 0 ? T(0) : T(1);  // this thread's first task of group g
      {
        const int64_t q0 = ck * chunk, nq = std::min(chunk, tiles - q0);
        const std::vector<Run> runs = chunk_runs(q0, nq, tiles_per_image, tw, W, py, px, Ho, Wo);
        for (int64_t c = 0; c < Cg; ++c)  // V = B^T d B, as the forward
          for (const Run& r : runs)
            input_transform(x + (r.n * C + g * Cg + c) * H * W, H, W, r, zero, tbuf, V + c * nq + r.t, Cg * nq);
        for (int64_t o = 0; o < Og; ++o)  // Z = A dY A^T
          for (const Run& r : runs) {
            const T* row0 = dy + ((r.n * O + g * Og + o) * Ho + 2 * r.ty) * Wo + 2 * r.tx0;
            if (r.inside) {
              grad_transform(row0, row0 + Wo, r.len, Z + o * nq + r.t, Og * nq);
              continue;
            }
            const int64_t cols = std::min<int64_t>(2 * r.len, Wo - 2 * r.tx0);
            for (int64_t i = 0; i < 2; ++i) {
              T* d = dy2 + i * 2 * r.len;
              std::fill(d, d + 2 * r.len, T(0));
              if (2 * r.ty + i < Ho) std::copy(row0 + i * Wo, row0 + i * Wo + cols, d);
            }
            grad_transform(dy2, dy2 + 2 * r.len, r.len, Z + o * nq + r.t, Og * nq);
          }
        // dL/dU[e] += Z[e] @ V[e]^T: [Og, nq] @ [nq, Cg]
        for (int e = 0; e < 16; ++e)
          gemm<T>(false, true, Og, Cg, nq, T(1), Z + e * Og * nq, nq, V + e * Cg * nq, nq, beta,
                  acc + (g * 16 + e) * Og * Cg, Cg);
      }
    }
  });
  // Mw = the sum of the accumulators that hold each group, in thread order. (A null acc: a
  // thread without tasks, or one the team did not get while another thread held the pool.)
  T* const Mw = thread_buffer<T>(kSum, msize);
  parallel_for(msize, msize > (1 << 17), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0, end; i < i1; i = end) {  // one group's part of [i0, i1) at a time
      const int64_t g = i / gsize;
      end = std::min(i1, (g + 1) * gsize);
      bool any = false;
      for (size_t k = 0; k < accs.size(); ++k) {
        if (!accs[k] || g < first[k] || g > last[k]) continue;
        const T* a = accs[k];
        if (!any)
          std::copy(a + i, a + end, Mw + i);
        else
          for (int64_t j = i; j < end; ++j) Mw[j] += a[j];
        any = true;
      }
    }
  });

  // dw[g*Og + o, c] = G^T dL/dU[g][., o, c] G
  parallel_for(G * Og, O * Cg > 64, [&](int64_t go0, int64_t go1) {
    for (int64_t go = go0; go < go1; ++go) {
      const int64_t g = go / Og, o = go % Og;
      for (int64_t c0 = 0; c0 < Cg; c0 += kWB)  // kWB input channels at a time
        weight_back_transform(Mw + (g * 16 * Og + o) * Cg + c0, Og * Cg, std::min(kWB, Cg - c0),
                              dw + ((g * Og + o) * Cg + c0) * 9);
    }
  });
}

template void conv2d_winograd<float>(const Conv2dParams&, const float*, const float*, float*, bool);
template void conv2d_winograd<double>(const Conv2dParams&, const double*, const double*, double*, bool);
template void conv2d_weight_grad_winograd<float>(const Conv2dParams&, const float*, const float*, float*);
template void conv2d_weight_grad_winograd<double>(const Conv2dParams&, const double*, const double*, double*);

}  // namespace sg::kernels::cpu
