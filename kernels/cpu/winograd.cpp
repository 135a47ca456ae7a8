// Winograd F(m x m, 3x3), m = 4 or 2: see winograd.h.
#include "kernels/cpu/winograd.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "kernels/cpu/avx2.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/scratch.h"

namespace sg::kernels::cpu {

namespace {

// The transforms below are inlined where they are called, so that each caller compiles them
// with its own target options (the narrow copies, further down).
#define SG_INLINE __attribute__((always_inline)) inline

// Scratch V and M together near this many elements per thread.
constexpr int64_t kScratchBudget = int64_t(1) << 18;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The 1-D transforms of F(m, 3), on a = m + 2 points; each 2-D transform below applies one to
// the rows of a tile, then to its columns (winograd.h has the matrices).
//   input:       v = B^T d    (a -> a)      output:      y = A^T s  (a -> m)
//   grad:        z = A dy     (m -> a)      weight:      u = G g    (3 -> a)
//   weight_back: g = G^T s    (a -> 3)
// The loops that call them take small arrays in and out, and are marked `GCC ivdep`, not
// `omp simd`: omp simd gives each lane its own copy of such arrays, which GCC 12 then fails to
// vectorize (-fopt-info-vec: "data ref analysis failed"); without it the arrays become
// registers and every loop below vectorizes.
template <int m>
struct F;

template <>
struct F<2> {
  static constexpr int a = 4;
  template <class T>
  static void input(const T d[4], T v[4]) {
    v[0] = d[0] - d[2], v[1] = d[1] + d[2], v[2] = d[2] - d[1], v[3] = d[1] - d[3];
  }
  template <class T>
  static void output(const T s[4], T y[2]) {
    y[0] = s[0] + s[1] + s[2], y[1] = s[1] - s[2] - s[3];
  }
  template <class T>
  static void grad(const T dy[2], T z[4]) {
    z[0] = dy[0], z[1] = dy[0] + dy[1], z[2] = dy[0] - dy[1], z[3] = -dy[1];
  }
  static void weight(const double g[3], double u[4]) {
    u[0] = g[0], u[1] = 0.5 * (g[0] + g[1] + g[2]), u[2] = 0.5 * (g[0] - g[1] + g[2]), u[3] = g[2];
  }
  static void weight_back(const double s[4], double g[3]) {
    g[0] = s[0] + 0.5 * (s[1] + s[2]), g[1] = 0.5 * (s[1] - s[2]), g[2] = 0.5 * (s[1] + s[2]) + s[3];
  }
};

// F(4, 3) on the points 0, 1, -1, 2, -1/2 and infinity (winograd.h: why not 0, +-1, +-2).
template <>
struct F<4> {
  static constexpr int a = 6;
  template <class T>
  static void input(const T d[6], T v[6]) {
    const T h = T(0.5);
    v[0] = d[0] + d[4] + T(1.5) * (d[1] - d[3]) - T(2) * d[2];
    v[1] = (d[4] - d[1]) - T(2.5) * d[2] - h * d[3];
    v[2] = (d[4] + d[1]) + h * d[2] - T(2.5) * d[3];
    v[3] = (d[4] - d[2]) + h * (d[3] - d[1]);
    v[4] = (d[4] - d[2]) + T(2) * (d[1] - d[3]);
    v[5] = d[1] + d[5] + T(1.5) * (d[2] - d[4]) - T(2) * d[3];
  }
  template <class T>
  static void output(const T s[6], T y[4]) {
    const T p12 = s[1] + s[2], m12 = s[1] - s[2];
    y[0] = p12 + s[0] + s[3] + s[4];
    y[1] = m12 + T(2) * s[3] - T(0.5) * s[4];
    y[2] = p12 + T(4) * s[3] + T(0.25) * s[4];
    y[3] = m12 + T(8) * s[3] - T(0.125) * s[4] + s[5];
  }
  template <class T>
  static void grad(const T dy[4], T z[6]) {
    const T p02 = dy[0] + dy[2], p13 = dy[1] + dy[3];
    z[0] = dy[0], z[1] = p02 + p13, z[2] = p02 - p13;
    z[3] = dy[0] + T(2) * dy[1] + T(4) * dy[2] + T(8) * dy[3];
    z[4] = dy[0] - T(0.5) * dy[1] + T(0.25) * dy[2] - T(0.125) * dy[3];
    z[5] = dy[3];
  }
  // G = diag(1 / q) G' with G' integer (winograd.h's G times q = 1, -3, 3, 15, 15, 1): U = G g
  // G^T is (G' g G'^T)[i][j] / (q_i q_j), the sums exact products of powers of two and g, then
  // one multiplication by the rounded 1 / (q_i q_j) per point. (Dividing by 3 and 15 in each of
  // the 9 one-dimensional transforms per kernel made the weight transform a quarter of a
  // 64-channel 8x8 forward: division-bound, perf.)
  static void weight_int(const double g[3], double u[6]) {
    u[0] = g[0], u[1] = g[0] + g[1] + g[2], u[2] = g[0] - g[1] + g[2];
    u[3] = g[0] + 2 * g[1] + 4 * g[2], u[4] = 8 * g[1] - 16 * g[0] - 4 * g[2], u[5] = g[2];
  }
  static constexpr double kQ[6] = {1, -3, 3, 15, 15, 1};
  // The weight gradient's G^T s G as G'^T (s_ij / (q_i q_j)) G': one product per point, then
  // G'^T's integer rows (for the same reason as weight_int).
  static void weight_back_int(const double s[6], double g[3]) {
    g[0] = s[0] + s[1] + s[2] + s[3] - 16 * s[4];
    g[1] = s[1] - s[2] + 2 * s[3] + 8 * s[4];
    g[2] = s[1] + s[2] + 4 * s[3] - 4 * s[4] + s[5];
  }
};

// U = G g G^T for `lanes` 3x3 kernels side by side (kernel l's tap (i, j) at g[3 i + j][l], in
// double), into dst(e)[l] for e = a i + j (dst(e) a T* for each e); computed in double and
// rounded once. The lanes are whatever the caller packs: the kernels of kWB input channels of
// one output, or a sliver of the GEMM's packed layout (up to kPackMR kWB of them).
constexpr int64_t kWB = 16;
template <int m, class T>
void weight_transform_range(const double (*g)[kPackMR * kWB], int64_t l0, int64_t lanes, T* const* out) {
  constexpr int a = F<m>::a;
#pragma GCC ivdep
  for (int64_t l = l0; l < lanes; ++l) {
    double t[a][3];  // G g: column j of g becomes column j of t
    for (int j = 0; j < 3; ++j) {
      const double col[3] = {g[0 * 3 + j][l], g[1 * 3 + j][l], g[2 * 3 + j][l]};
      double r[a];
      if constexpr (m == 4)
        F<m>::weight_int(col, r);
      else
        F<m>::weight(col, r);
      for (int i = 0; i < a; ++i) t[i][j] = r[i];
    }
    for (int i = 0; i < a; ++i) {  // (G g) G^T: row i of t becomes row i of U
      double r[a];
      if constexpr (m == 4) {
        F<m>::weight_int(t[i], r);
        for (int j = 0; j < a; ++j) out[a * i + j][l] = (T)(r[j] * (1.0 / (F<m>::kQ[i] * F<m>::kQ[j])));
      } else {
        F<m>::weight(t[i], r);
        for (int j = 0; j < a; ++j) out[a * i + j][l] = (T)r[j];
      }
    }
  }
}

#if defined(__x86_64__) || defined(__i386__)
// F(4x4)'s weight_transform_range for lanes [0, 8 floor(lanes / 8)), 8 kernels per register:
// its operations in its order (the products by 2, 4, 8 and 16 are exact, fused or not), so the
// same bits. GCC's code for the loop above kept 4 lanes per register and spilled t.
// F<4>::weight_int on 8 lanes (a function, not a lambda: clang does not give a lambda its
// enclosing function's target).
SG_AVX512 inline void weight_int4_avx512(__m512d g0, __m512d g1, __m512d g2, __m512d* u) {
  const __m512d two = _mm512_set1_pd(2), four = _mm512_set1_pd(4), eight = _mm512_set1_pd(8);
  const __m512d sixteen = _mm512_set1_pd(16);
  u[0] = g0, u[1] = _mm512_add_pd(_mm512_add_pd(g0, g1), g2), u[2] = _mm512_add_pd(_mm512_sub_pd(g0, g1), g2);
  u[3] = _mm512_add_pd(_mm512_add_pd(g0, _mm512_mul_pd(two, g1)), _mm512_mul_pd(four, g2));
  u[4] = _mm512_sub_pd(_mm512_sub_pd(_mm512_mul_pd(eight, g1), _mm512_mul_pd(sixteen, g0)), _mm512_mul_pd(four, g2));
  u[5] = g2;
}
SG_AVX512 int64_t weight_transform4_avx512(const double (*g)[kPackMR * kWB], int64_t lanes, float* const* out) {
  const int64_t full = lanes / 8 * 8;
  for (int64_t l = 0; l < full; l += 8) {
    __m512d t[6][3];
    for (int j = 0; j < 3; ++j) {
      __m512d u[6];
      weight_int4_avx512(_mm512_loadu_pd(g[j] + l), _mm512_loadu_pd(g[3 + j] + l), _mm512_loadu_pd(g[6 + j] + l), u);
      for (int i = 0; i < 6; ++i) t[i][j] = u[i];
    }
    for (int i = 0; i < 6; ++i) {
      __m512d u[6];
      weight_int4_avx512(t[i][0], t[i][1], t[i][2], u);
      for (int j = 0; j < 6; ++j) {
        const __m512d c = _mm512_set1_pd(1.0 / (F<4>::kQ[i] * F<4>::kQ[j]));
        _mm256_storeu_ps(out[6 * i + j] + l, _mm512_cvtpd_ps(_mm512_mul_pd(u[j], c)));
      }
    }
  }
  return full;
}
#endif

// U = G g G^T for `lanes` 3x3 kernels side by side (as weight_transform_range) into dst(e)[l].
template <int m, class T, class Dst>
void weight_transform_lanes(const double (*g)[kPackMR * kWB], int64_t lanes, Dst dst) {
  constexpr int a = F<m>::a;
  T* out[a * a];
  for (int e = 0; e < a * a; ++e) out[e] = dst(e);
  int64_t done = 0;
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (m == 4 && std::is_same_v<T, float>)
    if (gemm_avx512_enabled()) done = weight_transform4_avx512(g, lanes, out);
#endif
  weight_transform_range<m, T>(g, done, lanes, out);
}

// k[t][l R + r] = kernel (r, l)'s tap t (flip: tap 8 - t) in double, for the rows r < rows
// and channels l < n, kernel (r, l) being the 9 floats at base + r rs + l ls: the lanes
// weight_transform_lanes reads. With AVX2 and R = kPackMR (the packed layout's slivers), the
// 6 rows of one channel go through an 8x8 register transpose (taps 0-7; tap 8 by itself), where
// the scalar gather took about 60% of the weight transform (perf, seed32's G forward).
template <class T>
void gather_kernels_scalar(const T* base, int64_t rs, int64_t ls, int64_t rows, int64_t R, int64_t n, bool flip,
                           double (*k)[kPackMR * kWB]) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t l = 0; l < n; ++l)
      for (int t = 0; t < 9; ++t) k[flip ? 8 - t : t][l * R + r] = (double)base[r * rs + l * ls + t];
}

