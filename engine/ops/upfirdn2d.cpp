// upfirdn2d and the StyleGAN2 resampling helpers built on it (upsample2d, downsample2d,
// fir_filter). Semantics follow stylegan2-ada-pytorch's torch_utils/ops/upfirdn2d.py.
//
// Backward: upfirdn2d is linear in x, and its adjoint is upfirdn2d again with up and down
// swapped, the filter flipped (flip_filter negated) and the pads
//   {fw - x0 - 1, W*upx - Wo*downx + x0 - upx + 1, fh - y0 - 1, H*upy - Ho*downy + y0 - upy + 1},
// so gradients of every order come out of the same kernel. The filter f is a constant: it
// gets no gradient even if it requires grad (StyleGAN2 never trains it).
#include <cmath>

#include "engine/ops/common.h"
#include "kernels/cpu/upfirdn2d.h"
#ifdef SG_HAVE_CUDA
#include "kernels/cuda/upfirdn2d.h"
#endif

namespace sg {
using autograd::Node;
using autograd::record;
using ops::check_cpu;
using ops::check_defined;
using ops::check_same;
namespace kc = kernels::cpu;
#ifdef SG_HAVE_CUDA
namespace kcu = kernels::cuda;
#endif

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
  // Plain locals, not structured bindings: the lambdas below capture them (clang 14 cannot
  // capture a structured binding).
  const std::array<int64_t, 2> fhw = filter_hw(f);
  const int64_t fh = fhw[0], fw = fhw[1];
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t x0 = p.pad[0], x1 = p.pad[1], y0 = p.pad[2], y1 = p.pad[3];
  const int64_t num_w = W * p.upx + x0 + x1 - fw, num_h = H * p.upy + y0 + y1 - fh;
  SG_CHECK(num_w >= 0 && num_h >= 0, op, "empty output for x ", shape_str(x.shape()), ", f ", shape_str(f.shape()),
           ", ", params_str(p));
  const int64_t Wo = num_w / p.downx + 1, Ho = num_h / p.downy + 1;

  Tensor y = empty({N, C, Ho, Wo}, x.dtype(), x.device());
  if (y.numel() > 0 && ops::is_cuda({x, f})) {
#ifdef SG_HAVE_CUDA
    // The filter stays on the device: a 1-D filter is passed as is (separable).
    kcu::UpFirDn2dParams kp;
    kp.planes = N * C;
    kp.in_h = H, kp.in_w = W, kp.out_h = Ho, kp.out_w = Wo, kp.fh = fh, kp.fw = fw;
    kp.separable = f.dim() == 1;
    kp.upx = p.upx, kp.upy = p.upy, kp.downx = p.downx, kp.downy = p.downy;
    kp.padx0 = x0, kp.pady0 = y0;
    kp.flip_filter = p.flip_filter;
    kp.gain = p.gain;
    dispatch_dtype(x.dtype(), [&]<class T>() { kcu::upfirdn2d<T>(kp, x.data<T>(), f.data<T>(), y.data<T>()); });
#else
    check_cpu(op, {x, f});
#endif
  } else if (y.numel() > 0) {
    dispatch_dtype(x.dtype(), [&]<class T>() {
      // A 1-D filter is separable: expand to outer(f, f) (gain applied once, by the kernel).
      std::vector<T> f2(fh * fw);
      const T* fp = f.data<T>();
      if (f.dim() == 1)
        for (int64_t i = 0; i < fh; ++i)
          for (int64_t j = 0; j < fw; ++j) f2[i * fw + j] = fp[i] * fp[j];
      else
        std::copy(fp, fp + fh * fw, f2.begin());
      kc::UpFirDn2dParams kp;
      kp.planes = N * C;
      kp.in_h = H, kp.in_w = W, kp.out_h = Ho, kp.out_w = Wo, kp.fh = fh, kp.fw = fw;
      kp.upx = p.upx, kp.upy = p.upy, kp.downx = p.downx, kp.downy = p.downy;
      kp.padx0 = x0, kp.pady0 = y0;
      kp.flip_filter = p.flip_filter;
      kp.gain = p.gain;
      kc::upfirdn2d<T>(kp, x.data<T>(), f2.data(), y.data<T>());
    });
  }

  Tensor fc = f.detach();  // constant: no gradient, and no graph kept alive through it
  record("upfirdn2d", {x}, {y},
         [fc, p, xs = x.shape(), H, W, Ho, Wo, fh, fw](const std::vector<Tensor>& g, const Node&) {
           UpFirDn q;
           q.upx = p.downx, q.upy = p.downy, q.downx = p.upx, q.downy = p.upy;
           q.pad = {fw - p.pad[0] - 1, W * p.upx - Wo * p.downx + p.pad[0] - p.upx + 1, fh - p.pad[2] - 1,
                    H * p.upy - Ho * p.downy + p.pad[2] - p.upy + 1};
           q.gain = p.gain;
           q.flip_filter = !p.flip_filter;
           Tensor dx = upfirdn2d(g[0], fc, q);
           SG_CHECK(dx.shape() == xs, "upfirdn2d backward", "gradient shape ", shape_str(dx.shape()),
                    " != input shape ", shape_str(xs), " (", params_str(p), ")");
           return std::vector<Tensor>{dx};
         });
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
