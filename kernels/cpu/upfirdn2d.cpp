// upfirdn2d on the CPU: see upfirdn2d.h for the formula, layout, variants and benchmark.
#include "kernels/cpu/upfirdn2d.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/loops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/scratch.h"

namespace sg::kernels::cpu {

namespace {

struct UpFirDnScratch;  // the separable variant's rows (kernels/cpu/scratch.h)

// Work (multiply-adds) below which a call runs on one thread.
constexpr int64_t kParallelWork = int64_t(1) << 15;

// The taps of one output index along one axis that land on real input samples:
// filter taps first, first + up, ... (count of them) read inputs in0, in0 + 1, ...
struct TapRange {
  int64_t first = 0;  // first filter tap index
  int64_t in0 = 0;    // input sample it reads
  int64_t count = 0;
};

// Output o reads upsampled position k = o*down + i - pad0 for tap i; k must be a multiple
// of up in [0, in*up).
std::vector<TapRange> tap_ranges(int64_t out, int64_t in, int64_t up, int64_t down, int64_t pad0, int64_t taps) {
  std::vector<TapRange> r(out);
  for (int64_t o = 0; o < out; ++o) {
    const int64_t base = o * down - pad0;
    const int64_t imin = std::max<int64_t>(0, -base);
    int64_t rem = (base + imin) % up;
    if (rem < 0) rem += up;
    const int64_t i0 = imin + (rem == 0 ? 0 : up - rem);
    TapRange t;
    if (i0 < taps) {
      const int64_t in0 = (base + i0) / up;
      if (in0 < in) {
        t.first = i0;
        t.in0 = in0;
        t.count = std::min((taps - 1 - i0) / up + 1, in - in0);
      }
    }
    r[o] = t;
  }
  return r;
}

// The separable variant, on bands of output rows of one plane at a time. For a band, the
// part of the upsampled, padded input u it reads is built in scratch as P [rows][Wp] (zeros
// where u has inserted zeros or padding; Wp = Wq * downx covers every column the band's
// outputs read); then
//   horizontal, one flat loop over the whole band:
//     T[r * Wq + q] = sum_j wx[j] * P[r][q * downx + j]   (as the flat index i = r * Wq + q:
//     sum_j wx[j] * P[i * downx + j]; the last columns of a row wrap into the next row and
//     are never read),
//   vertical, per output row: y[oy][ox] = sum_i wy[i] * T[oy * downy + i - band start][ox].
// The loops are long (a whole band, not a row of a few dozen outputs), keep the k products
// of a sum in registers (K = k known at compile time for k <= kMaxFusedTaps), and have no
// bounds or phase checks: the padding and inserted zeros are real zeros in P, which costs up
// to up x up more multiply-adds on zeros but vectorizes fully. The products are added in tap
// order starting from the first, as the tap-by-tap loops did before, and adding a product
// with one of the zeros changes no nonzero sum (at most the sign of an exact zero), so the
// results are those of the old variant.
constexpr int64_t kBandFloats = int64_t(1) << 14;  // P's size per band: 64 KiB (L2)
constexpr int kMaxFusedTaps = 8;

// out[i] = sum_{j<k} w[j] * in[i * D + j] for i < n, the sum in order j = 0, 1, ...
// (K: k at compile time, 0: at run time).
template <int K, int64_t D, class T>
void fir_pass(T* __restrict out, const T* __restrict in, const T* w, int64_t k, int64_t n) {
  if constexpr (K > 0) {
    T wk[K];
    for (int j = 0; j < K; ++j) wk[j] = w[j];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      T acc = T(0);  // not wk[0] * in[i * D]: acc would be free to fuse either product
      for (int j = 0; j < K; ++j) acc += wk[j] * in[i * D + j];
      out[i] = acc;
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = w[0] * in[i * D];
    for (int64_t j = 1; j < k; ++j) strided_axpy<1, D>(out, in + j, w[j], n);
  }
}

// out[x] = sum_{i<k} w[i] * rows[i * ld + x] for x < n, in order i = 0, 1, ...
template <int K, class T>
void fir_rows(T* __restrict out, const T* __restrict rows, int64_t ld, const T* w, int64_t k, int64_t n) {
  if constexpr (K > 0) {
    T wk[K];
    for (int i = 0; i < K; ++i) wk[i] = w[i];
#pragma omp simd
    for (int64_t x = 0; x < n; ++x) {
      T acc = T(0);
      for (int i = 0; i < K; ++i) acc += wk[i] * rows[i * ld + x];
      out[x] = acc;
    }
  } else {
#pragma omp simd
    for (int64_t x = 0; x < n; ++x) out[x] = w[0] * rows[x];
    for (int64_t i = 1; i < k; ++i) strided_axpy<1, 1>(out, rows + i * ld, w[i], n);
  }
}

template <int K, class T>
void upfirdn2d_separable_k(const UpFirDn2dParams& p, const T* x, const T* f, T* y) {
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w, k = p.fh;
  if (p.planes <= 0 || Ho <= 0 || Wo <= 0) return;
  const int64_t ux = p.upx, uy = p.upy, dx = p.downx, dy = p.downy, px = p.padx0, py = p.pady0;
  // Oriented taps: wx[j] multiplies u[.][ox*downx + j], wy[i] (with the gain) u[oy*downy + i][.].
  std::vector<T> wx(k), wy(k);
  for (int64_t i = 0; i < k; ++i) {
    const double w = (double)f[p.flip_filter ? i : k - 1 - i];
    wx[i] = (T)w, wy[i] = (T)(w * p.gain);
  }
  const int64_t Wq = ((Wo - 1) * dx + k + dx - 1) / dx, Wp = Wq * dx;
  const int64_t band = std::clamp<int64_t>((kBandFloats / Wp - k) / dy + 1, 1, Ho);
  const int64_t bands = (Ho + band - 1) / band, max_rows = (band - 1) * dy + k;
  // The input columns ix that land in P's rows: c = px + ix * ux in [0, Wp).
  const int64_t ix0 = px >= 0 ? 0 : (-px + ux - 1) / ux;
  const int64_t ix1 = std::max(ix0, std::min<int64_t>(W, Wp - 1 - px < 0 ? 0 : (Wp - 1 - px) / ux + 1));
  const int64_t cols = ix1 - ix0;
  const int64_t work = p.planes * (max_rows * Wp * bands + Ho * Wo) * k;

  parallel_for(p.planes * bands, work > kParallelWork, [&](int64_t t0, int64_t t1) {
    // P gets k floats of zeros past its last row: the flat horizontal loop reads up to there.
    T* const P = thread_scratch<UpFirDnScratch, T>(0, max_rows * Wp + k);
    T* const Tm = thread_scratch<UpFirDnScratch, T>(1, max_rows * Wq);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t plane = task / bands, oy0 = (task % bands) * band, oy1 = std::min(Ho, oy0 + band);
      const int64_t rows = (oy1 - oy0 - 1) * dy + k;
      const T* xp = x + plane * H * W;
      // P[r] is row oy0 * dy + r of u: zeros, then the input row's samples where they land.
#pragma omp simd
      for (int64_t i = 0; i < rows * Wp + k; ++i) P[i] = T(0);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t s = oy0 * dy + r - py;  // its row in the upsampled input
        if (s < 0 || s % uy != 0 || s / uy >= H) continue;
        const T* __restrict xr = xp + (s / uy) * W + ix0;
        T* __restrict pr = P + r * Wp + px + ix0 * ux;
        if (ux == 1) {
#pragma omp simd
          for (int64_t c = 0; c < cols; ++c) pr[c] = xr[c];
        } else {
          for (int64_t c = 0; c < cols; ++c) pr[c * ux] = xr[c];
        }
      }
      // Horizontal: Tm [rows][Wq] as one flat loop over the band.
      const int64_t n = rows * Wq;
      if (dx == 1)
        fir_pass<K, 1>(Tm, P, wx.data(), k, n);
      else if (dx == 2)
        fir_pass<K, 2>(Tm, P, wx.data(), k, n);
      else {
        // Tap by tap. (A sum over j inside the loop over i becomes, for k >= 8, GCC's in-order
        // vector reduction, whose products are rounded before they are added: other bits.)
        std::fill(Tm, Tm + n, T(0));
        for (int64_t j = 0; j < k; ++j)
          for (int64_t i = 0; i < n; ++i) Tm[i] += wx[j] * P[i * dx + j];
      }
      // Vertical: whole output rows.
      for (int64_t oy = oy0; oy < oy1; ++oy)
        fir_rows<K>(y + (plane * Ho + oy) * Wo, Tm + (oy - oy0) * dy * Wq, Wq, wy.data(), k, Wo);
    }
  });
}

