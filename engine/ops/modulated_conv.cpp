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
//   CPU: the modulate-activations formula as one batched conv (no per-sample weights) that
//        scales x by the styles as it reads it and y by d as it writes it
//        (kernels/cpu/conv.h, conv2d_forward_scaled).
// Fused path, up 2 (G's up layers, a kernel larger than 1x1): the same kind of node for the
// transposed strided conv before the FIR (fused_modconv_up), then the FIR as its own op.
//   CUDA f32 in TF32 / bf16 (kernels/cuda/modconv.h, modconv_transpose_forward): dcoefs, then a
//        tensor-core GEMM per output phase, styles applied as x is packed, dcoefs in the epilogue.
//   Elsewhere: the modulate-activations formula with the engine's ops (no grouped conv).
// With down, or up and down together, both devices run the grouped composite.
#include <algorithm>
#include <array>
#include <functional>
#include <type_traits>
#include <vector>

#include "engine/derivatives.h"
#include "engine/device.h"
#include "engine/ops/common.h"
#include "kernels/cpu/conv.h"
#include "kernels/cuda/modconv.h"

namespace sg {

namespace {
std::pair<int64_t, int64_t> filter_size(const Tensor& f) {
  if (f.dim() == 1) return {f.size(0), f.size(0)};
  return {f.size(1), f.size(0)};  // (fw, fh)
}

// The demodulation coefficients of the modulate-activations form, [N, O]:
//   d = rsqrt(s^2 @ sum_{kh,kw}(w^2)^T + eps)
// with the weight term from conv_weight_sq_sums (one pass, one node).
Tensor demod_coefs(const Tensor& weight, const Tensor& styles, double eps) {
  return rsqrt(add(matmul(square(styles), conv_weight_sq_sums(weight)), eps));
}

// The fused node of y = modulated_conv2d(x, weight, styles) (q: the layer's parameters, no
// filter), both fused paths: its backward is derivatives::modulated_conv2d_fused, which reads y
// (kept re-attached by record_with_output) for the demodulation's term.
void record_fused(const Tensor& x, const Tensor& weight, const Tensor& styles, const ModConv& q, const Tensor& y) {
  autograd::record_with_output(
      "modulated_conv2d", {x, weight, styles}, y,
      [x, weight, styles, q](const Tensor& out, const std::vector<Tensor>& g, const autograd::Node& n) {
        return derivatives::modulated_conv2d_fused(x, weight, styles, q, out, g, n);
      });
}

// conv2d_resample's FIR pads {x0, x1, y0, y1} for up / down with this filter and padding.
std::array<int64_t, 4> resample_pads(const Tensor& f, int64_t up, int64_t down, int64_t padding) {
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
  return {px0, px1, py0, py1};
}

// The up branch of conv2d_resample: conv_transpose2d(x, w^T, stride up, padding (pyt, pxt)),
// then the FIR with pads fir_pad and gain up^2.
struct UpBranch {
  int64_t pyt, pxt;
  std::array<int64_t, 4> fir_pad;
};
UpBranch up_branch(std::array<int64_t, 4> pads, int64_t kh, int64_t kw, int64_t up) {
  auto [px0, px1, py0, py1] = pads;
  px0 -= kw - 1, px1 -= kw - up;
  py0 -= kh - 1, py1 -= kh - up;
  const int64_t pxt = std::max<int64_t>(std::min(-px0, -px1), 0);
  const int64_t pyt = std::max<int64_t>(std::min(-py0, -py1), 0);
  return {pyt, pxt, {px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt}};
}

Tensor fir_pass(const Tensor& t, const Tensor& f, int64_t up, int64_t down, std::array<int64_t, 4> pad, double gain) {
  UpFirDn p;
  p.upx = p.upy = up;
  p.downx = p.downy = down;
  p.pad = pad;
  p.gain = gain;
  return upfirdn2d(t, f, p);
}

// The fused path's up layer before its FIR, one autograd node (the same rule as the stride-1
// node, derivatives::modulated_conv2d_fused with p.up = up and p.padding = the transposed
// conv's padding):
//   z = d[:, :, None, None] * conv_transpose2d(x * s[:, :, None, None], w^T, stride up, padding)
// CUDA f32 in TF32 / bf16: one tensor-core GEMM per output phase with the styles applied as x is
// packed and d in the epilogue (kernels/cuda/modconv.h, modconv_transpose_forward); elsewhere
// the same formula with the engine's ops.
Tensor fused_modconv_up(const Tensor& x, const Tensor& weight, const Tensor& styles, const ModConv& p, int64_t up,
                        int64_t pad) {
  const char* op = "modulated_conv2d";
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  int64_t ws_bytes = 0;
  if (ops::is_cuda({x}))
    ops::run_cuda_kernel(op, x.dtype(), {x}, [&]<class T>() {
      if constexpr (std::is_same_v<T, float>)
        ws_bytes =
            kernels::cuda::modconv_transpose_workspace(N, C, H, W, O, kh, kw, up, pad, pad, ops::cuda_conv_math());
    });
  Tensor z;
  {
    NoGradGuard ng;
    const Tensor wt = contiguous_copy(transpose(weight, 0, 1));  // [C, O, kh, kw]
    if (ws_bytes > 0) {
      const int64_t Ho = (H - 1) * up - 2 * pad + kh, Wo = (W - 1) * up - 2 * pad + kw;
      z = empty({N, O, Ho, Wo}, x.dtype(), x.device());
      ops::run_cuda_kernel(op, x.dtype(), {x, weight, styles}, [&]<class T>() {
        if constexpr (std::is_same_v<T, float>) {
          Tensor dcoefs;
          if (p.demodulate) {
            dcoefs = empty({N, O}, x.dtype(), x.device());
            kernels::cuda::modconv_dcoefs<T>(weight.data<T>(), styles.data<T>(), dcoefs.data<T>(), N, O, C, kh * kw,
                                             p.eps);
          }
          Tensor ws = ops::cuda_workspace(ws_bytes, x.device());
          kernels::cuda::modconv_transpose_forward(
              x.data<T>(), wt.data<T>(), styles.data<T>(), dcoefs.defined() ? dcoefs.data<T>() : nullptr, z.data<T>(),
              N, C, H, W, O, kh, kw, up, pad, pad, ops::cuda_conv_math(), ops::workspace_ptr(ws));
        }
      });
    } else {
      z = conv_transpose2d(mul(x, reshape(styles, {N, C, 1, 1})), wt, {up, up}, {pad, pad});
      if (p.demodulate) z = mul(z, reshape(demod_coefs(weight, styles, p.eps), {N, O, 1, 1}));
    }
  }
  ModConv q = p;
  q.resample_filter = Tensor();
  q.up = up, q.down = 1, q.padding = pad;
  record_fused(x, weight, styles, q, z);
  return z;
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
  Tensor y;
  if (!ops::is_cuda({x})) {
    // The CPU: the modulate-activations form, one batched conv with the shared weight (faster
    // here than N per-sample weights and a grouped conv: 7x on seed32's G forward), the styles
    // and demodulation coefficients applied inside it (kernels/cpu/conv.h,
    // conv2d_forward_scaled: the numbers of mul, conv2d, mul, bit for bit).
    NoGradGuard ng;
    const Tensor d = p.demodulate ? demod_coefs(weight, styles, p.eps) : Tensor();  // [N, O]
    kernels::Conv2dParams kp;
    kp.N = N, kp.Cin = C, kp.H = H, kp.W = W, kp.Cout = O, kp.kh = kh, kp.kw = kw, kp.py = kp.px = p.padding;
    y = empty({N, O, Ho, Wo}, x.dtype(), x.device());
    dispatch_dtype(x.dtype(), [&]<class T>() {
      kernels::cpu::conv2d_forward_scaled<T>(kp, x.data<T>(), weight.data<T>(), y.data<T>(), styles.data<T>(),
                                             d.defined() ? d.data<T>() : nullptr);
    });
  } else {
    y = empty({N, O, Ho, Wo}, x.dtype(), x.device());
    if (y.numel() > 0)
      ops::run_cuda_kernel(op, x.dtype(), {x, weight, styles}, [&]<class T>() {
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
                                          dcoefs.defined() ? dcoefs.data<T>() : nullptr, y.data<T>(), N, C, H, W, O, kh,
                                          kw, p.padding, math, nullptr, ops::workspace_ptr(ws));
      });
  }
  ModConv q = p;
  q.resample_filter = Tensor();  // unused without up / down; keep no tensor alive through it
  record_fused(x, weight, styles, q, y);
  return y;
}
}  // namespace

