// Modulated convolution (StyleGAN2 weight demodulation) and conv2d_resample.
//
// Both are compositions of differentiable ops (conv2d, conv_transpose2d, upfirdn2d, mul,
// rsqrt, sum), so their first and second derivatives come from those ops' backwards.
//
//   fused path:      w'[n,o,i,k] = w[o,i,k] * s[n,i];  d[n,o] = rsqrt(sum_{i,k} w'^2 + eps)
//                    y[n] = conv(x[n], w' * d)   as ONE grouped conv (groups = N)
//   modulate-activations path:
//                    y[n] = conv(x[n] * s[n], w) * d[n],  d = rsqrt(s^2 @ sum_k(w^2)^T + eps)
// The two give the same numbers (tests check it).
//
// Fused path, no up / down: a forward-only fast path on both devices, one autograd node whose
// backward is the composite's gradient written with differentiable ops, so every order of
// derivative is the composite's (derivatives::modulated_conv2d_fused). That gradient is written
// in the modulate-activations form, so its convs share one weight across the batch (groups 1:
// the tensor-core GEMM on CUDA) rather than being N per-image convs.
//   CUDA (kernels/cuda/modconv.h): dcoefs with one small kernel, y with one implicit-GEMM
//        kernel that modulates the weight as it loads it and demodulates in its epilogue
//        (w' is never materialised).
//   CPU (kernels/cpu/modconv.h): w' * dcoefs in one pass, then the grouped conv kernel.
// With up or down, both devices run the composite.
#include <functional>
#include <vector>

#include "engine/derivatives.h"
#include "engine/device.h"
#include "engine/ops/common.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/modconv.h"
#include "kernels/cuda/modconv.h"

