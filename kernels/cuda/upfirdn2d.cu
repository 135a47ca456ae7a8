// upfirdn2d on CUDA: a general one-thread-per-output-pixel kernel and a shared-memory tiled
// separable fast path for the StyleGAN2 cases. Formula, layout, variants and benchmarking:
// kernels/cuda/upfirdn2d.h.
//
// Tap bookkeeping (both variants): output o along an axis reads the upsampled position
// k = o*down + i - pad0 for filter tap i; only k that are multiples of up land on an input
// sample (k / up), so the loops visit exactly those taps, every up-th one.
#include <algorithm>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/upfirdn2d.h"

namespace sg::kernels::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kInt32Max = 2147483647;

// Separable fast path: output tile and the longest filter it takes.
constexpr int kTileH = 16, kTileW = 32, kMaxSepTaps = 8;

struct Geom {
  int H, W, Ho, Wo, fh, fw;
  int upx, upy, downx, downy, padx0, pady0;
  int flip, separable;
  double gain;
  int64_t planes;
  int plane0;  // first plane of this launch (fast path)
};

__device__ __forceinline__ int floordiv(int a, int b) {  // b > 0
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
__device__ __forceinline__ int ceildiv(int a, int b) { return -floordiv(-a, b); }

// Weight multiplying u[o*down + i][...] for taps (i, j): f oriented by flip_filter, times gain,
// rounded the way the CPU kernel rounds (the separable product in T, then * gain in double).
template <class T>
__device__ __forceinline__ T tap_weight(const T* f, const Geom& G, int i, int j) {
  const int si = G.flip ? i : G.fh - 1 - i, sj = G.flip ? j : G.fw - 1 - j;
  const T v = G.separable ? (T)(f[si] * f[sj]) : f[si * G.fw + sj];
  return (T)((double)v * G.gain);
}

struct TapRange {
  int first, in0, count;
};

// The taps of output o along one axis that land on real input samples.
__device__ __forceinline__ TapRange tap_range(int o, int in, int up, int down, int pad0, int taps) {
  TapRange t{0, 0, 0};
  const int base = o * down - pad0;
  const int imin = base < 0 ? -base : 0;
  const int rem = (base + imin) % up;  // base + imin >= 0
  const int i0 = imin + (rem == 0 ? 0 : up - rem);
  if (i0 < taps) {
    const int in0 = (base + i0) / up;
    if (in0 < in) {
      t.first = i0;
      t.in0 = in0;
      t.count = min((taps - 1 - i0) / up + 1, in - in0);
    }
  }
  return t;
}

template <class T>
__global__ void __launch_bounds__(kThreads) upfirdn2d_general_kernel(const T* __restrict__ x, const T* __restrict__ f,
                                                                     T* __restrict__ y, const Geom G, int use_smem) {
  SG_DYNAMIC_SHARED(unsigned char, smem_raw);
  T* wsm = reinterpret_cast<T*>(smem_raw);
  if (use_smem) {  // uniform over the block
    for (int t = threadIdx.x; t < G.fh * G.fw; t += blockDim.x) wsm[t] = tap_weight(f, G, t / G.fw, t % G.fw);
    __syncthreads();
  }
  const int64_t total = G.planes * G.Ho * G.Wo;
  const int64_t HW = (int64_t)G.H * G.W;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int ox = (int)(idx % G.Wo);
    const int64_t r = idx / G.Wo;
    const int oy = (int)(r % G.Ho);
    const int64_t plane = r / G.Ho;
    const TapRange ty = tap_range(oy, G.H, G.upy, G.downy, G.pady0, G.fh);
    const TapRange tx = tap_range(ox, G.W, G.upx, G.downx, G.padx0, G.fw);
    const T* xp = x + plane * HW;
    T acc = T(0);
    for (int a = 0; a < ty.count; ++a) {
      const T* xrow = xp + (int64_t)(ty.in0 + a) * G.W + tx.in0;
      const int i = ty.first + a * G.upy;
      for (int b = 0; b < tx.count; ++b) {
        const int j = tx.first + b * G.upx;
        const T wv = use_smem ? wsm[i * G.fw + j] : tap_weight(f, G, i, j);
        acc += xrow[b] * wv;
      }
    }
    y[idx] = acc;
  }
}

