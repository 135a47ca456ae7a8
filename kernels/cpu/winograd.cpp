// Winograd F(2x2, 3x3): see winograd.h.
#include "kernels/cpu/winograd.h"

#include <omp.h>

#include <algorithm>
#include <memory>
#include <type_traits>
#include <vector>

#include "kernels/cpu/gemm.h"

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

// The 4 input rows y0 .. y0+3 of a run of len tiles whose first patch starts at column x0,
// split into even and odd columns: ev[i][k] = img[y0+i][x0+2k], od[i][k] = img[y0+i][x0+2k+1]
// for k <= len (zero outside the image), rows stored len + 1 apart. Tile k's patch row i is
// then ev[i][k], od[i][k], ev[i][k+1], od[i][k+1].
template <class T>
void load_rows(const T* img, int64_t H, int64_t W, int64_t y0, int64_t x0, int64_t len, T* ev, T* od) {
  const int64_t ld = len + 1;
  for (int i = 0; i < 4; ++i) {
    T* e = ev + i * ld;
    T* o = od + i * ld;
    const int64_t yy = y0 + i;
    if (yy < 0 || yy >= H) {
      std::fill(e, e + ld, T(0));
      std::fill(o, o + ld, T(0));
      continue;
    }
    const T* src = img + yy * W;
    // Columns x0 + 2k and x0 + 2k + 1 are both inside the image for k in [k0, k1): a plain
    // deinterleaving loop there, bounds checks only at the edges (padding makes x0 < 0 for
    // the first run of every row).
    const int64_t k0 = std::clamp<int64_t>(ceil_div(-x0, 2), 0, ld);
    const int64_t span = W - 2 - x0;  // x0 + 2k + 1 <= W - 1  <=>  k <= span / 2
    const int64_t k1 = std::clamp<int64_t>(span < 0 ? 0 : span / 2 + 1, k0, ld);
    auto edge = [&](int64_t k) {
      const int64_t a = x0 + 2 * k, b = a + 1;
      e[k] = (a >= 0 && a < W) ? src[a] : T(0);
      o[k] = (b >= 0 && b < W) ? src[b] : T(0);
    };
    for (int64_t k = 0; k < k0; ++k) edge(k);
    const T* s2 = src + x0;
    for (int64_t k = k0; k < k1; ++k) e[k] = s2[2 * k], o[k] = s2[2 * k + 1];
    for (int64_t k = k1; k < ld; ++k) edge(k);
  }
}

// V = B^T d B for each of len tiles of a run (patches from load_rows), into
// v[e * stride + k], e = 4*i + j: unit-stride loads and stores across the run's tiles.
template <class T>
void input_transform_run(const T* ev, const T* od, int64_t len, T* v, int64_t stride) {
  const int64_t ld = len + 1;
  // patch row i of tile k: d0 = ev[i][k], d1 = od[i][k], d2 = ev[i][k+1], d3 = od[i][k+1]
  const T *e0 = ev, *e1 = ev + ld, *e2 = ev + 2 * ld, *e3 = ev + 3 * ld;
  const T *o0 = od, *o1 = od + ld, *o2 = od + 2 * ld, *o3 = od + 3 * ld;
#pragma omp simd
  for (int64_t k = 0; k < len; ++k) {
    // t = B^T d, per column j (d rows 0..3)
    T t[4][4];
    const T c0[4] = {e0[k], o0[k], e0[k + 1], o0[k + 1]};
    const T c1[4] = {e1[k], o1[k], e1[k + 1], o1[k + 1]};
    const T c2[4] = {e2[k], o2[k], e2[k + 1], o2[k + 1]};
    const T c3[4] = {e3[k], o3[k], e3[k + 1], o3[k + 1]};
    for (int j = 0; j < 4; ++j) {
      t[0][j] = c0[j] - c2[j];
      t[1][j] = c1[j] + c2[j];
      t[2][j] = c2[j] - c1[j];
      t[3][j] = c1[j] - c3[j];
    }
    for (int i = 0; i < 4; ++i) {  // (B^T d) B
      v[(4 * i + 0) * stride + k] = t[i][0] - t[i][2];
      v[(4 * i + 1) * stride + k] = t[i][1] + t[i][2];
      v[(4 * i + 2) * stride + k] = t[i][2] - t[i][1];
      v[(4 * i + 3) * stride + k] = t[i][1] - t[i][3];
    }
  }
}

// y = A^T m A for each of len tiles of a run, m[e * stride + k]; out[p * ld + k] gets output
// phase p = 2*i + j (row i, column j of the tile's 2x2 block).
template <class T>
void output_transform_run(const T* m, int64_t stride, int64_t len, T* out, int64_t ld) {
#pragma omp simd
  for (int64_t k = 0; k < len; ++k) {
    T a[2][4];  // A^T m
    for (int j = 0; j < 4; ++j) {
      const T m0 = m[j * stride + k], m1 = m[(4 + j) * stride + k], m2 = m[(8 + j) * stride + k],
              m3 = m[(12 + j) * stride + k];
      a[0][j] = m0 + m1 + m2;
      a[1][j] = m1 - m2 - m3;
    }
    for (int i = 0; i < 2; ++i) {  // (A^T m) A
      out[(2 * i) * ld + k] = a[i][0] + a[i][1] + a[i][2];
      out[(2 * i + 1) * ld + k] = a[i][1] - a[i][2] - a[i][3];
    }
  }
}