#if defined(__x86_64__) || defined(__i386__)
// The transposed conv (flip) reads its sliver's 6 kernels of each channel (216 contiguous bytes)
// from rows 36 Og bytes apart: a new page each, which the hardware prefetchers do not follow, so
// the lines kWB channels ahead are prefetched (a hint: never a fault, even past w's end).
// Measured (seed32's 384-channel 4x4 data gradient, engine op, 2 threads, a 64 MB pass before
// each call, alternating): batch 16 2.80-3.20 -> 2.45-2.60 ms, batch 32 4.06-4.22 -> 3.57-3.70;
// warm 1.00-1.07x. Prefetching the forward's rows (sequential streams) gained nothing
// (bench/results/cpu_conv_pointwise_implicit_2026-12-03.txt).
SG_AVX2 void gather_kernels6_avx2(const float* base, int64_t rs, int64_t ls, int64_t rows, int64_t n, bool flip,
                                  double (*k)[kPackMR * kWB]) {
  static_assert(kPackMR == 6, "6 of the 8 transposed lanes");
  for (int64_t l = 0; l < n; ++l) {
    if (flip) {  // the transposed conv's kernels kWB channels on: a new page each (see above)
      const uintptr_t ahead = reinterpret_cast<uintptr_t>(base + l * ls) + sizeof(float) * kWB * ls;
      for (int q = 0; q < 4; ++q) _mm_prefetch(reinterpret_cast<const char*>(ahead + 64 * q), _MM_HINT_T0);
    }
    __m256 v[8];
    for (int r = 0; r < 8; ++r) v[r] = r < rows ? _mm256_loadu_ps(base + r * rs + l * ls) : _mm256_setzero_ps();
    transpose8x8(v);  // v[t] = tap t of rows 0-7
    for (int t = 0; t < 8; ++t) {
      double* d = k[flip ? 8 - t : t] + l * kPackMR;
      _mm256_storeu_pd(d, _mm256_cvtps_pd(_mm256_castps256_ps128(v[t])));
      _mm_storeu_pd(d + 4, _mm_cvtps_pd(_mm256_extractf128_ps(v[t], 1)));
    }
    double* d8 = k[flip ? 0 : 8] + l * kPackMR;
    for (int r = 0; r < kPackMR; ++r) d8[r] = r < rows ? (double)base[r * rs + l * ls + 8] : 0.0;
  }
}
#endif

template <class T>
void gather_kernels(const T* base, int64_t rs, int64_t ls, int64_t rows, int64_t R, int64_t n, bool flip,
                    double (*k)[kPackMR * kWB]) {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (std::is_same_v<T, float>)
    if (R == kPackMR && gemm_avx2_available()) return gather_kernels6_avx2(base, rs, ls, rows, n, flip, k);
#endif
  gather_kernels_scalar(base, rs, ls, rows, R, n, flip, k);
}

// One run of a chunk's tiles: tiles tx0 .. tx0 + len - 1 of tile row ty of image n, at offset
// t in the chunk. Its patches cover input rows y0 .. y0 + a - 1 and columns x0 .. x0 + w - 1
// (w = m len + 2), of which [lo, hi) lie inside the image (zero padding outside). Its outputs
// are rows m ty .. m ty + m - 1 and columns m tx0 .. m (tx0 + len) - 1; `inside`: all of them
// exist (not cut by an Ho or Wo that m does not divide).
struct Run {
  int64_t n, ty, tx0, len, t, y0, x0, lo, hi;
  bool inside;
};

// The runs of the nq tiles from q0: a tile row's tiles in one run, split at the chunk's ends.
std::vector<Run> chunk_runs(int m, int64_t q0, int64_t nq, int64_t tiles_per_image, int64_t tw, int64_t W, int64_t py,
                            int64_t px, int64_t Ho, int64_t Wo) {
  std::vector<Run> runs;
  for (int64_t t = 0; t < nq;) {
    const int64_t q = q0 + t, n = q / tiles_per_image, r = q % tiles_per_image;
    const int64_t ty = r / tw, tx0 = r % tw, len = std::min(tw - tx0, nq - t);
    const int64_t x0 = m * tx0 - px, w = m * len + 2;
    const int64_t lo = std::clamp<int64_t>(-x0, 0, w), hi = std::clamp<int64_t>(W - x0, lo, w);
    runs.push_back({n, ty, tx0, len, t, m * ty - py, x0, lo, hi, m * ty + m <= Ho && m * (tx0 + len) <= Wo});
    t += len;
  }
  return runs;
}

// Per-thread buffers that only grow, one per use (kernels/cpu/scratch.h): a convolution
// called again with the same shapes allocates nothing.
enum Slot { kU, kV, kM, kRows, kAcc, kSum, kPlane, kSlots };
static_assert(kSlots <= kScratchSlots);
struct WinogradScratch;
template <class T>
T* thread_buffer(Slot slot, int64_t n) {
  return thread_scratch<WinogradScratch, T>(slot, n);
}

// A thread's scratch for the transforms of runs of at most `chunk` tiles (L = chunk + 1):
//   rows  [a][m L]   input_transform's t = B^T d, a run's w = m len + 2 <= m L columns;
//   zero  [m L]      zeros, the rows above and below the image;
//   phase [a a + m m][L]  a row split into its m phases (column m k + p at phase p, index
//                    k), and the passes of the output ([m][a][len]) and gradient ([m][m][len]
//                    then [a][m][len]) transforms;
//   edge  [m][m chunk]  a run's output rows (or dY rows) where Ho or Wo cuts its blocks.
// Every inner loop of the transforms runs over the tiles k of a run with unit-stride loads and
// stores (or m-element groups, which the compiler vectorizes as permutes), and few streams.
template <int m, class T>
struct RunScratch {
  static constexpr int a = F<m>::a;
  explicit RunScratch(int64_t chunk)
      : L(chunk + 1), buf(thread_buffer<T>(kRows, (a + 1) * m * L + (a * a + m * m) * L + m * m * chunk)) {
    std::fill(zero(), zero() + m * L, T(0));
  }
  T* rows() { return buf; }
  T* zero() { return buf + a * m * L; }
  T* phase() { return buf + (a + 1) * m * L; }
  T* edge() { return phase() + (a * a + m * m) * L; }
  int64_t L;
  T* buf;
};

// V = B^T d B for the tiles of run r from one channel plane img [H, W], into v[e * stride + k],
// e = a i + j. The rows first, t = B^T d (row i of t combines input rows y0 .. y0 + a - 1
// across all w columns: contiguous); then each row of t is split into its m phases, so that
// tile k's columns m k .. m k + a - 1 are phase[p][k] and phase[p][k + 1] (contiguous in k);
// then the columns, (B^T d) B. No per-tile copies, no bounds checks inside the loops. F(2x2)
// reads its columns (stride 2) straight from t; F(4x4) doing the same (two groups of stride 4,
// one with gaps) measured 1.2-1.4x slower at 32x32 than the phase split.
template <int m, class T>
SG_INLINE void input_transform(const T* img, int64_t H, int64_t W, const Run& r, RunScratch<m, T>& sc, T* v,
                               int64_t stride) {
  constexpr int a = F<m>::a;
  const int64_t len = r.len, L = len + 1, w = m * L, lo = r.lo, hi = r.hi;
  T* __restrict t = sc.rows();
  const T* s[a];  // row i of the patch, columns lo .. hi - 1 (zero rows outside the image)
  for (int i = 0; i < a; ++i) {
    const int64_t yy = r.y0 + i;
    s[i] = (yy < 0 || yy >= H) ? sc.zero() : img + yy * W + r.x0 + lo;
  }
  for (int i = 0; i < a; ++i)
    std::fill(t + i * w, t + i * w + lo, T(0)), std::fill(t + i * w + hi, t + (i + 1) * w, T(0));
#pragma GCC ivdep
  for (int64_t x = 0; x < hi - lo; ++x) {  // t = B^T d
    T d[a], u[a];
    for (int i = 0; i < a; ++i) d[i] = s[i][x];
    F<m>::input(d, u);
    for (int i = 0; i < a; ++i) t[i * w + lo + x] = u[i];
  }
  T* __restrict ph = sc.phase();
  for (int i = 0; i < a; ++i) {
    const T* __restrict q = t + i * w;
    T* __restrict vi = v + a * i * stride;
    if constexpr (m == 2) {  // (B^T d) B straight from t: reads of stride 2 vectorize
#pragma GCC ivdep
      for (int64_t k = 0; k < len; ++k) {
        T c[a], u[a];
        for (int j = 0; j < a; ++j) c[j] = q[m * k + j];
        F<m>::input(c, u);
        for (int j = 0; j < a; ++j) vi[j * stride + k] = u[j];
      }
      continue;
    }
#pragma GCC ivdep
    for (int64_t k = 0; k < L; ++k)  // phases of row i
      for (int p = 0; p < m; ++p) ph[p * L + k] = q[m * k + p];
#pragma GCC ivdep
    for (int64_t k = 0; k < len; ++k) {  // (B^T d) B: column m k + j is phase j % m at k + j / m
      T c[a], u[a];
      for (int j = 0; j < a; ++j) c[j] = ph[(j % m) * L + k + j / m];
      F<m>::input(c, u);
      for (int j = 0; j < a; ++j) vi[j * stride + k] = u[j];
    }
  }
}