// Separable fast path: one block = a kTileH x kTileW output tile of one plane.
//   xs: the input window the tile needs (rows iy_lo.., cols ix_lo..), zeros outside the image
//   hs: the horizontal pass, hs[r][c] = sum_j xs[r][col(ox0 + c, j)] * wx[j]
//   y:  the vertical pass,   y[oy][ox] = sum_i hs[row(oy, i)][ox - ox0] * wy[i]
// where only the taps with (o*D + tap - pad0) divisible by U are visited, and wy carries gain.
template <class T, int U, int D>
__global__ void __launch_bounds__(kThreads)
    upfirdn2d_sep_kernel(const T* __restrict__ x, const T* __restrict__ f, T* __restrict__ y, const Geom G) {
  // Input rows spanned by a tile: ((TH-1)*D + k - 1) / U + 1 at most (likewise columns).
  constexpr int XR = ((kTileH - 1) * D + kMaxSepTaps - 1) / U + 1;
  constexpr int XC = ((kTileW - 1) * D + kMaxSepTaps - 1) / U + 1;
  __shared__ __align__(16) T xs[XR][XC];
  __shared__ __align__(16) T hs[XR][kTileW];

  const int k = G.fw;
  const int64_t plane = (int64_t)G.plane0 + blockIdx.z;
  const int ox0 = (int)blockIdx.x * kTileW, oy0 = (int)blockIdx.y * kTileH;
  const int ix_lo = ceildiv(ox0 * D - G.padx0, U), iy_lo = ceildiv(oy0 * D - G.pady0, U);
  const T* xp = x + plane * ((int64_t)G.H * G.W);

  // The taps in registers (k <= 8, read from the cache by every thread), not in shared memory:
  // compute-sanitizer racecheck on an H200 reported a WAR hazard between the horizontal pass's
  // reads and hs's writes when the taps shared the tile's shared memory (2026-11-30).
  T wx[kMaxSepTaps], wy[kMaxSepTaps];
#pragma unroll
  for (int t = 0; t < kMaxSepTaps; ++t) {
    const T v = t < k ? f[G.flip ? t : k - 1 - t] : T(0);
    wx[t] = v;
    wy[t] = (T)((double)v * G.gain);
  }
  for (int t = threadIdx.x; t < XR * XC; t += kThreads) {
    const int r = t / XC, c = t % XC, iy = iy_lo + r, ix = ix_lo + c;
    xs[r][c] = ((unsigned)iy < (unsigned)G.H && (unsigned)ix < (unsigned)G.W) ? xp[iy * G.W + ix] : T(0);
  }
  __syncthreads();

  for (int t = threadIdx.x; t < XR * kTileW; t += kThreads) {
    const int r = t / kTileW, c = t % kTileW, ox = ox0 + c;
    T acc = T(0);
#pragma unroll
    for (int j = 0; j < kMaxSepTaps; ++j) {
      const int X = ox * D + j - G.padx0;
      if (j < k && (U == 1 || X % U == 0)) acc += xs[r][floordiv(X, U) - ix_lo] * wx[j];
    }
    hs[r][c] = acc;
  }
  __syncthreads();

  T* yp = y + plane * ((int64_t)G.Ho * G.Wo);
  for (int t = threadIdx.x; t < kTileH * kTileW; t += kThreads) {
    const int r = t / kTileW, c = t % kTileW, oy = oy0 + r, ox = ox0 + c;
    if (oy >= G.Ho || ox >= G.Wo) continue;
    T acc = T(0);
#pragma unroll
    for (int i = 0; i < kMaxSepTaps; ++i) {
      const int Y = oy * D + i - G.pady0;
      if (i < k && (U == 1 || Y % U == 0)) acc += hs[floordiv(Y, U) - iy_lo][c] * wy[i];
    }
    yp[oy * G.Wo + ox] = acc;
  }
}