// Z = A dY A^T (4x4 from the 2x2 block dY) for each of len tiles of a run: dY row i of tile
// k is (dev[i][k], dod[i][k]) (even and odd output columns, rows len apart); z[e * stride + k].
template <class T>
void grad_transform_run(const T* dev, const T* dod, int64_t len, T* z, int64_t stride) {
  const T *a0 = dev, *b0 = dod, *a1 = dev + len, *b1 = dod + len;
#pragma omp simd
  for (int64_t k = 0; k < len; ++k) {
    // A dY: rows [a, b], [a + c, b + d], [a - c, b - d], [-c, -d]; then each row [p, q] times
    // A^T: [p, p + q, p - q, -q].
    const T a = a0[k], b = b0[k], c = a1[k], d = b1[k];
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
    parallel = !omp_in_parallel() && 2.0 * 16 * G * Og * Cg * (double)tiles > double(1 << 20);
    threads = parallel ? omp_get_max_threads() : 1;
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
  const bool parallel = plan.parallel;

  // U [G][16][Og][Cg]: the transformed weights of each group.
  std::vector<T> U(G * 16 * Og * Cg);
#pragma omp parallel for collapse(2) schedule(static) if (!omp_in_parallel() && O * Cg > 64)
  for (int64_t g = 0; g < G; ++g)
    for (int64_t o = 0; o < Og; ++o)
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
        weight_transform(k, n, U.data() + (g * 16 * Og + o) * Cg + c0, Og * Cg);
      }
  // f32 with more than one chunk of tiles (and U within kMaxPrepackedFloats: not the grouped
  // conv of a fused modulated conv with many wide groups): each U[g][e] packed once for the GEMM
  // (kernels/cpu/gemm.h PackedA) rather than once per chunk, which for wide layers at low
  // resolution (a few 16-tile chunks against 384 x 384 weights) cost as much as the
  // multiply-adds.
  std::vector<PackedA> Up;
  if constexpr (std::is_same_v<T, float>)
    if (chunks > 1 && G * 16 * Og * Cg <= kMaxPrepackedFloats)
      for (int64_t ge = 0; ge < G * 16; ++ge) Up.push_back(gemm_pack_a(false, Og, Cg, U.data() + ge * Og * Cg, Cg));

#pragma omp parallel if (parallel)
  {
    std::unique_ptr<T[]> V(new T[16 * Cg * chunk]), M(new T[16 * Og * chunk]);
    // Even and odd columns of the 4 input rows of a run ([4][chunk + 1] each) and the four
    // output phases of a run ([4][chunk]).
    std::unique_ptr<T[]> bufs(new T[2 * 4 * (chunk + 1) + 4 * chunk]);
    T* ev = bufs.get();
    T* od = ev + 4 * (chunk + 1);
    T* out4 = od + 4 * (chunk + 1);
#pragma omp for collapse(2) schedule(static)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t ck = 0; ck < chunks; ++ck) {
        const int64_t q0 = ck * chunk, nq = std::min(chunk, tiles - q0);
        // V [16][Cg][nq], one run of tiles of the same (image, tile row) at a time.
        for (int64_t t = 0; t < nq;) {
          const int64_t q = q0 + t, n = q / tiles_per_image, r = q % tiles_per_image;
          const int64_t ty = r / tw, tx0 = r % tw, len = std::min(tw - tx0, nq - t);
          for (int64_t c = 0; c < Cg; ++c) {
            const T* img = x + (n * C + g * Cg + c) * H * W;
            load_rows(img, H, W, 2 * ty - py, 2 * tx0 - px, len, ev, od);
            input_transform_run(ev, od, len, V.get() + c * nq + t, Cg * nq);
          }
          t += len;
        }
        // M[e] = U[g][e] @ V[e]: [Og, Cg] @ [Cg, nq]
        for (int e = 0; e < 16; ++e) {
          if constexpr (std::is_same_v<T, float>)
            if (!Up.empty()) {
              gemm_prepacked(Up[g * 16 + e], false, nq, 1.f, V.get() + e * Cg * nq, nq, 0.f, M.get() + e * Og * nq, nq);
              continue;
            }
          gemm<T>(false, false, Og, nq, Cg, T(1), U.data() + (g * 16 + e) * Og * Cg, Cg, V.get() + e * Cg * nq, nq,
                  T(0), M.get() + e * Og * nq, nq);
        }
        // y = A^T M A per (o, tile), one run of tiles of the same (image, tile row) at a time.
        for (int64_t t = 0; t < nq;) {
          const int64_t q = q0 + t, n = q / tiles_per_image, r = q % tiles_per_image;
          const int64_t ty = r / tw, tx0 = r % tw, len = std::min(tw - tx0, nq - t);
          for (int64_t o = 0; o < Og; ++o) {
            output_transform_run(M.get() + o * nq + t, Og * nq, len, out4, chunk);
            T* plane = y + (n * O + g * Og + o) * Ho * Wo;
            for (int64_t i = 0; i < 2 && 2 * ty + i < Ho; ++i) {
              T* row = plane + (2 * ty + i) * Wo + 2 * tx0;
              const T* e0 = out4 + (2 * i) * chunk;
              const T* e1 = out4 + (2 * i + 1) * chunk;
              const int64_t cols = std::min<int64_t>(2 * len, Wo - 2 * tx0);
              for (int64_t k = 0; k < cols / 2; ++k) row[2 * k] = e0[k], row[2 * k + 1] = e1[k];
              if (cols & 1) row[cols - 1] = e0[cols / 2];
            }
          }
          t += len;
        }
      }
  }
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
  const bool parallel = plan.parallel;
  // dL/dU [G][16][Og][Cg], summed over tiles: one accumulator per thread, added at the end in
  // thread order (so a run is bit-reproducible for a given thread count).
  const int64_t msize = G * 16 * Og * Cg;
  std::vector<std::vector<T>> accs(threads);

