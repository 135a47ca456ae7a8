// upfirdn2d and the StyleGAN2 resampling helpers built on it (upsample2d, downsample2d,
// fir_filter). Semantics follow stylegan2-ada-pytorch's torch_utils/ops/upfirdn2d.py.
//
// Backward (engine/derivatives.cpp): upfirdn2d is linear in x, and its adjoint is upfirdn2d
// again (up and down swapped, the filter flipped), so gradients of every order come out of
// the same kernel. The filter f is a constant: it gets no gradient even if it requires grad
// (StyleGAN2 never trains it).
#include <cmath>
#include <functional>

#include "engine/derivatives.h"
#include "engine/ops/common.h"
#include "kernels/cpu/upfirdn2d.h"
#include "kernels/cuda/upfirdn2d.h"

namespace sg {
using autograd::record;
using ops::check_defined;
using ops::check_same;
namespace kc = kernels::cpu;
namespace kcu = kernels::cuda;

namespace {

// Python's floor division (the padding formulas can go negative).
int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Filter height and width: a 1-D filter [k] is separable, k x k.
std::array<int64_t, 2> filter_hw(const Tensor& f) {
  return f.dim() == 1 ? std::array<int64_t, 2>{f.size(0), f.size(0)} : std::array<int64_t, 2>{f.size(0), f.size(1)};
}

std::string params_str(const UpFirDn& p) {
  return str("up (", p.upx, ", ", p.upy, "), down (", p.downx, ", ", p.downy, "), pad (", p.pad[0], ", ", p.pad[1],
             ", ", p.pad[2], ", ", p.pad[3], ")");
}

}  // namespace

Tensor upfirdn2d(const Tensor& x, const Tensor& f, const UpFirDn& p) {
  const char* op = "upfirdn2d";
  check_defined(op, x, "x");
  check_defined(op, f, "f");
  SG_CHECK(x.dim() == 4, op, "x must be 4-D [N, C, H, W], got ", shape_str(x.shape()));
  SG_CHECK(f.dim() == 1 || f.dim() == 2, op, "f must be 1-D [k] or 2-D [fh, fw], got ", shape_str(f.shape()));
  SG_CHECK(f.numel() >= 1, op, "empty filter ", shape_str(f.shape()));
  check_same(op, {x, f});
  SG_CHECK(p.upx >= 1 && p.upy >= 1 && p.downx >= 1 && p.downy >= 1, op, "up and down must be >= 1; ", params_str(p));
  const std::array<int64_t, 2> fhw = filter_hw(f);
  const int64_t fh = fhw[0], fw = fhw[1];
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t num_w = W * p.upx + p.pad[0] + p.pad[1] - fw, num_h = H * p.upy + p.pad[2] + p.pad[3] - fh;
  SG_CHECK(num_w >= 0 && num_h >= 0, op, "empty output for x ", shape_str(x.shape()), ", f ", shape_str(f.shape()),
           ", ", params_str(p));
  const int64_t Wo = num_w / p.downx + 1, Ho = num_h / p.downy + 1;

  Tensor y = empty({N, C, Ho, Wo}, x.dtype(), x.device());
  kernels::UpFirDn2dParams kp;
  kp.planes = N * C;
  kp.in_h = H, kp.in_w = W, kp.out_h = Ho, kp.out_w = Wo, kp.fh = fh, kp.fw = fw;
  kp.separable = f.dim() == 1;
  kp.upx = p.upx, kp.upy = p.upy, kp.downx = p.downx, kp.downy = p.downy;
  kp.padx0 = p.pad[0], kp.pady0 = p.pad[2];
  kp.flip_filter = p.flip_filter;
  kp.gain = p.gain;
  if (y.numel() > 0)
    ops::run_kernel(
        op, x.dtype(), {x, f}, [&]<class T>() { kc::upfirdn2d<T>(kp, x.data<T>(), f.data<T>(), y.data<T>()); },
        [&]<class T>() { kcu::upfirdn2d<T>(kp, x.data<T>(), f.data<T>(), y.data<T>()); });
  // f is a constant: saved detached, so no graph is kept alive through it.
  record(op, {x}, {y}, std::bind_front(derivatives::upfirdn2d, f.detach(), p, x.shape(), y.shape()));
  return y;
}

Tensor upsample2d(const Tensor& x, const Tensor& f, int64_t up) {
  check_defined("upsample2d", f, "f");
  SG_CHECK(up >= 1, "upsample2d", "up must be >= 1, got ", up);
  SG_CHECK(f.dim() == 1 || f.dim() == 2, "upsample2d", "f must be 1-D or 2-D, got ", shape_str(f.shape()));
  const auto [fh, fw] = filter_hw(f);
  UpFirDn p;
  p.upx = p.upy = up;
  p.pad = {floordiv(fw + up - 1, 2), floordiv(fw - up, 2), floordiv(fh + up - 1, 2), floordiv(fh - up, 2)};
  p.gain = (double)(up * up);
  return upfirdn2d(x, f, p);
}

Tensor downsample2d(const Tensor& x, const Tensor& f, int64_t down) {
  check_defined("downsample2d", f, "f");
  SG_CHECK(down >= 1, "downsample2d", "down must be >= 1, got ", down);
  SG_CHECK(f.dim() == 1 || f.dim() == 2, "downsample2d", "f must be 1-D or 2-D, got ", shape_str(f.shape()));
  const auto [fh, fw] = filter_hw(f);
  UpFirDn p;
  p.downx = p.downy = down;
  p.pad = {floordiv(fw - down + 1, 2), floordiv(fw - down, 2), floordiv(fh - down + 1, 2), floordiv(fh - down, 2)};
  return upfirdn2d(x, f, p);
}

Tensor fir_filter(const std::vector<double>& taps, DType t) {
  SG_CHECK(!taps.empty(), "fir_filter", "no taps");
  double s = 0;
  for (double v : taps) s += v;
  SG_CHECK(s != 0 && std::isfinite(s), "fir_filter", "taps must have a finite, nonzero sum, got ", s);
  std::vector<double> v(taps);
  for (double& e : v) e /= s;
  return from_vector(v, {(int64_t)v.size()}, t);
}

}  // namespace sg