template <class T, int U, int D>
void launch_sep(const Geom& G0, const T* x, const T* f, T* y) {
  Geom G = G0;
  const dim3 block(kThreads);
  const unsigned gx = (unsigned)((G.Wo + kTileW - 1) / kTileW), gy = (unsigned)((G.Ho + kTileH - 1) / kTileH);
  const int64_t max_z = launch_limits().max_grid_yz;
  for (int64_t p0 = 0; p0 < G.planes; p0 += max_z) {
    G.plane0 = (int)p0;
    const unsigned gz = (unsigned)std::min<int64_t>(max_z, G.planes - p0);
    launch("upfirdn2d_sep_kernel", upfirdn2d_sep_kernel<T, U, D>, dim3(gx, gy, gz), block, 0, x, f, y, G);
  }
}

}  // namespace

template <class T>
void upfirdn2d(const UpFirDn2dParams& p, const T* x, const T* f, T* y) {
  const int64_t total = p.planes * p.out_h * p.out_w;
  if (total == 0) return;
  auto fits = [](int64_t v) { return v >= -kInt32Max && v <= kInt32Max; };
  if (!(fits(p.in_h * p.in_w) && fits(p.out_h * p.out_w) && fits(p.out_h * p.downy + p.fh) &&
        fits(p.out_w * p.downx + p.fw) && fits(p.fh * p.fw) && fits(p.padx0) && fits(p.pady0) &&
        fits(p.planes * p.out_h) && p.planes <= kInt32Max))
    throw CudaError("upfirdn2d: sizes too large for 32-bit indexing");
  Geom G{};
  G.H = (int)p.in_h, G.W = (int)p.in_w, G.Ho = (int)p.out_h, G.Wo = (int)p.out_w;
  G.fh = (int)p.fh, G.fw = (int)p.fw;
  G.upx = (int)p.upx, G.upy = (int)p.upy, G.downx = (int)p.downx, G.downy = (int)p.downy;
  G.padx0 = (int)p.padx0, G.pady0 = (int)p.pady0;
  G.flip = p.flip_filter ? 1 : 0, G.separable = p.separable ? 1 : 0;
  G.gain = p.gain;
  G.planes = p.planes;
  G.plane0 = 0;

  const bool sep_fast = p.separable && p.fh == p.fw && p.fw <= kMaxSepTaps && p.upx == p.upy && p.downx == p.downy &&
                        (p.upx == 1 || p.upx == 2) && (p.downx == 1 || p.downx == 2) &&
                        (p.out_h + kTileH - 1) / kTileH <= launch_limits().max_grid_yz;
  if (sep_fast) {
    if (p.upx == 1 && p.downx == 1) launch_sep<T, 1, 1>(G, x, f, y);
    if (p.upx == 2 && p.downx == 1) launch_sep<T, 2, 1>(G, x, f, y);
    if (p.upx == 1 && p.downx == 2) launch_sep<T, 1, 2>(G, x, f, y);
    if (p.upx == 2 && p.downx == 2) launch_sep<T, 2, 2>(G, x, f, y);
    return;
  }
  const size_t smem = (size_t)(p.fh * p.fw) * sizeof(T);
  const int use_smem = smem <= 16384 ? 1 : 0;
  launch("upfirdn2d_general_kernel", upfirdn2d_general_kernel<T>, blocks_for(total, kThreads), kThreads,
         use_smem ? smem : 0, x, f, y, G, use_smem);
}

template void upfirdn2d<float>(const UpFirDn2dParams&, const float*, const float*, float*);
template void upfirdn2d<double>(const UpFirDn2dParams&, const double*, const double*, double*);

}  // namespace sg::kernels::cuda