// Small planes: at most kPlaneTiles tiles per tile row (images up to 16 wide in F(2x2), 32 in
// F(4x4): every layer of seed32 and small), where runs of 1-8 tiles leave the loops above
// mostly overhead (at 4x4, 64 channels: input transform 31%, its memsets 7%, GEMM 25% of the
// samples, perf). The input transform runs across kCL channels instead, the vector lanes. For
// each image of the chunk and block of kCL channels, the block is copied channel-last into a
// zero-padded plane xt [Hp][Wp][kCL] (padded row R, column X hold image row R - py, column
// X - px), then each tile's V = B^T d B is computed for the kCL channels at once, with the same
// operations in the same order as input_transform (the same numbers to the bit), and written
// to vt[e][t][c] ([E][nq][Cg]: the channels contiguous; the GEMMs read V transposed). F(4x4)
// goes through t[a][a][kCL] in two passes (in one, its 36 values per lane spilled: 0.64-0.73x).
// The output and gradient transforms of such planes run over a whole chunk's tiles at once
// (`planes` in forward and weight_grad). Measured (1 thread, side by side;
// bench/results/winograd_planes_2026-12-02.txt): F(2x2) 4x4 convs 1.4-2.1x, 8x8 1.4-1.5x,
// 16x16 1.1-1.2x; then the chunk-wide output and gradient transforms 1.1-1.3x on most F(4x4)
// passes and up to 1.85x on 4x4 weight gradients; then F(4x4) inputs this way, 1.1-2x more.
constexpr int64_t kPlaneTiles = 8;
bool use_planes(int64_t tw) { return tw <= kPlaneTiles; }
constexpr int64_t kCL = 16;

// The plane xt [Hp][Wp][kCL] outside the image's rows x cols block at (py, px): zeros.
template <class T>
void zero_plane_border(T* xt, int64_t Hp, int64_t Wp, int64_t py, int64_t px, int64_t rows, int64_t cols) {
  for (int64_t R = 0; R < Hp; ++R) {
    T* row = xt + R * Wp * kCL;
    if (R < py || R >= py + rows) {
      std::fill(row, row + Wp * kCL, T(0));
      continue;
    }
    std::fill(row, row + px * kCL, T(0));
    std::fill(row + (px + cols) * kCL, row + Wp * kCL, T(0));
  }
}

// dst[(y Wp + x) kCL + l] = src[l hw + y W + x] for the L channels l (hw apart), rows y and
// columns x of each: kCL channel planes to one channel-last block; given `scale`, times
// scale[l] (the modulated conv's styles: the same product as scaling x first, bit for bit).
// With AVX2, 16 channels go through 8x8 register transposes, 8 columns at a time (masked loads
// at a row's end), where the scalar copy's strided stores took a third of the input transform
// (perf, seed32's G).
template <class T>
void copy_channel_last_scalar(const T* src, int64_t hw, int64_t W, int64_t L, int64_t rows, int64_t cols, T* dst,
                              int64_t Wp, const T* scale) {
  for (int64_t l = 0; l < L; ++l)
    for (int64_t y = 0; y < rows; ++y)
      for (int64_t x = 0; x < cols; ++x)
        dst[(y * Wp + x) * kCL + l] = scale ? src[l * hw + y * W + x] * scale[l] : src[l * hw + y * W + x];
}

#if defined(__x86_64__) || defined(__i386__)
SG_AVX2 void copy_channel_last16_avx2(const float* src, int64_t hw, int64_t W, int64_t rows, int64_t cols, float* dst,
                                      int64_t Wp, const float* scale) {
  static_assert(kCL == 16, "two 8-channel halves");
  const __m256 s0 = scale ? _mm256_loadu_ps(scale) : _mm256_set1_ps(1.f);
  const __m256 s1 = scale ? _mm256_loadu_ps(scale + 8) : _mm256_set1_ps(1.f);
  for (int64_t y = 0; y < rows; ++y)
    for (int64_t x0 = 0; x0 < cols; x0 += 8) {
      const int64_t n = std::min<int64_t>(8, cols - x0);
      const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      for (int h = 0; h < 2; ++h) {
        __m256 r[8];
        const float* s = src + 8 * h * hw + y * W + x0;
        for (int l = 0; l < 8; ++l) r[l] = n == 8 ? _mm256_loadu_ps(s + l * hw) : _mm256_maskload_ps(s + l * hw, mask);
        transpose8x8(r);  // r[k] = channels 8h .. 8h + 7 at column x0 + k
        if (scale)
          for (int64_t k = 0; k < n; ++k) r[k] = _mm256_mul_ps(r[k], h ? s1 : s0);
        for (int64_t k = 0; k < n; ++k) _mm256_storeu_ps(dst + (y * Wp + x0 + k) * kCL + 8 * h, r[k]);
      }
    }
}
#endif

template <class T>
void copy_channel_last(const T* src, int64_t hw, int64_t W, int64_t L, int64_t rows, int64_t cols, T* dst, int64_t Wp,
                       const T* scale) {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (std::is_same_v<T, float>)
    if (L == kCL && gemm_avx2_available()) return copy_channel_last16_avx2(src, hw, W, rows, cols, dst, Wp, scale);
#endif
  copy_channel_last_scalar(src, hw, W, L, rows, cols, dst, Wp, scale);
}

#if defined(__x86_64__) || defined(__i386__)
// F(2x2)'s V = B^T d B for tiles r0 .. r1 - 1 of a plane xt [Hp][Wp][16] (tile r's patch at
// rows 2 (r / tw) .. + 3, columns 2 (r % tw) .. + 3), 16 channels in one register: tile r0's
// point e at out + e es, the tiles Cg apart. The operations of input_transform_planes' loop
// below in the same order (the same bits). There GCC kept 256-bit vectors and reloaded the
// sixteen output pointers from the stack: 16% of a 64-channel 4x4 forward on one thread (perf).
SG_AVX512 void input_tiles_f2_avx512(const float* xt, int64_t Wp, int64_t tw, int64_t r0, int64_t r1, float* out,
                                     int64_t Cg, int64_t es) {
  static_assert(kCL == 16, "one zmm register of channels");
  for (int64_t r = r0; r < r1; ++r, out += Cg) {
    const float* d0 = xt + (2 * (r / tw) * Wp + 2 * (r % tw)) * kCL;
    __m512 t[4][4];  // B^T d: column j of the patch, transformed
    for (int j = 0; j < 4; ++j) {
      const __m512 c0 = _mm512_loadu_ps(d0 + j * kCL), c1 = _mm512_loadu_ps(d0 + (Wp + j) * kCL);
      const __m512 c2 = _mm512_loadu_ps(d0 + (2 * Wp + j) * kCL), c3 = _mm512_loadu_ps(d0 + (3 * Wp + j) * kCL);
      t[0][j] = _mm512_sub_ps(c0, c2), t[1][j] = _mm512_add_ps(c1, c2);
      t[2][j] = _mm512_sub_ps(c2, c1), t[3][j] = _mm512_sub_ps(c1, c3);
    }
    for (int i = 0; i < 4; ++i) {  // (B^T d) B
      float* o = out + 4 * i * es;
      _mm512_storeu_ps(o, _mm512_sub_ps(t[i][0], t[i][2]));
      _mm512_storeu_ps(o + es, _mm512_add_ps(t[i][1], t[i][2]));
      _mm512_storeu_ps(o + 2 * es, _mm512_sub_ps(t[i][2], t[i][1]));
      _mm512_storeu_ps(o + 3 * es, _mm512_sub_ps(t[i][1], t[i][3]));
    }
  }
}
#endif

