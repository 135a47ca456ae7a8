// upfirdn2d on the CPU: see upfirdn2d.h for the formula, layout, variant and benchmark.
#include "kernels/cpu/upfirdn2d.h"

#include <algorithm>
#include <vector>

namespace sg::kernels::cpu {

namespace {

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

}  // namespace

template <class T>
void upfirdn2d(const UpFirDn2dParams& p, const T* x, const T* f, T* y) {
  if (p.separable) {  // expand to outer(f, f): the loop below takes a 2-D filter
    std::vector<T> f2(p.fh * p.fw);
    for (int64_t i = 0; i < p.fh; ++i)
      for (int64_t j = 0; j < p.fw; ++j) f2[i * p.fw + j] = f[i] * f[j];
    UpFirDn2dParams q = p;
    q.separable = false;
    return upfirdn2d(q, x, f2.data(), y);
  }
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

#pragma omp parallel for schedule(static) if (rows * Wo * (fh / upy + 1) * (fw / upx + 1) > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
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
}

template void upfirdn2d<float>(const UpFirDn2dParams&, const float*, const float*, float*);
template void upfirdn2d<double>(const UpFirDn2dParams&, const double*, const double*, double*);

}  // namespace sg::kernels::cpu