#pragma omp parallel if (parallel)
  {
    std::vector<T>& acc = accs[omp_get_thread_num()];
    acc.assign(msize, T(0));
    std::unique_ptr<T[]> V(new T[16 * Cg * chunk]), Z(new T[16 * Og * chunk]);
    std::unique_ptr<T[]> bufs(new T[2 * 4 * (chunk + 1)]);
    T* ev = bufs.get();
    T* od = ev + 4 * (chunk + 1);
#pragma omp for collapse(2) schedule(static)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t ck = 0; ck < chunks; ++ck) {
        const int64_t q0 = ck * chunk, nq = std::min(chunk, tiles - q0);
        for (int64_t t = 0; t < nq;) {
          const int64_t q = q0 + t, n = q / tiles_per_image, r = q % tiles_per_image;
          const int64_t ty = r / tw, tx0 = r % tw, len = std::min(tw - tx0, nq - t);
          for (int64_t c = 0; c < Cg; ++c) {  // V = B^T d B, as the forward
            load_rows(x + (n * C + g * Cg + c) * H * W, H, W, 2 * ty - py, 2 * tx0 - px, len, ev, od);
            input_transform_run(ev, od, len, V.get() + c * nq + t, Cg * nq);
          }
          for (int64_t o = 0; o < Og; ++o) {  // Z = A dY A^T; rows 2ty, 2ty+1 (zero past Ho / Wo)
            const T* plane = dy + (n * O + g * Og + o) * Ho * Wo;
            for (int i = 0; i < 2; ++i) {
              const int64_t yy = 2 * ty + i;
              for (int64_t k = 0; k < len; ++k) {
                const int64_t xa = 2 * (tx0 + k), xb = xa + 1;
                ev[i * len + k] = (yy < Ho && xa < Wo) ? plane[yy * Wo + xa] : T(0);
                od[i * len + k] = (yy < Ho && xb < Wo) ? plane[yy * Wo + xb] : T(0);
              }
            }
            grad_transform_run(ev, od, len, Z.get() + o * nq + t, Og * nq);
          }
          t += len;
        }
        // dL/dU[e] += Z[e] @ V[e]^T: [Og, nq] @ [nq, Cg]
        for (int e = 0; e < 16; ++e)
          gemm<T>(false, true, Og, Cg, nq, T(1), Z.get() + e * Og * nq, nq, V.get() + e * Cg * nq, nq, T(1),
                  acc.data() + (g * 16 + e) * Og * Cg, Cg);
      }
  }
  std::vector<T> Mw(msize, T(0));
  for (const std::vector<T>& acc : accs)
    for (int64_t i = 0; i < (int64_t)acc.size(); ++i) Mw[i] += acc[i];
      // dw[g*Og + o, c] = G^T dL/dU[g][., o, c] G
#pragma omp parallel for collapse(2) schedule(static) if (!omp_in_parallel() && O * Cg > 64)
  for (int64_t g = 0; g < G; ++g)
    for (int64_t o = 0; o < Og; ++o)
      for (int64_t c0 = 0; c0 < Cg; c0 += kWB)  // kWB input channels at a time
        weight_back_transform(Mw.data() + (g * 16 * Og + o) * Cg + c0, Og * Cg, std::min(kWB, Cg - c0),
                              dw + ((g * Og + o) * Cg + c0) * 9);
}

template void conv2d_winograd<float>(const Conv2dParams&, const float*, const float*, float*, bool);
template void conv2d_winograd<double>(const Conv2dParams&, const double*, const double*, double*, bool);
template void conv2d_weight_grad_winograd<float>(const Conv2dParams&, const float*, const float*, float*);
template void conv2d_weight_grad_winograd<double>(const Conv2dParams&, const double*, const double*, double*);

}  // namespace sg::kernels::cpu