// x_scale: null, or [N, C] factors of x's channels (the modulated conv's styles), applied in the copy.
template <int m, class T>
void input_transform_planes(const T* x, int64_t C, int64_t H, int64_t W, int64_t c_base, int64_t Cg, int64_t q0,
                            int64_t nq, int64_t tiles_per_image, int64_t tw, int64_t py, int64_t px, T* xt, T* vt,
                            const T* x_scale) {
  constexpr int a = F<m>::a;
  const int64_t th = tiles_per_image / tw, Hp = m * th + 2, Wp = m * tw + 2;
  const int64_t rows = std::min(H, Hp - py), cols = std::min(W, Wp - px);  // the image's part that tiles read
  for (int64_t n = q0 / tiles_per_image; n * tiles_per_image < q0 + nq; ++n) {
    const int64_t first = n * tiles_per_image;  // this image's tiles in the chunk: r0 .. r1 - 1
    const int64_t r0 = std::max(q0, first) - first, r1 = std::min(q0 + nq, first + tiles_per_image) - first;
    for (int64_t c0 = 0; c0 < Cg; c0 += kCL) {
      const int64_t L = std::min(kCL, Cg - c0);
      const T* img = x + (n * C + c_base + c0) * H * W;  // channel l at img + l H W
      if (L == kCL)  // every lane is copied: only the padding around the image needs zeros
        zero_plane_border(xt, Hp, Wp, py, px, rows, cols);
      else
        std::fill(xt, xt + Hp * Wp * kCL, T(0));
      copy_channel_last(img, H * W, W, L, rows, cols, xt + (py * Wp + px) * kCL, Wp,
                        x_scale ? x_scale + n * C + c_base + c0 : nullptr);
#if defined(__x86_64__) || defined(__i386__)
      if constexpr (m == 2 && std::is_same_v<T, float>)
        if (L == kCL && gemm_avx512_enabled()) {
          input_tiles_f2_avx512(xt, Wp, tw, r0, r1, vt + (first + r0 - q0) * Cg + c0, Cg, nq * Cg);
          continue;
        }
#endif
      for (int64_t r = r0; r < r1; ++r) {
        const T* __restrict d0 = xt + (m * (r / tw) * Wp + m * (r % tw)) * kCL;
        T* __restrict out = vt + (first + r - q0) * Cg + c0;
        const int64_t es = nq * Cg;  // vt's e stride
        if constexpr (m == 4) {      // two passes through t[a][a][kCL]: 36 values per lane spill
          T t[a][a][kCL];
          for (int j = 0; j < a; ++j)  // B^T d: column j of the patch, transformed
#pragma GCC ivdep
            for (int64_t l = 0; l < L; ++l) {
              T col[a], u[a];
              for (int i = 0; i < a; ++i) col[i] = d0[(i * Wp + j) * kCL + l];
              F<m>::input(col, u);
              for (int i = 0; i < a; ++i) t[i][j][l] = u[i];
            }
          for (int i = 0; i < a; ++i)  // (B^T d) B
#pragma GCC ivdep
            for (int64_t l = 0; l < L; ++l) {
              T row[a], u[a];
              for (int j = 0; j < a; ++j) row[j] = t[i][j][l];
              F<m>::input(row, u);
              for (int j = 0; j < a; ++j) out[(a * i + j) * es + l] = u[j];
            }
          continue;
        }
#pragma GCC ivdep
        for (int64_t l = 0; l < L; ++l) {
          T t[a][a];  // B^T d: column j of the patch, transformed
          for (int j = 0; j < a; ++j) {
            T col[a], u[a];
            for (int i = 0; i < a; ++i) col[i] = d0[(i * Wp + j) * kCL + l];
            F<m>::input(col, u);
            for (int i = 0; i < a; ++i) t[i][j] = u[i];
          }
          for (int i = 0; i < a; ++i) {  // (B^T d) B
            T u[a];
            F<m>::input(t[i], u);
            for (int j = 0; j < a; ++j) out[(a * i + j) * es + l] = u[j];
          }
        }
      }
    }
  }
}

// y = A^T s A for the len tiles of a run, s[e * stride + k]: tile k's m x m block goes to
// columns m k .. m k + m - 1 of the output rows y[0 .. m - 1]. First A^T s, one column j at a
// time into sc.phase() [m][a][len], then each row times A.
template <int m, class T>
SG_INLINE void output_transform(const T* s, int64_t stride, int64_t len, T* const* y, RunScratch<m, T>& sc) {
  constexpr int a = F<m>::a;
  if constexpr (m == 2) {  // one pass: 16 input streams fit the registers
#pragma GCC ivdep
    for (int64_t k = 0; k < len; ++k) {
      T c[m][a];
      for (int j = 0; j < a; ++j) {
        T col[a], r[m];
        for (int i = 0; i < a; ++i) col[i] = s[(a * i + j) * stride + k];
        F<m>::output(col, r);
        for (int i = 0; i < m; ++i) c[i][j] = r[i];
      }
      for (int i = 0; i < m; ++i) {
        T r[m];
        F<m>::output(c[i], r);
        for (int j = 0; j < m; ++j) y[i][m * k + j] = r[j];
      }
    }
    return;
  }
  T* __restrict c = sc.phase();
  for (int j = 0; j < a; ++j)
#pragma GCC ivdep
    for (int64_t k = 0; k < len; ++k) {
      T col[a], r[m];
      for (int i = 0; i < a; ++i) col[i] = s[(a * i + j) * stride + k];
      F<m>::output(col, r);
      for (int i = 0; i < m; ++i) c[(i * a + j) * len + k] = r[i];
    }
  for (int i = 0; i < m; ++i) {
    T* __restrict yi = y[i];
#pragma GCC ivdep
    for (int64_t k = 0; k < len; ++k) {
      T row[a], r[m];
      for (int j = 0; j < a; ++j) row[j] = c[(i * a + j) * len + k];
      F<m>::output(row, r);
      for (int j = 0; j < m; ++j) yi[m * k + j] = r[j];
    }
  }
}

// Z = A dY A^T (a x a from the m x m block dY) for the len tiles of a run: tile k's dY is
// columns m k .. m k + m - 1 of the rows dy[0 .. m - 1]; z[e * stride + k]. dY's rows are
// split into phases first (dY[i][j] of tile k at ph[(i m + j) len + k]), then A dY one column
// j at a time, then each row times A^T.
template <int m, class T>
SG_INLINE void grad_transform(const T* const* dy, int64_t len, T* z, int64_t stride, RunScratch<m, T>& sc) {
  constexpr int a = F<m>::a;
  if constexpr (m == 2) {  // one pass: 16 output streams fit the registers
#pragma GCC ivdep
    for (int64_t k = 0; k < len; ++k) {
      T c[a][m];
      for (int j = 0; j < m; ++j) {
        T col[m], r[a];
        for (int i = 0; i < m; ++i) col[i] = dy[i][m * k + j];
        F<m>::grad(col, r);
        for (int i = 0; i < a; ++i) c[i][j] = r[i];
      }
      for (int i = 0; i < a; ++i) {
        T r[a];
        F<m>::grad(c[i], r);
        for (int j = 0; j < a; ++j) z[(a * i + j) * stride + k] = r[j];
      }
    }
    return;
  }
  T* __restrict ph = sc.phase();
  T* __restrict c = ph + m * m * len;  // A dY: [a][m][len]
  for (int i = 0; i < m; ++i) {
    const T* __restrict q = dy[i];
#pragma GCC ivdep
    for (int64_t k = 0; k < len; ++k)
      for (int j = 0; j < m; ++j) ph[(i * m + j) * len + k] = q[m * k + j];
  }
  for (int j = 0; j < m; ++j)
#pragma GCC ivdep
    for (int64_t k = 0; k < len; ++k) {
      T col[m], r[a];
      for (int i = 0; i < m; ++i) col[i] = ph[(i * m + j) * len + k];
      F<m>::grad(col, r);
      for (int e = 0; e < a; ++e) c[(e * m + j) * len + k] = r[e];
    }
  for (int e = 0; e < a; ++e) {
    T* __restrict ze = z + a * e * stride;
#pragma GCC ivdep
    for (int64_t k = 0; k < len; ++k) {
      T row[m], r[a];
      for (int j = 0; j < m; ++j) row[j] = c[(e * m + j) * len + k];
      F<m>::grad(row, r);
      for (int f = 0; f < a; ++f) ze[f * stride + k] = r[f];
    }
  }
}

// dg = G^T s G (3x3 from the a x a s[e * stride + l]) for n <= kWB kernels side by side (the
// vector lanes), into g[l * 9 + 3*i + j] (each kernel row-major), in double, rounded once.
template <int m, class T>
void weight_back_transform(const T* s, int64_t stride, int64_t n, T* g) {
  constexpr int a = F<m>::a;
  double t[3][a][kWB] = {};  // G^T s: column j of s becomes column j of t
  for (int j = 0; j < a; ++j)
#pragma GCC ivdep
    for (int64_t l = 0; l < n; ++l) {
      double col[a], r[3];
      if constexpr (m == 4) {
        for (int i = 0; i < a; ++i) col[i] = s[(a * i + j) * stride + l] * (1.0 / (F<m>::kQ[i] * F<m>::kQ[j]));
        F<m>::weight_back_int(col, r);
      } else {
        for (int i = 0; i < a; ++i) col[i] = s[(a * i + j) * stride + l];
        F<m>::weight_back(col, r);
      }
      for (int i = 0; i < 3; ++i) t[i][j][l] = r[i];
    }
  double out[9][kWB];
  for (int i = 0; i < 3; ++i)  // (G^T s) G
#pragma GCC ivdep
    for (int64_t l = 0; l < kWB; ++l) {
      double row[a], r[3];
      for (int j = 0; j < a; ++j) row[j] = t[i][j][l];
      if constexpr (m == 4)
        F<m>::weight_back_int(row, r);
      else
        F<m>::weight_back(row, r);
      for (int j = 0; j < 3; ++j) out[3 * i + j][l] = r[j];
    }
  for (int64_t l = 0; l < n; ++l)
    for (int k = 0; k < 9; ++k) g[l * 9 + k] = (T)out[k][l];
}

// The transforms' loops run over the tiles of a run: with F(4x4) 8 at 32x32, 4 at 16x16, 2
// at 8x8 (F(2x2): twice as many). GCC vectorizes them 16 floats wide here (AVX-512) and runs
// what is left over in a loop half as wide, so a run of 4 tiles takes none of them. Runs
// shorter than kNarrowRun tiles therefore call copies of the transforms compiled for 256-bit
// vectors (GCC's prefer-vector-width; a no-op elsewhere), whose leftover loop is 4 wide. The
// numbers are the same either way. Measured (1 thread, both builds side by side): the 8x8 and
// 16x16 convs of seed32 and small 1.1-1.3x faster in most passes, 4x4 and 32x32 unchanged
// (bench/results/winograd_narrow_2026-12-02.txt).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SG_NARROW __attribute__((noinline, target("prefer-vector-width=256")))
#else
#define SG_NARROW
#endif
constexpr int64_t kNarrowRun = 8;

