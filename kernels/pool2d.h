// 2-D max and average pooling: the parameters and the per-element math shared by the CPU
// kernels (kernels/cpu/pool2d.h) and the CUDA kernels (kernels/cuda/pool2d.h), which differ
// only in how they walk the elements.
//
// Formula. x is viewed as planes [P = N*C, H, W], the output as [P, Ho, Wo] with
// Ho = (H + 2 py - kh) / sy + 1 (floor; PyTorch's ceil_mode=False), Wo likewise. The window
// of output (oy, ox) covers input rows oy*sy - py ... + kh - 1 and columns ox*sx - px ... +
// kw - 1; positions outside the image are padding.
//   max:  y = x at the window's first largest element in row-major order (padding never
//         wins; a NaN wins, as in PyTorch). With `values`, the element of `values` at that
//         position instead (the adjoint of the max backward).
//   max backward: dx[i] = sum of dy over the outputs whose chosen position is i.
//   avg:  y = (sum of x over the window's in-image positions) / divisor, divisor = kh*kw
//         (count_include_pad) or the number of in-image positions.
//   avg backward: dx[i] = sum over the outputs whose window covers i of dy / divisor.
// The backward variants are gathers (one thread or loop iteration per input element, no
// atomics), so they are deterministic.
#pragma once
#include <cstdint>

#include "kernels/elementwise.h"

namespace sg::kernels {

struct Pool2dParams {
  int64_t planes = 0, H = 0, W = 0, Ho = 0, Wo = 0;
  int64_t kh = 1, kw = 1, sy = 1, sx = 1, py = 0, px = 0;
  bool count_include_pad = true;  // avg only
};

// The in-image part of output (oy, ox)'s window: rows [y0, y1), columns [x0, x1).
struct PoolWindow {
  int64_t y0, y1, x0, x1;
};
SG_HD PoolWindow pool_window(const Pool2dParams& p, int64_t oy, int64_t ox) {
  const int64_t ys = oy * p.sy - p.py, xs = ox * p.sx - p.px;
  return {ys < 0 ? 0 : ys, ys + p.kh > p.H ? p.H : ys + p.kh, xs < 0 ? 0 : xs, xs + p.kw > p.W ? p.W : xs + p.kw};
}

// The outputs whose windows cover input (iy, ix): rows [oy0, oy1), columns [ox0, ox1).
struct PoolCover {
  int64_t oy0, oy1, ox0, ox1;
};
SG_HD int64_t pool_ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
SG_HD PoolCover pool_cover(const Pool2dParams& p, int64_t iy, int64_t ix) {
  // oy*sy - py <= iy  and  iy < oy*sy - py + kh
  int64_t oy0 = pool_ceil_div(iy + p.py - p.kh + 1, p.sy), oy1 = (iy + p.py) / p.sy + 1;
  int64_t ox0 = pool_ceil_div(ix + p.px - p.kw + 1, p.sx), ox1 = (ix + p.px) / p.sx + 1;
  return {oy0 < 0 ? 0 : oy0, oy1 > p.Ho ? p.Ho : oy1, ox0 < 0 ? 0 : ox0, ox1 > p.Wo ? p.Wo : ox1};
}

// The position (y * W + x in the plane) that output (oy, ox) of max pooling takes.
template <class T>
SG_HD int64_t max_pool_argmax(const Pool2dParams& p, const T* xp, int64_t oy, int64_t ox) {
  const PoolWindow w = pool_window(p, oy, ox);
  int64_t best = w.y0 * p.W + w.x0;
  T m = xp[best];
  for (int64_t y = w.y0; y < w.y1; ++y)
    for (int64_t x = w.x0; x < w.x1; ++x) {
      const T v = xp[y * p.W + x];
      if (v > m || (v != v && m == m)) m = v, best = y * p.W + x;
    }
  return best;
}

template <class T>
SG_HD T avg_pool_divisor(const Pool2dParams& p, const PoolWindow& w) {
  return p.count_include_pad ? T(p.kh * p.kw) : T((w.y1 - w.y0) * (w.x1 - w.x0));
}

// Output (oy, ox) of one plane: xp the input plane, vp the values plane (max only).
template <class T>
SG_HD T max_pool_at(const Pool2dParams& p, const T* xp, const T* vp, int64_t oy, int64_t ox) {
  return vp[max_pool_argmax(p, xp, oy, ox)];
}

template <class T>
SG_HD T avg_pool_at(const Pool2dParams& p, const T* xp, int64_t oy, int64_t ox) {
  const PoolWindow w = pool_window(p, oy, ox);
  T s = T(0);
  for (int64_t y = w.y0; y < w.y1; ++y)
    for (int64_t x = w.x0; x < w.x1; ++x) s += xp[y * p.W + x];
  return s / avg_pool_divisor<T>(p, w);
}

// dx at input (iy, ix) of one plane: dyp the output gradient plane, xp the input plane.
template <class T>
SG_HD T max_pool_backward_at(const Pool2dParams& p, const T* dyp, const T* xp, int64_t iy, int64_t ix) {
  const PoolCover c = pool_cover(p, iy, ix);
  const int64_t i = iy * p.W + ix;
  T s = T(0);
  for (int64_t oy = c.oy0; oy < c.oy1; ++oy)
    for (int64_t ox = c.ox0; ox < c.ox1; ++ox)
      if (max_pool_argmax(p, xp, oy, ox) == i) s += dyp[oy * p.Wo + ox];
  return s;
}

template <class T>
SG_HD T avg_pool_backward_at(const Pool2dParams& p, const T* dyp, int64_t iy, int64_t ix) {
  const PoolCover c = pool_cover(p, iy, ix);
  T s = T(0);
  for (int64_t oy = c.oy0; oy < c.oy1; ++oy)
    for (int64_t ox = c.ox0; ox < c.ox1; ++ox)
      s += dyp[oy * p.Wo + ox] / avg_pool_divisor<T>(p, pool_window(p, oy, ox));
  return s;
}

}  // namespace sg::kernels
