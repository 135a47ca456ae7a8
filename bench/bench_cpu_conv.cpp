// CPU benchmark of conv2d and modulated_conv2d, forward and forward + backward, f32.
//
// The twin of bench/torch_cpu_conv.py (same cases, same protocol, same output format);
// bench/run_cpu_bench.sh runs both on the same machine and prints the ratio.
//
//   fwd_ms:    forward alone, under NoGradGuard (no graph recorded)
//   fwdbwd_ms: forward with grad on, then sg::autograd::grad(sum(y * gy), {x, w[, styles]})
// Protocol: `warmup` untimed runs, then the median of `reps` timed runs (steady_clock).
// Threads: OMP_NUM_THREADS, and SG_THREAD_WAIT (both printed; kernels/cpu/parallel.h).
//
// Usage: build/bench_cpu_conv [--quick] [--shapes [--only SUBSTRING]]
// Output: one line per case,
//   case=<name> impl=stylegrad fwd_ms=<ms> fwdbwd_ms=<ms> gflop=<forward GFLOP>
//
// --shapes: instead, every distinct convolution of the `small` (batch 16, Fashion-MNIST's one
// image channel) and `seed32` (batch 32, 3 channels) networks as training runs them (the act
// path: modulated convs are plain convs on modulated activations; traced from
// bench_train_phases), each timed three ways at the op level, as autograd calls them:
//   fwd_ms:   conv2d(x, w) (conv_transpose2d for G's upsampling convs)
//   dgrad_ms: the data gradient, conv_transpose2d(dy, w) (a transposed conv's: conv2d(dy, w))
//   wgrad_ms: the weight gradient, conv2d_weight_grad(dy, x) (a transposed conv's: of dy, x swapped)
//   shape=<name> impl=stylegrad fwd_ms=<ms> dgrad_ms=<ms> wgrad_ms=<ms> gflop=<forward GFLOP>
// and last  # roofline_gflops=<GFLOP/s>: the FMA roofline of the threads (bench/roofline.h).
// bench/run_conv_shapes_bench.sh runs it next to bench/torch_cpu_conv.py --shapes.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench/roofline.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "engine/tensor.h"
#include "kernels/cpu/gemm.h"