template <int m, class T>
SG_NARROW void input_transform_narrow(const T* img, int64_t H, int64_t W, const Run& r, RunScratch<m, T>& sc, T* v,
                                      int64_t stride) {
  input_transform<m>(img, H, W, r, sc, v, stride);
}
template <int m, class T>
void input_transform_run(const T* img, int64_t H, int64_t W, const Run& r, RunScratch<m, T>& sc, T* v, int64_t stride) {
  if (r.len < kNarrowRun) return input_transform_narrow<m>(img, H, W, r, sc, v, stride);
  input_transform<m>(img, H, W, r, sc, v, stride);
}
template <int m, class T>
SG_NARROW void output_transform_narrow(const T* s, int64_t stride, int64_t len, T* const* y, RunScratch<m, T>& sc) {
  output_transform<m>(s, stride, len, y, sc);
}
template <int m, class T>
void output_transform_run(const T* s, int64_t stride, int64_t len, T* const* y, RunScratch<m, T>& sc) {
  if (len < kNarrowRun) return output_transform_narrow<m>(s, stride, len, y, sc);
  output_transform<m>(s, stride, len, y, sc);
}
template <int m, class T>
SG_NARROW void grad_transform_narrow(const T* const* dy, int64_t len, T* z, int64_t stride, RunScratch<m, T>& sc) {
  grad_transform<m>(dy, len, z, stride, sc);
}
template <int m, class T>
void grad_transform_run(const T* const* dy, int64_t len, T* z, int64_t stride, RunScratch<m, T>& sc) {
  if (len < kNarrowRun) return grad_transform_narrow<m>(dy, len, z, stride, sc);
  grad_transform<m>(dy, len, z, stride, sc);
}

// How a call splits its tiles: tiles numbered across the batch (q = (n, ty, tx)), in chunks
// that keep the per-thread scratch near `budget` (kScratchBudget, larger for the weight
// gradient of wide layers) and give every thread a task, never below 16 tiles (narrower GEMMs
// run far below peak) and, where every thread still gets a task, never below 32: each chunk's
// E GEMMs stream all E packed weight matrices (E Og Cg floats, 9 MiB for F(2x2) at 384
// channels: L3) past its tiles, so wide layers at low resolution, whose budget allows fewer
// than 32 tiles, are bound by that stream, and 32-tile GEMMs also take the 6x32 register tile
// instead of the 12x16 (kernels/cpu/gemm_avx2.cpp). Measured on seed32's 384-channel convs at
// 4x4 and 8x8 and its 192-channel one at 8x8, forward and data gradient (batch 32, 2 threads,
// the two builds alternating, 5 rounds, bench/results/winograd_chunk32_2026-12-03.txt): 23 of
// 30 pairs faster, the median 1.06x.
struct TilePlan {
  int64_t tw = 0, tiles_per_image = 0, tiles = 0;
  bool parallel = false;
  int64_t threads = 1, chunk = 0, chunks = 0;
  TilePlan(int m, int64_t N, int64_t Ho, int64_t Wo, int64_t G, int64_t Cg, int64_t Og, int64_t budget) {
    const int64_t E = (m + 2) * (m + 2);
    tw = ceil_div(Wo, m), tiles_per_image = ceil_div(Ho, m) * tw, tiles = N * tiles_per_image;
    parallel = !in_parallel() && 2.0 * E * G * Og * Cg * (double)tiles > double(1 << 20);
    threads = parallel ? num_threads() : 1;
    const int64_t least = std::min<int64_t>(tiles, G * tiles >= 32 * threads ? 32 : 16);
    chunk = std::clamp<int64_t>(budget / (E * (Cg + Og)), least, tiles);
    // Chunks per group: a multiple of ceil(threads / G), so the static schedule gives every
    // thread the same number of tasks; then chunks of equal length, rounded up to a multiple
    // of 16, the GEMM's register tile width (kernels/cpu/gemm_avx2.cpp: 21 tiles would pad
    // the last 16-wide sliver to 32, 85 to 96), never below `least`.
    const int64_t per = ceil_div(threads, G);
    const int64_t n = ceil_div(ceil_div(tiles, chunk), per) * per;
    chunk = std::min(tiles, std::max<int64_t>(least, ceil_div(ceil_div(tiles, n), 16) * 16));
    chunks = ceil_div(tiles, chunk);
  }
};

// A thread's small-planes scratch [Hp][Wp][kCL] (input_transform_planes), or null where the
// images are wider (use_planes false).
template <int m, class T>
T* plane_buffer(bool planes, const TilePlan& plan) {
  const int64_t th = plan.tiles_per_image / plan.tw;
  return planes ? thread_buffer<T>(kPlane, (m * th + 2) * (m * plan.tw + 2) * kCL) : nullptr;
}

// V = B^T d B for the nq tiles of group g's chunk from q0, the same in the forward and the
// weight gradient: [E][Cg][nq] through the chunk's runs, or, given a plane buffer (small
// planes), [E][nq][Cg]. x_scale (small planes only): as input_transform_planes.
template <int m, class T>
void chunk_inputs(const T* x, int64_t C, int64_t H, int64_t W, int64_t g, int64_t Cg, int64_t q0, int64_t nq,
                  const TilePlan& plan, int64_t py, int64_t px, const std::vector<Run>& runs, T* plane,
                  RunScratch<m, T>& scratch, T* V, const T* x_scale = nullptr) {
  if (plane)
    return input_transform_planes<m>(x, C, H, W, g * Cg, Cg, q0, nq, plan.tiles_per_image, plan.tw, py, px, plane, V,
                                     x_scale);
  for (int64_t c = 0; c < Cg; ++c)
    for (const Run& r : runs)
      input_transform_run<m>(x + (r.n * C + g * Cg + c) * H * W, H, W, r, scratch, V + c * nq + r.t, Cg * nq);
}

#if defined(__x86_64__) || defined(__i386__)
// F(2x2) on 4x4 outputs (2x2 tiles per image, (n, ty, tx) order), rows o0 .. o1 - 1 of M (as
// write_plane_outputs) for nq tiles, a multiple of 16, from image n0's first: 16 tiles (four
// images) per step, a tile per lane. output_transform's operations in its order, so the same
// bits; then two rounds of lane permutes put each image's 4x4 block in one register, stored
// whole (times y_scale's factor, if given: the same product as write_plane_outputs'). The
// generic path moves each 4-float row through a scratch row and copies it: 20% of a 64-channel
// 4x4 forward on one thread (perf).
SG_AVX512 void outputs_f2_4x4_avx512(const float* M, int64_t es, int64_t nq, int64_t n0, int64_t base, int64_t O,
                                     int64_t o0, int64_t o1, float* y, const float* y_scale) {
  // Round 1, for each output row parity i: P[h] lane (8 l + 4 ty + 2 tx + j) = Y[i][j] at
  // tile lane 4 (2 h + l) + 2 ty + tx (l: the image within the pair h).
  alignas(64) int32_t p1[2][16], p2[2][16];
  for (int h = 0; h < 2; ++h)
    for (int lane = 0; lane < 16; ++lane) {
      const int l = lane / 8, ty = lane % 8 / 4, tx = lane % 4 / 2, j = lane % 2;
      p1[h][lane] = 16 * j + 4 * (2 * h + l) + 2 * ty + tx;
      // Round 2, image l of pair h: lane (4 row + col), row = 2 ty + i, from P_i[h].
      const int row = lane / 4, col = lane % 4, i = row % 2;
      p2[h][lane] = 16 * i + 8 * h + 4 * (row / 2) + col;  // here h stands for l
    }
  const __m512i r1a = _mm512_load_si512(p1[0]), r1b = _mm512_load_si512(p1[1]);
  const __m512i r2a = _mm512_load_si512(p2[0]), r2b = _mm512_load_si512(p2[1]);
  for (int64_t o = o0; o < o1; ++o)
    for (int64_t k = 0; k < nq; k += 16) {
      const float* s = M + (o - o0) * nq + k;
      __m512 c[2][4];  // A^T s, column j
      for (int j = 0; j < 4; ++j) {
        const __m512 s0 = _mm512_loadu_ps(s + j * es), s1 = _mm512_loadu_ps(s + (4 + j) * es);
        const __m512 s2 = _mm512_loadu_ps(s + (8 + j) * es), s3 = _mm512_loadu_ps(s + (12 + j) * es);
        c[0][j] = _mm512_add_ps(_mm512_add_ps(s0, s1), s2);
        c[1][j] = _mm512_sub_ps(_mm512_sub_ps(s1, s2), s3);
      }
      __m512 P[2][2];  // [i][pair]
      for (int i = 0; i < 2; ++i) {
        const __m512 y0 = _mm512_add_ps(_mm512_add_ps(c[i][0], c[i][1]), c[i][2]);
        const __m512 y1 = _mm512_sub_ps(_mm512_sub_ps(c[i][1], c[i][2]), c[i][3]);
        P[i][0] = _mm512_permutex2var_ps(y0, r1a, y1), P[i][1] = _mm512_permutex2var_ps(y0, r1b, y1);
      }
      for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 2; ++l) {
          const int64_t n = n0 + k / 4 + 2 * h + l;
          __m512 v = _mm512_permutex2var_ps(P[0][h], l ? r2b : r2a, P[1][h]);
          if (y_scale) v = _mm512_mul_ps(v, _mm512_set1_ps(y_scale[n * O + base + o]));
          _mm512_storeu_ps(y + (n * O + base + o) * 16, v);
        }
    }
}
#endif

