// upfirdn2d on the CPU: see upfirdn2d.h for the formula, layout, variants and benchmark.
#include "kernels/cpu/upfirdn2d.h"

#include <algorithm>
#include <numeric>
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

// One tap's share of a 1-D pass, seen from the tap: tap i (oriented weight w) adds
// w * in[m0 + t*sm] to out[o0 + t*so] for t in [t0, t1). The outputs a tap reaches form an
// arithmetic progression: o*down + i - pad0 must be a multiple of up, which repeats every
// so = up / g outputs (g = gcd(up, down)), and the input index then advances by sm = down / g.
struct TapRun {
  double w = 0;
  int64_t o0 = 0, m0 = 0, t0 = 0, t1 = 0;  // t1 <= t0: the tap reaches no output
};

int64_t floordiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

std::vector<TapRun> tap_runs(int64_t out, int64_t in, int64_t up, int64_t down, int64_t pad0, int64_t taps,
                             const std::vector<double>& w, int64_t so, int64_t sm) {
  std::vector<TapRun> runs;
  for (int64_t i = 0; i < taps; ++i) {
    TapRun r;
    r.w = w[i];
    int64_t o0 = 0;
    while (o0 < so && ((o0 * down + i - pad0) % up + up) % up != 0) ++o0;
    if (o0 == so) continue;  // i - pad0 is not a multiple of g: the tap only ever meets inserted zeros
    r.o0 = o0;
    r.m0 = floordiv(o0 * down + i - pad0, up);
    // t with 0 <= m0 + t*sm < in and o0 + t*so < out (and t >= 0).
    r.t0 = std::max<int64_t>(0, r.m0 >= 0 ? 0 : (-r.m0 + sm - 1) / sm);
    const int64_t t_in = r.m0 >= in ? 0 : (in - 1 - r.m0) / sm + 1;
    const int64_t t_out = o0 >= out ? 0 : (out - 1 - o0) / so + 1;
    r.t1 = std::min(t_in, t_out);
    if (r.t1 > r.t0) runs.push_back(r);
  }
  return runs;
}

// One tap's run of a horizontal pass, out[q * SO] += w * in[q * SM] for q in [t0, t1): with
// the strides known at compile time (loops.h strided_axpy) for the common cases: no
// resampling, down 2, up 2.
template <int64_t SO, int64_t SM, class T>
void tap_pass(T* out, const T* in, T w, int64_t t0, int64_t t1) {
  if (t1 > t0) strided_axpy<SO, SM>(out + t0 * SO, in + t0 * SM, w, t1 - t0);
}

// The separable variant: a horizontal pass per input row into tmp [H, Wo], tap by tap
// (contiguous loops when up = down = 1 along x), then a vertical pass per output row that
// adds whole tmp rows (vectorized over ox). k + k multiply-adds per output pixel instead of
// k * k, and the inner loops run over rows rather than taps.
template <class T>
void upfirdn2d_separable(const UpFirDn2dParams& p, const T* x, const T* f, T* y) {
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w, k = p.fh;
  // Oriented taps: wx[j] multiplies u[ox*downx + j], wy[i] multiplies u[oy*downy + i].
  std::vector<double> wx(k), wy(k);
  for (int64_t i = 0; i < k; ++i) {
    wx[i] = (double)f[p.flip_filter ? i : k - 1 - i];
    wy[i] = wx[i] * p.gain;
  }
  const int64_t gx = std::gcd(p.upx, p.downx);
  const int64_t so = p.upx / gx, sm = p.downx / gx;
  const std::vector<TapRun> runs = tap_runs(Wo, W, p.upx, p.downx, p.padx0, k, wx, so, sm);
  const std::vector<TapRange> ry = tap_ranges(Ho, H, p.upy, p.downy, p.pady0, k);
  std::vector<T> wyt(k);
  for (int64_t i = 0; i < k; ++i) wyt[i] = (T)wy[i];
  const int64_t upy = p.upy;
  const int64_t work = p.planes * (H * Wo + Ho * Wo) * (k / std::min(p.upx, p.upy) + 1);

  parallel_for(p.planes, work > kParallelWork, [&](int64_t plane0, int64_t plane1) {
    T* const tmp = thread_scratch<UpFirDnScratch, T>(0, H * Wo);  // every row is filled below
    for (int64_t plane = plane0; plane < plane1; ++plane) {
      const T* xp = x + plane * H * W;
      T* yp = y + plane * Ho * Wo;
      // Horizontal: tmp[iy][ox] = sum_j wx[j] * u[iy][ox*downx + j].
      for (int64_t iy = 0; iy < H; ++iy) {
        T* t = tmp + iy * Wo;
        const T* xr = xp + iy * W;
        std::fill(t, t + Wo, T(0));
        for (const TapRun& r : runs) {
          const T w = (T)r.w;
          T* to = t + r.o0;
          const T* xi = xr + r.m0;
          if (so == 1 && sm == 1)
            tap_pass<1, 1>(to, xi, w, r.t0, r.t1);
          else if (so == 1 && sm == 2)  // downsampling by 2
            tap_pass<1, 2>(to, xi, w, r.t0, r.t1);
          else if (so == 2 && sm == 1)  // upsampling by 2
            tap_pass<2, 1>(to, xi, w, r.t0, r.t1);
          else
            for (int64_t q = r.t0; q < r.t1; ++q) to[q * so] += w * xi[q * sm];
        }
      }
      // Vertical: y[oy][ox] = sum_i wy[i] * tmp-upsampled[oy*downy + i][ox].
      for (int64_t oy = 0; oy < Ho; ++oy) {
        T* yr = yp + oy * Wo;
        const TapRange ty = ry[oy];
        if (ty.count == 0) {
          std::fill(yr, yr + Wo, T(0));
          continue;
        }
        {
          const T w = wyt[ty.first];
          const T* tr = tmp + ty.in0 * Wo;
#pragma omp simd
          for (int64_t ox = 0; ox < Wo; ++ox) yr[ox] = w * tr[ox];
        }
        for (int64_t a = 1; a < ty.count; ++a) {
          const T w = wyt[ty.first + a * upy];
          const T* tr = tmp + (ty.in0 + a) * Wo;
#pragma omp simd
          for (int64_t ox = 0; ox < Wo; ++ox) yr[ox] += w * tr[ox];
        }
      }
    }
  });
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