namespace {

using namespace sg;

struct Case {
  std::string name;
  bool modulated = false;
  int64_t N, Cin, Cout, H, W, k;
  int64_t stride = 1, padding = 1, groups = 1;  // conv2d
  bool fused = true;                            // modulated_conv2d
  int64_t up = 1;                               // modulated_conv2d
};

// Forward GFLOP of the convolution alone (2 * MACs).
double forward_gflop(const Case& c) {
  if (c.modulated) {
    const int64_t Hin = c.H, Win = c.W;  // per-input-pixel cost for up=2 (transposed conv)
    return 2.0 * c.N * c.Cout * c.Cin * c.k * c.k * Hin * Win * 1e-9;
  }
  const int64_t Ho = (c.H + 2 * c.padding - c.k) / c.stride + 1, Wo = (c.W + 2 * c.padding - c.k) / c.stride + 1;
  return 2.0 * c.N * c.Cout * (c.Cin / c.groups) * c.k * c.k * Ho * Wo * 1e-9;
}

std::vector<Case> cases() {
  std::vector<Case> v;
  auto conv = [&](std::string name, int64_t N, int64_t C, int64_t H, int64_t stride = 1, int64_t groups = 1) {
    Case c{name, false, N, C, C, H, H, 3};
    c.stride = stride, c.groups = groups;
    v.push_back(c);
  };
  auto mod = [&](std::string name, int64_t N, int64_t C, int64_t H, bool fused, int64_t up = 1) {
    Case c{name, true, N, C, C, H, H, 3};
    c.fused = fused, c.up = up;
    v.push_back(c);
  };
  conv("conv3x3_n4_c128_16", 4, 128, 16);
  conv("conv3x3_n4_c256_16", 4, 256, 16);
  conv("conv3x3_n8_c64_32", 8, 64, 32);
  conv("conv3x3_n4_c128_32", 4, 128, 32);
  conv("conv3x3_s2_n4_c128_32", 4, 128, 32, 2, 1);
  conv("conv3x3_g4_n4_c256_16", 4, 256, 16, 1, 4);
  mod("modconv_fused_n4_c256_16", 4, 256, 16, true);
  mod("modconv_act_n4_c256_16", 4, 256, 16, false);
  mod("modconv_fused_n4_c128_32", 4, 128, 32, true);
  mod("modconv_act_n4_c128_32", 4, 128, 32, false);
  mod("modconv_fused_up2_n4_c128_16to32", 4, 128, 16, true, 2);
  mod("modconv_act_up2_n4_c128_16to32", 4, 128, 16, false, 2);
  return v;
}

// --shapes: one convolution of a model. conv2d: x [N, Cin, H, H], w [Cout, Cin, k, k];
// transposed (G's upsampling conv, stride 2, padding 0): x [N, Cin, H, H], w [Cin, Cout, k, k].
struct Shape2 {
  std::string name;
  int64_t N, Cin, Cout, H, k, stride, padding;
  bool transposed = false;
};

std::vector<Shape2> model_shapes() {
  std::vector<Shape2> v;
  auto add = [&](const std::string& model, const std::string& what, int64_t N, int64_t Cin, int64_t Cout, int64_t H,
                 int64_t k, int64_t stride, int64_t padding, bool transposed = false) {
    v.push_back({model + "_" + what + "_c" + std::to_string(Cin) + "to" + std::to_string(Cout) + "_" +
                     std::to_string(H) +
                     (transposed    ? "_up2"
                      : stride == 2 ? "_s2"
                                    : "") +
                     "_k" + std::to_string(k),
                 N, Cin, Cout, H, k, stride, padding, transposed});
  };
  // small, batch 16: 64 channels at every resolution, 1 image channel
  for (int64_t r : {4, 8, 16, 32}) add("small", "conv", 16, 64, 64, r, 3, 1, 1);
  for (int64_t r : {4, 8, 16}) add("small", "Gup", 16, 64, 64, r, 3, 2, 0, true);
  for (int64_t r : {4, 8, 16, 32}) add("small", "toRGB", 16, 64, 1, r, 1, 1, 0);
  add("small", "fromRGB", 16, 1, 64, 32, 1, 1, 0);
  for (int64_t r : {33, 17, 9}) add("small", "Ddown", 16, 64, 64, r, 3, 2, 0);
  for (int64_t r : {16, 8, 4}) add("small", "Dskip", 16, 64, 64, r, 1, 1, 0);
  add("small", "Dmbstd", 16, 65, 64, 4, 3, 1, 1);
  // seed32 (the notebook's model), batch 32: 384 / 192 / 96 / 48 channels at 4 / 8 / 16 / 32
  add("seed32", "conv", 32, 384, 384, 4, 3, 1, 1);
  add("seed32", "conv", 32, 384, 384, 8, 3, 1, 1);
  add("seed32", "conv", 32, 384, 192, 8, 3, 1, 1);
  add("seed32", "conv", 32, 192, 192, 8, 3, 1, 1);
  add("seed32", "conv", 32, 192, 384, 8, 3, 1, 1);
  add("seed32", "conv", 32, 192, 192, 16, 3, 1, 1);
  add("seed32", "conv", 32, 192, 96, 16, 3, 1, 1);
  add("seed32", "conv", 32, 96, 96, 16, 3, 1, 1);
  add("seed32", "conv", 32, 96, 192, 16, 3, 1, 1);
  add("seed32", "conv", 32, 96, 96, 32, 3, 1, 1);
  add("seed32", "conv", 32, 96, 48, 32, 3, 1, 1);
  add("seed32", "conv", 32, 48, 48, 32, 3, 1, 1);
  add("seed32", "conv", 32, 48, 96, 32, 3, 1, 1);
  add("seed32", "skip", 32, 384, 384, 4, 1, 1, 0);
  add("seed32", "skip", 32, 192, 384, 8, 1, 1, 0);
  add("seed32", "skip", 32, 96, 192, 16, 1, 1, 0);
  add("seed32", "skip", 32, 48, 96, 32, 1, 1, 0);
  for (int64_t c : {384, 192, 96, 48})
    add("seed32", "toRGB", 32, c, 3, c == 384 ? 4 : c == 192 ? 8 : c == 96 ? 16 : 32, 1, 1, 0);
  add("seed32", "fromRGB", 32, 3, 48, 32, 1, 1, 0);
  return v;
}

double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  const size_t n = t.size();
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

double time_ms(const std::function<void()>& f, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    const auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::milli>(b - a).count());
  }
  return median(t);
}