// Small planes: the outputs of rows o0 .. o1 - 1 (channels base + o of y, [N, O, Ho, Wo]) for the
// nq tiles of `runs`, from M (row o at M + (o - o0) nq, the E points es apart): all the tiles of
// one row in one pass, as one run of nq tiles, into the scratch's `edge`, then each run's m x
// (m len) block copied out (short runs cost more in overhead than the copy), times y_scale.
template <int m, class T>
void write_plane_outputs(const T* M, int64_t es, int64_t nq, int64_t base, int64_t O, int64_t o0, int64_t o1,
                         int64_t Ho, int64_t Wo, const std::vector<Run>& runs, RunScratch<m, T>& scratch, T* y,
                         const T* y_scale) {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (m == 2 && std::is_same_v<T, float>)
    if (Ho == 4 && Wo == 4 && nq % 16 == 0 && runs.front().ty == 0 && runs.front().tx0 == 0 && gemm_avx512_enabled())
      return outputs_f2_4x4_avx512(M, es, nq, runs.front().n, base, O, o0, o1, y, y_scale);
#endif
  T* const edge = scratch.edge();
  for (int64_t o = o0; o < o1; ++o) {
    T* rows[m];
    for (int i = 0; i < m; ++i) rows[i] = edge + i * m * nq;
    output_transform_run<m>(M + (o - o0) * nq, es, nq, rows, scratch);
    for (const Run& r : runs) {
      T* row0 = y + ((r.n * O + base + o) * Ho + m * r.ty) * Wo + m * r.tx0;
      const int64_t cols = std::min<int64_t>(m * r.len, Wo - m * r.tx0);
      const T* ys = y_scale ? y_scale + r.n * O + base + o : nullptr;
      for (int64_t i = 0; i < m && m * r.ty + i < Ho; ++i) {
        const T* src = rows[i] + m * r.t;
        T* dst = row0 + i * Wo;
        if (ys)
          for (int64_t j = 0; j < cols; ++j) dst[j] = src[j] * *ys;
        else
          for (int64_t j = 0; j < cols; ++j) dst[j] = src[j];
      }
    }
  }
}

// The split by output channels' V: every tile's (one group, small planes) in one chunk, on the
// thread that calls it, [E][tiles][Cg].
template <int m, class T>
void all_tile_inputs(const T* x, int64_t C, int64_t H, int64_t W, int64_t Cg, const TilePlan& plan, int64_t py,
                     int64_t px, const std::vector<Run>& runs, T* V, const T* x_scale = nullptr) {
  RunScratch<m, T> scratch(plan.tiles);
  chunk_inputs<m>(x, C, H, W, 0, Cg, 0, plan.tiles, plan, py, px, runs, plane_buffer<m, T>(true, plan), scratch, V,
                  x_scale);
}

std::atomic<bool>& osplit_switch() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("SG_WINOGRAD_OSPLIT");
    return !(v && std::string(v) == "0");
  }()};
  return on;
}

// The weight gradient's split over the threads by output channels (`osplit` in weight_grad):
// F(2x2) calls with at least as many output channels as tiles, every tile's V within
// kOSplitInputs floats, and E Og Cg at least kOSplitWeights (the packed matrices past a
// thread's L2: smaller layers lost 10-18% at 64 channels, where thread 0's V is too much of the
// work). F(4x4) at 8x8 gained 0-6% at batch 16 and lost 5-17% at batch 32: not taken there.
constexpr int64_t kOSplitInputs = int64_t(1) << 20, kOSplitWeights = int64_t(1) << 20;
template <int m>
bool osplit_applies(int64_t G, bool planes, int64_t threads, int64_t tiles, int64_t Cg, int64_t Og) {
  constexpr int64_t E = (m + 2) * (m + 2);
  return m == 2 && G == 1 && planes && threads > 1 && Og >= tiles && E * Cg * tiles <= kOSplitInputs &&
         E * Og * Cg >= kOSplitWeights && osplit_switch().load(std::memory_order_relaxed);
}

// The forward's split over the threads by output channels (`osplit` in forward): F(2x2) on
// small planes, one group, and at most 4 output channels' worth of tiles per thread (tiles x
// threads <= 4 Og), where every thread computing every tile's V is cheaper than the packed
// weights moving between the cores. Measured (2 threads, the two splits alternating; kernels
// alone, bench/results/cpu_winograd_local_split_2026-12-03.txt): 4x4 grids at 32-384 channels
// 1.02-1.3x (small's 64-channel conv 0.073 -> 0.063 ms), where tiles reach 4.5-10 per output
// channel (48 channels at 8x8, 64 at 6x6) 0.7-0.85x, and F(4x4) at 8x8 0.95x.
template <int m>
bool forward_osplit_applies(int64_t G, bool planes, int64_t threads, int64_t tiles, int64_t Og) {
  return m == 2 && G == 1 && planes && threads > 1 && tiles * threads <= 4 * Og &&
         osplit_switch().load(std::memory_order_relaxed);
}

// x_scale / y_scale: null, or [N, Cin] / [N, Cout] factors (conv2d_winograd); small planes only.
template <int m, class T>
void forward(const Conv2dParams& p, const T* x, const T* w, T* y, bool transposed, const T* x_scale, const T* y_scale) {
  constexpr int a = F<m>::a, E = a * a;
  const int64_t N = p.N, C = p.Cin, H = p.H, W = p.W, O = p.Cout, G = p.groups;
  const int64_t Cg = C / G, Og = O / G;
  // The equivalent conv2d's padding (transposed: 2 - p) and output size.
  const int64_t py = transposed ? 2 - p.py : p.py, px = transposed ? 2 - p.px : p.px;
  const int64_t Ho = H + 2 * py - 2, Wo = W + 2 * px - 2;
  if (N * O * Ho * Wo <= 0) return;
  const TilePlan plan(m, N, Ho, Wo, G, Cg, Og, kScratchBudget);
  const int64_t tw = plan.tw, tiles_per_image = plan.tiles_per_image, tiles = plan.tiles;
  const int64_t chunk = plan.chunk, chunks = plan.chunks;

  // U [G][E][Og][Cg]: the transformed weights of each group. In f32 (with U within
  // kMaxPrepackedFloats: not the grouped conv of a fused modulated conv with many wide groups)
  // the weight transform writes each U[g][e] straight into the GEMM's packed layout
  // (kernels/cpu/gemm.h PackedA), once per call: the GEMMs of every chunk of tiles then skip
  // A's packing, which for wide layers at low resolution (a few 16-tile chunks against 384 x
  // 384 weights) cost as much as the multiply-adds. Writing U first and packing it after
  // took 7% of seed32's G forward (perf) on its own. Otherwise U is written as a matrix and
  // each GEMM packs it. (The packed matrices are kept per calling thread and rewritten in
  // place: no allocation once as large.)
  thread_local std::vector<PackedA> packed;
  std::vector<PackedA>& mine = packed;  // inside the lambda below, `packed` would be each worker's own
  bool direct = false;
  if constexpr (std::is_same_v<T, float>)
    if (G * E * Og * Cg <= kMaxPrepackedFloats) {
      if ((int64_t)packed.size() < G * E) packed.resize(G * E);
      direct = true;
      for (int64_t ge = 0; ge < G * E && direct; ++ge) direct = gemm_packed_a_prepare(packed[ge], Og, Cg);
    }
  static_assert(kPackKC % kWB == 0, "a block of kWB channels never straddles two k blocks of the packed layout");
  T* const U = direct ? nullptr : thread_buffer<T>(kU, G * E * Og * Cg);  // fully written below
  // Direct: a sliver of kPackMR rows at a time, so that each block of kWB channels is written
  // as whole cache lines (kPackMR kWB consecutive floats per U[g][e]).
  const int64_t R = direct ? kPackMR : 1, S = ceil_div(Og, R);
  const bool planes = use_planes(tw);
  if ((x_scale || y_scale) && !planes)
    throw std::invalid_argument("conv2d_winograd: scales need the small planes (winograd_fuses_scales)");
  // Few tiles against many output channels (4x4 grids): the threads split the output channels
  // of the GEMMs instead of the tiles (`osplit`, below).
  const bool osplit = direct && forward_osplit_applies<m>(G, planes, plan.threads, tiles, Og);
  auto transform_sliver = [&](int64_t gs) {
    const int64_t g = gs / S, o0 = gs % S * R, rows = std::min(R, Og - o0);
    for (int64_t c0 = 0; c0 < Cg; c0 += kWB) {  // kWB input channels at a time
      const int64_t n = std::min(kWB, Cg - c0);
      // Tap t of kernel (row o0 + r, channel c0 + l) at k[t][l kPackMR + r] (transposed: the
      // kernel flipped, t -> 8 - t): the packed layout's order, kPackMR kWB lanes.
      double k[9][kPackMR * kWB];
      if (rows < R)  // the last sliver's missing rows: zero kernels
        for (int t = 0; t < 9; ++t) std::fill(k[t], k[t] + n * R, 0.0);
      // Kernel (r, l) starts at w + r rs + l ls: conv2d's w[g Og + o][c], transposed w[g Cg + c][o].
      const T* base = transposed ? w + ((g * Cg + c0) * Og + o0) * 9 : w + ((g * Og + o0) * Cg + c0) * 9;
      const int64_t rs = transposed ? 9 : Cg * 9, ls = transposed ? Og * 9 : 9;
      gather_kernels(base, rs, ls, rows, R, n, transposed, k);
      if constexpr (std::is_same_v<T, float>)
        if (direct) {
          // Channels c0 + l of rows o0 + r: lane l kPackMR + r, the packed order (rows past
          // Og are zero kernels, so their lanes write the zeros the padding needs).
          weight_transform_lanes<m, float>(k, n * kPackMR, [&](int e) {
            PackedA& P = mine[g * E + e];
            return P.data.data() + packed_a_offset(P, o0, c0);
          });
          continue;
        }
      // R = 1: lane l is channel c0 + l of row o0
      weight_transform_lanes<m, T>(k, n, [&](int e) { return U + (g * E + e) * Og * Cg + o0 * Cg + c0; });
    }
  };
  // osplit: each thread transforms the slivers of the output channels it multiplies (into its
  // own cache), computes every tile's V, and multiplies its rows of the packed matrices for every
  // tile, in one region. Each packed matrix is read once in all, where the tile split has every
  // thread stream all E of them past each of its chunks (9.4 MB at 384 x 384 in F(2x2); in a
  // training step they come from memory: a 384-channel 4x4 data gradient at batch 16 took 2.3
  // ms with its weights in cache and 3.5 ms after a 64 MB pass), half of them written by the
  // other thread (at 64 channels a tile chunk took 33 us on one thread alone and 48 us beside
  // the other, mostly moving the packed weights between the cores). The same products summed
  // in the same order (gemm_prepacked_rows): the tile split's bits.
  if constexpr (std::is_same_v<T, float>)
    if (osplit) {
      const std::vector<Run> all_runs = chunk_runs(m, 0, tiles, tiles_per_image, tw, W, py, px, Ho, Wo);
      parallel_region(plan.threads, [&](int tid, int team) {
        const int64_t s0 = S * tid / team, s1 = S * (tid + 1) / team;  // G == 1, R == kPackMR
        const int64_t o0 = s0 * kPackMR, o1 = std::min(Og, s1 * kPackMR);
        if (o0 >= o1) return;
        for (int64_t gs = s0; gs < s1; ++gs) transform_sliver(gs);
        T *const V = thread_buffer<T>(kV, E * Cg * tiles), *const M = thread_buffer<T>(kM, E * (o1 - o0) * tiles);
        all_tile_inputs<m>(x, C, H, W, Cg, plan, py, px, all_runs, V, x_scale);
        RunScratch<m, T> scratch(tiles);
        for (int e = 0; e < E; ++e)
          gemm_prepacked_rows(mine[e], o0, o1 - o0, true, tiles, 1.f, V + e * Cg * tiles, Cg, 0.f,
                              M + e * (o1 - o0) * tiles, tiles);
        write_plane_outputs<m>(M, (o1 - o0) * tiles, tiles, 0, O, o0, o1, Ho, Wo, all_runs, scratch, y, y_scale);
      });
      return;
    }
  parallel_for(G * S, O * Cg > 64, [&](int64_t gs0, int64_t gs1) {
    for (int64_t gs = gs0; gs < gs1; ++gs) transform_sliver(gs);
  });
  const PackedA* const Up = direct ? mine.data() : nullptr;

  // Tasks (g, chunk), G * chunks of them, split in contiguous blocks over the threads.
  parallel_region(plan.threads, [&](int tid, int team) {
    T *const V = thread_buffer<T>(kV, E * Cg * chunk), *const M = thread_buffer<T>(kM, E * Og * chunk);
    T* const plane = plane_buffer<m, T>(planes, plan);
    RunScratch<m, T> scratch(chunk);
    T* const edge = scratch.edge();
    const int64_t tasks = G * chunks;
    for (int64_t task = tasks * tid / team; task < tasks * (tid + 1) / team; ++task) {
      const int64_t g = task / chunks, ck = task % chunks;
      const int64_t q0 = ck * chunk, nq = std::min(chunk, tiles - q0);
      const std::vector<Run> runs = chunk_runs(m, q0, nq, tiles_per_image, tw, W, py, px, Ho, Wo);
      // V [E][Cg][nq], or with small planes [E][nq][Cg]
      chunk_inputs<m>(x, C, H, W, g, Cg, q0, nq, plan, py, px, runs, plane, scratch, V, x_scale);
      // M[e] = U[g][e] @ V[e]: [Og, Cg] @ [Cg, nq]
      const int64_t ldv = planes ? Cg : nq;
      for (int e = 0; e < E; ++e) {
        if constexpr (std::is_same_v<T, float>)
          if (Up) {
            gemm_prepacked(Up[g * E + e], planes, nq, 1.f, V + e * Cg * nq, ldv, 0.f, M + e * Og * nq, nq);
            continue;
          }
        gemm<T>(false, planes, Og, nq, Cg, T(1), U + (g * E + e) * Og * Cg, Cg, V + e * Cg * nq, ldv, T(0),
                M + e * Og * nq, nq);
      }
      // y = A^T M A per (o, tile): small planes through write_plane_outputs; wider images
      // straight into y's rows, or through `edge` where Ho or Wo cuts the run's blocks.
      if (planes) write_plane_outputs<m>(M, Og * nq, nq, g * Og, O, 0, Og, Ho, Wo, runs, scratch, y, y_scale);
      for (int64_t o = 0; o < Og && !planes; ++o)
        for (const Run& r : runs) {
          T* row0 = y + ((r.n * O + g * Og + o) * Ho + m * r.ty) * Wo + m * r.tx0;
          T* rows[m];
          for (int i = 0; i < m; ++i) rows[i] = r.inside ? row0 + i * Wo : edge + i * m * r.len;
          output_transform_run<m>(M + o * nq + r.t, Og * nq, r.len, rows, scratch);
          if (r.inside) continue;
          const int64_t cols = std::min<int64_t>(m * r.len, Wo - m * r.tx0);
          for (int64_t i = 0; i < m && m * r.ty + i < Ho; ++i) std::copy(rows[i], rows[i] + cols, row0 + i * Wo);
        }
    }
  });
}

