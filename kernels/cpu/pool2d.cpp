// Pooling on the CPU: see pool2d.h for the formula, layout and variants.
#include "kernels/cpu/pool2d.h"

#include "kernels/cpu/parallel.h"

namespace sg::kernels::cpu {

template <class T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, const T* values, T* y) {
  if (!values) values = x;
  const int64_t in = p.H * p.W, out = p.Ho * p.Wo;
  parallel_for(p.planes, true, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t oy = 0; oy < p.Ho; ++oy)
        for (int64_t ox = 0; ox < p.Wo; ++ox)
          y[c * out + oy * p.Wo + ox] = max_pool_at(p, x + c * in, values + c * in, oy, ox);
  });
}

template <class T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const T* x, T* dx) {
  const int64_t in = p.H * p.W, out = p.Ho * p.Wo;
  parallel_for(p.planes, true, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t iy = 0; iy < p.H; ++iy)
        for (int64_t ix = 0; ix < p.W; ++ix)
          dx[c * in + iy * p.W + ix] = max_pool_backward_at(p, dy + c * out, x + c * in, iy, ix);
  });
}

template <class T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y) {
  const int64_t in = p.H * p.W, out = p.Ho * p.Wo;
  parallel_for(p.planes, true, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t oy = 0; oy < p.Ho; ++oy)
        for (int64_t ox = 0; ox < p.Wo; ++ox) y[c * out + oy * p.Wo + ox] = avg_pool_at(p, x + c * in, oy, ox);
  });
}

template <class T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx) {
  const int64_t in = p.H * p.W, out = p.Ho * p.Wo;
  parallel_for(p.planes, true, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t iy = 0; iy < p.H; ++iy)
        for (int64_t ix = 0; ix < p.W; ++ix) dx[c * in + iy * p.W + ix] = avg_pool_backward_at(p, dy + c * out, iy, ix);
  });
}

#define SG_POOL2D_INSTANTIATE(T)                                                     \
  template void max_pool2d_forward<T>(const Pool2dParams&, const T*, const T*, T*);  \
  template void max_pool2d_backward<T>(const Pool2dParams&, const T*, const T*, T*); \
  template void avg_pool2d_forward<T>(const Pool2dParams&, const T*, T*);            \
  template void avg_pool2d_backward<T>(const Pool2dParams&, const T*, T*);
SG_POOL2D_INSTANTIATE(float)
SG_POOL2D_INSTANTIATE(double)
#undef SG_POOL2D_INSTANTIATE

}  // namespace sg::kernels::cpu