// --shapes: fwd, dgrad and wgrad of each model convolution, under no-grad (the ops alone).
int run_shapes(int warmup, int reps, const std::string& only) {
  std::printf("# stylegrad bench_cpu_conv --shapes: f32, threads=%d (SG_THREAD_WAIT %s), warmup=%d, reps=%d (median)\n",
              cpu_threads(), cpu_thread_wait().c_str(), warmup, reps);
  std::fflush(stdout);
  NoGradGuard ng;
  Rng gen(1234);
  for (const Shape2& c : model_shapes()) {
    if (c.name.find(only) == std::string::npos) continue;
    const std::array<int64_t, 2> st{c.stride, c.stride}, pad{c.padding, c.padding};
    Tensor x = randn({c.N, c.Cin, c.H, c.H}, gen);
    Tensor w = c.transposed ? randn({c.Cin, c.Cout, c.k, c.k}, gen) : randn({c.Cout, c.Cin, c.k, c.k}, gen);
    auto fwd = [&]() { return c.transposed ? conv_transpose2d(x, w, st, pad) : conv2d(x, w, st, pad); };
    Tensor dy = randn(fwd().shape(), gen);
    // The output padding that gives back x's size from dy (conv2d's data gradient).
    const int64_t Ho = dy.size(2), op = c.transposed ? 0 : c.H - ((Ho - 1) * c.stride - 2 * c.padding + c.k);
    const double f = time_ms([&]() { (void)fwd(); }, warmup, reps);
    const double dg = time_ms(
        [&]() {
          if (c.transposed)
            (void)conv2d(dy, w, st, pad);
          else
            (void)conv_transpose2d(dy, w, st, pad, {op, op});
        },
        warmup, reps);
    const double wg = time_ms(
        [&]() {
          if (c.transposed)  // y = conv_transpose2d(x, w) is the data gradient of conv2d(y, w): w's gradient swaps
                             // roles
            (void)conv2d_weight_grad(x, dy, w.shape(), st, pad, 1);
          else
            (void)conv2d_weight_grad(dy, x, w.shape(), st, pad, 1);
        },
        warmup, reps);
    const int64_t Hs = c.transposed ? c.H : Ho;  // the smaller side's pixels carry every MAC
    const double gflop = 2.0 * c.N * c.Cin * c.Cout * c.k * c.k * Hs * Hs * 1e-9;
    std::printf("shape=%s impl=stylegrad fwd_ms=%.3f dgrad_ms=%.3f wgrad_ms=%.3f gflop=%.4f\n", c.name.c_str(), f, dg,
                wg, gflop);
    std::fflush(stdout);
  }
  // The FMA roofline of the threads, at the width our GEMM runs (its AVX-512 kernels where they
  // are on): the script's summary says which fraction of it each pair's goal needs. Measured
  // last: its second of busy threads would make the pool's automatic wait policy (SG_THREAD_WAIT
  // auto, kernels/cpu/parallel.h) see a busy machine and sleep between the regions timed above.
  const int width = sg::kernels::cpu::gemm_avx512_enabled() ? 16 : 8;
  std::printf("# roofline_gflops=%.1f (%d-wide FMA chains, %d threads, bench/roofline.h)\n",
              sg::bench::fma_roofline_gflops(cpu_threads(), width), width, cpu_threads());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, shapes = false;
  std::string only;  // --shapes: only the shapes whose name contains this
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--shapes") == 0) {
      shapes = true;
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--shapes [--only SUBSTRING]]\n", argv[0]);
      return 2;
    }
  }
  const int warmup = quick ? 1 : 3, reps = quick ? 3 : 11;
  if (shapes) return run_shapes(warmup, reps, only);
  std::printf("# stylegrad bench_cpu_conv: f32, threads=%d (SG_THREAD_WAIT %s), warmup=%d, reps=%d (median)\n",
              cpu_threads(), cpu_thread_wait().c_str(), warmup, reps);
  std::fflush(stdout);

  Rng gen(1234);
  for (const Case& c : cases()) {
    Tensor x = randn({c.N, c.Cin, c.H, c.W}, gen);
    Tensor w = randn({c.Cout, c.Cin / (c.modulated ? 1 : c.groups), c.k, c.k}, gen);
    Tensor s;
    x.set_requires_grad(true);
    w.set_requires_grad(true);
    std::vector<Tensor> inputs = {x, w};
    if (c.modulated) {
      s = add(mul(randn({c.N, c.Cin}, gen), 0.2), 1.0).detach();  // styles around 1, as after the affine
      s.set_requires_grad(true);
      inputs.push_back(s);
    }
    ModConv mp;
    mp.demodulate = true;
    mp.fused = c.fused;
    mp.up = c.up;
    mp.padding = 1;
    auto forward = [&]() {
      if (c.modulated) return modulated_conv2d(x, w, s, mp);
      return conv2d(x, w, {c.stride, c.stride}, {c.padding, c.padding}, c.groups);
    };
    Tensor gy;
    {
      NoGradGuard ng;
      gy = randn(forward().shape(), gen);
    }
    const double fwd = time_ms(
        [&]() {
          NoGradGuard ng;
          Tensor y = forward();
          (void)y;
        },
        warmup, reps);
    const double fwdbwd = time_ms(
        [&]() {
          Tensor y = forward();
          Tensor loss = sum(mul(y, gy));
          auto g = autograd::grad({loss}, inputs);
          (void)g;
        },
        warmup, reps);
    std::printf("case=%s impl=stylegrad fwd_ms=%.3f fwdbwd_ms=%.3f gflop=%.4f\n", c.name.c_str(), fwd, fwdbwd,
                forward_gflop(c));
    std::fflush(stdout);
  }
  return 0;
}