template <class T>
void upfirdn2d_separable(const UpFirDn2dParams& p, const T* x, const T* f, T* y) {
  static_assert(kMaxFusedTaps == 8);
  switch (p.fh) {
    case 1:
      return upfirdn2d_separable_k<1>(p, x, f, y);
    case 2:
      return upfirdn2d_separable_k<2>(p, x, f, y);
    case 3:
      return upfirdn2d_separable_k<3>(p, x, f, y);
    case 4:
      return upfirdn2d_separable_k<4>(p, x, f, y);  // StyleGAN2's [1, 3, 3, 1]
    case 5:
      return upfirdn2d_separable_k<5>(p, x, f, y);
    case 6:
      return upfirdn2d_separable_k<6>(p, x, f, y);
    case 7:
      return upfirdn2d_separable_k<7>(p, x, f, y);
    case 8:
      return upfirdn2d_separable_k<8>(p, x, f, y);
    default:
      return upfirdn2d_separable_k<0>(p, x, f, y);
  }
}

// The general variant (any 2-D filter): one direct loop per output pixel.
template <class T>
void upfirdn2d_direct(const UpFirDn2dParams& p, const T* x, const T* f, T* y) {
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w, fh = p.fh, fw = p.fw;
  // Oriented, gain-scaled weights: w[i][j] multiplies u[oy*downy + i][ox*downx + j].
  std::vector<T> w(fh * fw);
  for (int64_t i = 0; i < fh; ++i)
    for (int64_t j = 0; j < fw; ++j) {
      const int64_t src = p.flip_filter ? i * fw + j : (fh - 1 - i) * fw + (fw - 1 - j);
      w[i * fw + j] = (T)((double)f[src] * p.gain);
    }
  const std::vector<TapRange> ry = tap_ranges(Ho, H, p.upy, p.downy, p.pady0, fh);
  const std::vector<TapRange> rx = tap_ranges(Wo, W, p.upx, p.downx, p.padx0, fw);
  const int64_t upx = p.upx, upy = p.upy;
  const T* wp = w.data();
  const TapRange* rxp = rx.data();
  const int64_t rows = p.planes * Ho;

  const bool parallel = rows * Wo * (fh / upy + 1) * (fw / upx + 1) > kParallelWork;
  parallel_for(rows, parallel, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t plane = r / Ho, oy = r % Ho;
      const T* xp = x + plane * H * W;
      T* yp = y + r * Wo;
      const TapRange ty = ry[oy];
      for (int64_t ox = 0; ox < Wo; ++ox) {
        const TapRange tx = rxp[ox];
        T acc = 0;
        for (int64_t a = 0; a < ty.count; ++a) {
          const T* xrow = xp + (ty.in0 + a) * W + tx.in0;
          const T* wrow = wp + (ty.first + a * upy) * fw + tx.first;
          for (int64_t b = 0; b < tx.count; ++b) acc += xrow[b] * wrow[b * upx];
        }
        yp[ox] = acc;
      }
    }
  });
}

}  // namespace

template <class T>
void upfirdn2d(const UpFirDn2dParams& p, const T* x, const T* f, T* y) {
  if (p.separable && p.in_h > 0 && p.in_w > 0) return upfirdn2d_separable(p, x, f, y);
  if (p.separable) {  // an empty input (output made of padding only): the direct loop handles it
    std::vector<T> f2(p.fh * p.fw);
    for (int64_t i = 0; i < p.fh; ++i)
      for (int64_t j = 0; j < p.fw; ++j) f2[i * p.fw + j] = f[i] * f[j];
    UpFirDn2dParams q = p;
    q.separable = false;
    return upfirdn2d_direct(q, x, f2.data(), y);
  }
  upfirdn2d_direct(p, x, f, y);
}

template void upfirdn2d<float>(const UpFirDn2dParams&, const float*, const float*, float*);
template void upfirdn2d<double>(const UpFirDn2dParams&, const double*, const double*, double*);

}  // namespace sg::kernels::cpu