// The CPU: one pass (kernels/cpu/conv.h, conv_weight_sq_sums: the bits of the composite) for
// kernels up to 4 wide. CUDA (where the fused path's kernels take their coefficients from
// kernels/cuda/modconv.h, modconv_dcoefs) and wider kernels: the composite's ops. Either way one
// node: its backward is one broadcast mul where square's and sum's were a scale and a strided mul
// over the weight (derivatives::conv_weight_sq_sums).
Tensor conv_weight_sq_sums(const Tensor& weight) {
  const char* op = "conv_weight_sq_sums";
  ops::check_defined(op, weight, "weight");
  SG_CHECK(weight.dim() == 4, op, "weight must be 4-D [O, C, kh, kw], got ", shape_str(weight.shape()));
  const int64_t O = weight.size(0), C = weight.size(1), kh = weight.size(2), kw = weight.size(3);
  Tensor y;  // [C, O]
  {
    NoGradGuard ng;
    if (!ops::is_cuda({weight}) && kw <= 4) {
      y = empty({C, O}, weight.dtype(), weight.device());
      dispatch_dtype(weight.dtype(), [&]<class T>() {
        kernels::cpu::conv_weight_sq_sums<T>(weight.data<T>(), O, C, kh, kw, y.data<T>());
      });
    } else {
      y = transpose(sum(square(weight), {2, 3}), 0, 1);
    }
  }
  autograd::record(op, {weight}, {y}, std::bind_front(derivatives::conv_weight_sq_sums, weight));
  return y;
}

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
  const std::array<int64_t, 4> pads = resample_pads(f, up, down, padding);
  auto fir = [&](const Tensor& t, int64_t u, int64_t d, std::array<int64_t, 4> pad, double gain) {
    return fir_pass(t, f, u, d, pad, gain);
  };
  const bool one_by_one = kh == 1 && kw == 1;
  if (one_by_one && down > 1 && up == 1)  // downsample first, then the cheap 1x1 conv
    return conv2d(fir(x, 1, down, pads, 1.0), w, {1, 1}, {0, 0}, groups);
  if (one_by_one && up > 1 && down == 1)  // 1x1 conv first, then upsample
    return fir(conv2d(x, w, {1, 1}, {0, 0}, groups), up, 1, pads, double(up * up));
  if (down > 1 && up == 1)  // blur, then strided conv
    return conv2d(fir(x, 1, 1, pads, 1.0), w, {down, down}, {0, 0}, groups);
  // up (and maybe down): transposed strided conv, then blur.
  Tensor wt;
  if (groups == 1) {
    wt = transpose(w, 0, 1);
  } else {
    wt = reshape(w, {groups, out_ch / groups, in_per_group, kh, kw});
    wt = reshape(transpose(wt, 1, 2), {groups * in_per_group, out_ch / groups, kh, kw});
  }
  const UpBranch b = up_branch(pads, kh, kw, up);
  Tensor y = conv_transpose2d(x, wt, {up, up}, {b.pyt, b.pxt}, {0, 0}, groups);
  y = fir(y, 1, 1, b.fir_pad, double(up * up));
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
  if (p.fused && p.up == 2 && p.down == 1 && (kh > 1 || kw > 1)) {  // (up 1 or 2: conv2d_resample checks)
    const UpBranch b = up_branch(resample_pads(f, p.up, 1, p.padding), kh, kw, p.up);
    if (b.pyt == b.pxt)
      return fir_pass(fused_modconv_up(x, weight, styles, p, p.up, b.pyt), f, 1, 1, b.fir_pad, double(p.up * p.up));
  }
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
  // The modulate-activations path with no graph to record (G under no_grad: the D step's fakes,
  // generation) and no up / down on the CPU: fused_modconv's CPU branch is this same formula,
  // with the styles and coefficients applied inside the conv (the same bits as the three ops).
  if (p.up == 1 && p.down == 1 && !ops::is_cuda({x}) && !autograd::any_requires_grad({&x, &weight, &styles}))
    return fused_modconv(x, weight, styles, p);
  Tensor y = conv2d_resample(mul(x, reshape(styles, {N, C, 1, 1})), weight, f, p.up, p.down, p.padding, 1);
  if (p.demodulate) y = mul(y, reshape(demod_coefs(weight, styles, p.eps), {N, O, 1, 1}));
  return y;
}

}  // namespace sg