namespace sg {

namespace {
std::pair<int64_t, int64_t> filter_size(const Tensor& f) {
  if (f.dim() == 1) return {f.size(0), f.size(0)};
  return {f.size(1), f.size(0)};  // (fw, fh)
}

// The fast path (fused, up = down = 1), CPU or CUDA. Inputs already checked.
Tensor fused_modconv(const Tensor& x, const Tensor& weight, const Tensor& styles, const ModConv& p) {
  const char* op = "modulated_conv2d";
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  SG_CHECK(p.padding >= 0, op, "padding must be >= 0, got ", p.padding);
  const int64_t Ho = H + 2 * p.padding - kh + 1, Wo = W + 2 * p.padding - kw + 1;
  SG_CHECK(kh >= 1 && kw >= 1 && Ho >= 1 && Wo >= 1, op, "input x ", shape_str(x.shape()), " with padding ", p.padding,
           " is smaller than the kernel ", shape_str(weight.shape()));
  Tensor y = empty({N, O, Ho, Wo}, x.dtype(), x.device());
  if (y.numel() > 0) {
    ops::run_kernel(
        op, x.dtype(), {x, weight, styles},
        [&]<class T>() {
          std::vector<T> wd(N * O * C * kh * kw);
          kernels::cpu::modconv_weights<T>(weight.data<T>(), styles.data<T>(), wd.data(), nullptr, N, O, C, kh * kw,
                                           p.eps, p.demodulate);
          kernels::Conv2dParams kp;  // one grouped conv: the batch folded into the channels
          kp.N = 1, kp.Cin = N * C, kp.H = H, kp.W = W, kp.Cout = N * O, kp.kh = kh, kp.kw = kw;
          kp.py = kp.px = p.padding;
          kp.groups = N;
          kernels::cpu::conv2d_forward<T>(kp, x.data<T>(), wd.data(), y.data<T>());
        },
        [&]<class T>() {
          Tensor dcoefs;
          if (p.demodulate) {
            dcoefs = empty({N, O}, x.dtype(), x.device());
            kernels::cuda::modconv_dcoefs<T>(weight.data<T>(), styles.data<T>(), dcoefs.data<T>(), N, O, C, kh * kw,
                                             p.eps);
          }
          const auto math = ops::cuda_conv_math();
          Tensor ws = ops::cuda_workspace(
              kernels::cuda::modconv_forward_workspace<T>(N, C, H, W, O, kh, kw, p.padding, math), x.device());
          kernels::cuda::modconv_forward<T>(x.data<T>(), weight.data<T>(), styles.data<T>(),
                                            dcoefs.defined() ? dcoefs.data<T>() : nullptr, y.data<T>(), N, C, H, W, O,
                                            kh, kw, p.padding, math, nullptr, ops::workspace_ptr(ws));
        });
  }
  ModConv q = p;
  q.resample_filter = Tensor();  // unused without up / down; keep no tensor alive through it
  autograd::record(op, {x, weight, styles}, {y},
                   std::bind_front(derivatives::modulated_conv2d_fused, x, weight, styles, q));
  return y;
}
}  // namespace

Tensor conv2d_resample(const Tensor& x, const Tensor& w, const Tensor& f, int64_t up, int64_t down, int64_t padding,
                       int64_t groups) {
  const char* op = "conv2d_resample";
  ops::check_defined(op, x, "x");
  ops::check_defined(op, w, "weight");
  SG_CHECK(up == 1 || up == 2, op, "up must be 1 or 2, got ", up);
  SG_CHECK(down == 1 || down == 2, op, "down must be 1 or 2, got ", down);
  SG_CHECK(padding >= 0, op, "padding must be >= 0, got ", padding);
  SG_CHECK(w.dim() == 4, op, "weight must be 4-D, got ", shape_str(w.shape()));
  if (up == 1 && down == 1) return conv2d(x, w, {1, 1}, {padding, padding}, groups);
  ops::check_defined(op, f, "resample filter");
  const int64_t out_ch = w.size(0), in_per_group = w.size(1), kh = w.size(2), kw = w.size(3);
  auto [fw, fh] = filter_size(f);
  int64_t px0 = padding, px1 = padding, py0 = padding, py1 = padding;
  if (up > 1) {
    px0 += (fw + up - 1) / 2, px1 += (fw - up) / 2;
    py0 += (fh + up - 1) / 2, py1 += (fh - up) / 2;
  }
  if (down > 1) {
    px0 += (fw - down + 1) / 2, px1 += (fw - down) / 2;
    py0 += (fh - down + 1) / 2, py1 += (fh - down) / 2;
  }
  auto fir = [&](const Tensor& t, int64_t u, int64_t d, std::array<int64_t, 4> pad, double gain) {
    UpFirDn p;
    p.upx = p.upy = u;
    p.downx = p.downy = d;
    p.pad = pad;
    p.gain = gain;
    return upfirdn2d(t, f, p);
  };
  const bool one_by_one = kh == 1 && kw == 1;
  if (one_by_one && down > 1 && up == 1)  // downsample first, then the cheap 1x1 conv
    return conv2d(fir(x, 1, down, {px0, px1, py0, py1}, 1.0), w, {1, 1}, {0, 0}, groups);
  if (one_by_one && up > 1 && down == 1)  // 1x1 conv first, then upsample
    return fir(conv2d(x, w, {1, 1}, {0, 0}, groups), up, 1, {px0, px1, py0, py1}, double(up * up));
  if (down > 1 && up == 1)  // blur, then strided conv
    return conv2d(fir(x, 1, 1, {px0, px1, py0, py1}, 1.0), w, {down, down}, {0, 0}, groups);
  // up (and maybe down): transposed strided conv, then blur.
  Tensor wt;
  if (groups == 1) {
    wt = transpose(w, 0, 1);
  } else {
    wt = reshape(w, {groups, out_ch / groups, in_per_group, kh, kw});
    wt = reshape(transpose(wt, 1, 2), {groups * in_per_group, out_ch / groups, kh, kw});
  }
  px0 -= kw - 1, px1 -= kw - up;
  py0 -= kh - 1, py1 -= kh - up;
  const int64_t pxt = std::max<int64_t>(std::min(-px0, -px1), 0);
  const int64_t pyt = std::max<int64_t>(std::min(-py0, -py1), 0);
  Tensor y = conv_transpose2d(x, wt, {up, up}, {pyt, pxt}, {0, 0}, groups);
  y = fir(y, 1, 1, {px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt}, double(up * up));
  if (down > 1) y = fir(y, 1, down, {0, 0, 0, 0}, 1.0);
  return y;
}

Tensor modulated_conv2d(const Tensor& x, const Tensor& weight, const Tensor& styles, const ModConv& p) {
  const char* op = "modulated_conv2d";
  ops::check_defined(op, x, "x");
  ops::check_defined(op, weight, "weight");
  ops::check_defined(op, styles, "styles");
  ops::check_same(op, {x, weight, styles, p.resample_filter});
  SG_CHECK(x.dim() == 4 && weight.dim() == 4 && styles.dim() == 2, op,
           "expects x [N,C,H,W], weight [O,C,k,k], styles [N,C]; got x ", shape_str(x.shape()), ", weight ",
           shape_str(weight.shape()), ", styles ", shape_str(styles.shape()));
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  SG_CHECK(weight.size(1) == C && styles.size(0) == N && styles.size(1) == C, op, "channel mismatch: x ",
           shape_str(x.shape()), ", weight ", shape_str(weight.shape()), ", styles ", shape_str(styles.shape()));
  Tensor f = p.resample_filter;
  if (!f.defined() && (p.up > 1 || p.down > 1)) {
    f = fir_filter({1, 3, 3, 1}, x.dtype());
    if (ops::is_cuda({x})) f = to_device(f, x.device());
  }
  if (p.fused && p.up == 1 && p.down == 1) return fused_modconv(x, weight, styles, p);
  if (p.fused) {
    Tensor w = mul(unsqueeze(weight, 0), reshape(styles, {N, 1, C, 1, 1}));  // [N,O,C,kh,kw]
    if (p.demodulate) {
      Tensor d = rsqrt(add(sum(square(w), {2, 3, 4}), p.eps));  // [N,O]
      w = mul(w, reshape(d, {N, O, 1, 1, 1}));
    }
    Tensor y =
        conv2d_resample(reshape(x, {1, N * C, H, W}), reshape(w, {N * O, C, kh, kw}), f, p.up, p.down, p.padding, N);
    return reshape(y, {N, O, y.size(2), y.size(3)});
  }
  Tensor y = conv2d_resample(mul(x, reshape(styles, {N, C, 1, 1})), weight, f, p.up, p.down, p.padding, 1);
  if (p.demodulate) {
    Tensor wsq = transpose(sum(square(weight), {2, 3}), 0, 1);  // [C,O]
    Tensor d = rsqrt(add(matmul(square(styles), wsq), p.eps));  // [N,O]
    y = mul(y, reshape(d, {N, O, 1, 1}));
  }
  return y;
}

}  // namespace sg