// Small planes: Z = A dY A^T for rows o0 .. o1 - 1 (channels base + o of dy, [N, O, Ho, Wo]) and
// the nq tiles of `runs`, into Z (row o at Z + (o - o0) nq, the E points (o1 - o0) nq apart):
// each run's dY block copied into the scratch's `edge` as one run of nq tiles (zero past Ho and
// Wo), then transformed in one pass per row.
template <int m, class T>
void plane_grads(const T* dy, int64_t O, int64_t Ho, int64_t Wo, int64_t base, int64_t o0, int64_t o1, int64_t nq,
                 const std::vector<Run>& runs, RunScratch<m, T>& scratch, T* Z) {
  T* const edge = scratch.edge();
  for (int64_t o = o0; o < o1; ++o) {
    T* rows[m];
    for (int i = 0; i < m; ++i) rows[i] = edge + i * m * nq;
    for (const Run& r : runs) {
      const T* row0 = dy + ((r.n * O + base + o) * Ho + m * r.ty) * Wo + m * r.tx0;
      const int64_t cols = std::min<int64_t>(m * r.len, Wo - m * r.tx0);
      for (int64_t i = 0; i < m; ++i) {
        T* dst = rows[i] + m * r.t;
        const int64_t valid = m * r.ty + i < Ho ? cols : 0;
        for (int64_t j = 0; j < valid; ++j) dst[j] = row0[i * Wo + j];
        for (int64_t j = valid; j < m * r.len; ++j) dst[j] = T(0);
      }
    }
    grad_transform_run<m>(rows, nq, Z + (o - o0) * nq, (o1 - o0) * nq, scratch);
  }
}

// Sets a flag when it goes out of scope (also by an exception): a thread that computes what the
// others wait for.
struct SetOnExit {
  std::atomic<bool>& flag;
  ~SetOnExit() { flag.store(true, std::memory_order_release); }
};

template <int m, class T>
void weight_grad(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  constexpr int a = F<m>::a, E = a * a;
  const int64_t N = p.N, C = p.Cin, H = p.H, W = p.W, O = p.Cout, G = p.groups;
  const int64_t Cg = C / G, Og = O / G, py = p.py, px = p.px;
  const int64_t Ho = H + 2 * py - 2, Wo = W + 2 * px - 2;
  if (N * Ho * Wo <= 0) return std::fill(dw, dw + O * Cg * 9, T(0));  // else the end writes all of dw
  // Each chunk adds its E GEMMs into the thread's dL/dU accumulator (E Og Cg floats), so C is
  // read and written once per chunk: once that no longer fits in L2 (4 MiB at 256 channels in
  // F(2x2)), longer chunks amortize it (measured, 4 x 256 ch at 16x16, forward + backward:
  // 44 -> 38 ms with the scratch budget x4; at 128 channels a larger budget was slower).
  const TilePlan plan(m, N, Ho, Wo, G, Cg, Og, kScratchBudget * std::max<int64_t>(1, E * Og * Cg / kScratchBudget));
  const int64_t tw = plan.tw, tiles_per_image = plan.tiles_per_image, tiles = plan.tiles;
  const int64_t chunk = plan.chunk, chunks = plan.chunks, threads = plan.threads;
  const bool planes = use_planes(tw);
  // F(2x2) with few tiles against many output channels (the forward's `osplit`): each thread
  // takes a share of the output channels for every tile, into an accumulator of its rows only
  // (E rows Cg floats, beta 0), and back-transforms them: no whole-size accumulators to sum
  // (2 x 9.4 MB written and read again at 384 x 384). Thread 0 first computes every tile's V,
  // which the others wait for after their Z. One GEMM over all the tiles: the same sums for
  // any thread count (the tile split's bits differ: its threads' partial sums are added).
  if (osplit_applies<m>(G, planes, threads, tiles, Cg, Og)) {
    const std::vector<Run> runs = chunk_runs(m, 0, tiles, tiles_per_image, tw, W, py, px, Ho, Wo);
    T* const V = thread_buffer<T>(kV, E * Cg * tiles);  // the calling thread's (thread 0)
    std::atomic<bool> ready{false};
    parallel_region(threads, [&](int tid, int team) {
      if (tid == 0) {
        SetOnExit done{ready};
        all_tile_inputs<m>(x, C, H, W, Cg, plan, py, px, runs, V);
      }
      const int64_t o0 = Og * tid / team, o1 = Og * (tid + 1) / team, rows = o1 - o0;
      if (rows <= 0) return;
      T *const Z = thread_buffer<T>(kM, E * rows * tiles), *const acc = thread_buffer<T>(kAcc, E * rows * Cg);
      RunScratch<m, T> scratch(tiles);
      plane_grads<m>(dy, O, Ho, Wo, 0, o0, o1, tiles, runs, scratch, Z);
      while (!ready.load(std::memory_order_acquire)) std::this_thread::yield();
      for (int e = 0; e < E; ++e)  // dL/dU[e] rows = Z[e] @ V[e]: [rows, tiles] @ [tiles, Cg]
        gemm<T>(false, false, rows, Cg, tiles, T(1), Z + e * rows * tiles, tiles, V + e * Cg * tiles, Cg, T(0),
                acc + e * rows * Cg, Cg);
      for (int64_t o = o0; o < o1; ++o)
        for (int64_t c0 = 0; c0 < Cg; c0 += kWB)
          weight_back_transform<m>(acc + (o - o0) * Cg + c0, rows * Cg, std::min(kWB, Cg - c0), dw + (o * Cg + c0) * 9);
    });
    return;
  }
  // dL/dU [G][E][Og][Cg], summed over tiles: one accumulator per thread, added at the end in
  // thread order (so a run is bit-reproducible for a given thread count). A thread's tasks are
  // a contiguous run of (group, chunk), so it meets groups [first[tid], last[tid]], each in one
  // or more consecutive tasks: the first task of a group writes its blocks (GEMM beta 0) and
  // the next add to them. Nothing is zero-filled, and a thread's other blocks are never read.
  // (At 384 channels an accumulator is 9.4 MB in F(2x2): filling and summing whole ones cost
  // more than the GEMMs of a 4x4 layer.)
  const int64_t msize = G * E * Og * Cg;
  std::vector<T*> accs(threads);
  std::vector<int64_t> first(threads, 0), last(threads, -1);

  parallel_region(threads, [&](int tid, int team) {
    const int64_t tasks = G * chunks, t0 = tasks * tid / team, t1 = tasks * (tid + 1) / team;
    if (t0 >= t1) return;  // no task: accs[tid] stays null
    T* const acc = accs[tid] = thread_buffer<T>(kAcc, msize);
    first[tid] = t0 / chunks, last[tid] = (t1 - 1) / chunks;
    T *const V = thread_buffer<T>(kV, E * Cg * chunk), *const Z = thread_buffer<T>(kM, E * Og * chunk);
    T* const plane = plane_buffer<m, T>(planes, plan);
    RunScratch<m, T> scratch(chunk);
    T* const edge = scratch.edge();
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t g = task / chunks, ck = task % chunks;
      const T beta = task == t0 || ck == 0 ? T(0) : T(1);  // this thread's first task of group g
      const int64_t q0 = ck * chunk, nq = std::min(chunk, tiles - q0);
      const std::vector<Run> runs = chunk_runs(m, q0, nq, tiles_per_image, tw, W, py, px, Ho, Wo);
      chunk_inputs<m>(x, C, H, W, g, Cg, q0, nq, plan, py, px, runs, plane, scratch, V);  // V, as the forward
      // Z = A dY A^T. Small planes (as the forward's output):
      // each run's dY block copied into `edge` as one run of the chunk's nq tiles (zero past Ho
      // and Wo), then transformed in one pass per o.
      if (planes) plane_grads<m>(dy, O, Ho, Wo, g * Og, 0, Og, nq, runs, scratch, Z);
      for (int64_t o = 0; o < Og && !planes; ++o)  // dY's rows read in place, or through `edge`
        for (const Run& r : runs) {
          const T* row0 = dy + ((r.n * O + g * Og + o) * Ho + m * r.ty) * Wo + m * r.tx0;
          const T* rows[m];
          for (int i = 0; i < m; ++i) rows[i] = row0 + i * Wo;
          if (!r.inside) {  // zero past Ho and Wo
            const int64_t cols = std::min<int64_t>(m * r.len, Wo - m * r.tx0);
            for (int64_t i = 0; i < m; ++i) {
              T* d = edge + i * m * r.len;
              std::fill(d, d + m * r.len, T(0));
              if (m * r.ty + i < Ho) std::copy(row0 + i * Wo, row0 + i * Wo + cols, d);
              rows[i] = d;
            }
          }
          grad_transform_run<m>(rows, r.len, Z + o * nq + r.t, Og * nq, scratch);
        }
      // dL/dU[e] += Z[e] @ V[e]^T: [Og, nq] @ [nq, Cg] (small planes: V[e] is stored transposed)
      for (int e = 0; e < E; ++e)
        gemm<T>(false, !planes, Og, Cg, nq, T(1), Z + e * Og * nq, nq, V + e * Cg * nq, planes ? Cg : nq, beta,
                acc + (g * E + e) * Og * Cg, Cg);
    }
  });
  // dw[g*Og + o, c] = G^T dL/dU[g][., o, c] G, with dL/dU the sum of the accumulators that hold
  // group g, in thread order, formed per (g, o) into a thread's [E][Cg] buffer right before its
  // back transform (the threads split the (g, o) rows: one pass, no whole-size sum first). (A
  // null acc: a thread without tasks, or one the team did not get while another held the pool.)
  parallel_for(G * Og, O * Cg > 64, [&](int64_t go0, int64_t go1) {
    T* const Mw = thread_buffer<T>(kSum, E * Cg);
    for (int64_t go = go0; go < go1; ++go) {
      const int64_t g = go / Og, o = go % Og;
      bool any = false;
      for (size_t k = 0; k < accs.size(); ++k) {
        if (!accs[k] || g < first[k] || g > last[k]) continue;
        for (int e = 0; e < E; ++e) {
          const T* acc = accs[k] + ((g * E + e) * Og + o) * Cg;
          T* mw = Mw + e * Cg;
          if (!any)
            std::copy(acc, acc + Cg, mw);
          else
            for (int64_t c = 0; c < Cg; ++c) mw[c] += acc[c];
        }
        any = true;
      }
      for (int64_t c0 = 0; c0 < Cg; c0 += kWB)  // kWB input channels at a time
        weight_back_transform<m>(Mw + c0, Cg, std::min(kWB, Cg - c0), dw + ((g * Og + o) * Cg + c0) * 9);
    }
  });
}

int checked_tile(int tile, const Conv2dParams& p, int64_t Ho, int64_t Wo, bool weight_grad, const char* op) {
  if (tile == 0) return winograd_tile(Ho, Wo, std::min(p.Cin, p.Cout) / p.groups, weight_grad);
  if (tile != 2 && tile != 4)
    throw std::invalid_argument(std::string(op) + ": Winograd output tile " + std::to_string(tile) +
                                " (supported: 2, 4, or 0 for the default)");
  return tile;
}

}  // namespace

bool winograd_applies(const Conv2dParams& p, bool transposed) {
  if (p.kh != 3 || p.kw != 3 || p.sy != 1 || p.sx != 1) return false;
  if (p.py < 0 || p.px < 0 || p.py > 2 || p.px > 2) return false;
  if (transposed && (p.opy != 0 || p.opx != 0)) return false;
  if (p.groups < 1 || p.Cin % p.groups != 0 || p.Cout % p.groups != 0) return false;
  return p.Cin / p.groups >= kWinogradMinChannels && p.Cout / p.groups >= kWinogradMinChannels;
}

bool winograd_split_outputs(bool on) { return osplit_switch().exchange(on); }

int winograd_tile(int64_t Ho, int64_t Wo, int64_t channels, bool weight_grad) {
  static const int forced = [] {  // SG_WINOGRAD_TILE: 2 or 4 for every call (benchmarks), unset: auto
    const char* v = std::getenv("SG_WINOGRAD_TILE");
    const std::string s = v ? v : "";
    if (s.empty() || s == "auto") return 0;
    if (s == "2" || s == "4") return s[0] - '0';
    throw std::invalid_argument("SG_WINOGRAD_TILE='" + s + "': expected 2, 4 or 'auto' (or unset)");
  }();
  if (std::min(Ho, Wo) < 4) return 2;
  if (forced) return forced;
  if (Wo < 8) return 2;
  return weight_grad || Wo >= 16 || channels >= 64 ? 4 : 2;
}

template <class T>
void conv2d_winograd(const Conv2dParams& p, const T* x, const T* w, T* y, bool transposed, int tile, const T* x_scale,
                     const T* y_scale) {
  const int64_t Ho = transposed ? p.H + 2 - 2 * p.py : p.H + 2 * p.py - 2;
  const int64_t Wo = transposed ? p.W + 2 - 2 * p.px : p.W + 2 * p.px - 2;
  if (checked_tile(tile, p, Ho, Wo, false, "conv2d_winograd") == 4)
    forward<4>(p, x, w, y, transposed, x_scale, y_scale);
  else
    forward<2>(p, x, w, y, transposed, x_scale, y_scale);
}

bool winograd_fuses_scales(const Conv2dParams& p, bool transposed, int tile) {
  if (!winograd_applies(p, transposed)) return false;
  const int64_t Ho = transposed ? p.H + 2 - 2 * p.py : p.H + 2 * p.py - 2;
  const int64_t Wo = transposed ? p.W + 2 - 2 * p.px : p.W + 2 * p.px - 2;
  return Ho >= 1 && Wo >= 1 && use_planes(ceil_div(Wo, checked_tile(tile, p, Ho, Wo, false, "winograd_fuses_scales")));
}

template <class T>
void conv2d_weight_grad_winograd(const Conv2dParams& p, const T* dy, const T* x, T* dw, int tile) {
  const int64_t Ho = p.H + 2 * p.py - 2, Wo = p.W + 2 * p.px - 2;
  if (checked_tile(tile, p, Ho, Wo, true, "conv2d_weight_grad_winograd") == 4)
    weight_grad<4>(p, dy, x, dw);
  else
    weight_grad<2>(p, dy, x, dw);
}

template void conv2d_winograd<float>(const Conv2dParams&, const float*, const float*, float*, bool, int, const float*,
                                     const float*);
template void conv2d_winograd<double>(const Conv2dParams&, const double*, const double*, double*, bool, int,
                                      const double*, const double*);
template void conv2d_weight_grad_winograd<float>(const Conv2dParams&, const float*, const float*, float*, int);
template void conv2d_weight_grad_winograd<double>(const Conv2dParams&, const double*, const double*, double*, int);

}  // namespace sg::kernels::cpu
