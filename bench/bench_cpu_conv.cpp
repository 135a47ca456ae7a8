// CPU benchmark of conv2d and modulated_conv2d, forward and forward + backward, f32.
//
// The twin of bench/torch_cpu_conv.py (same cases, same protocol, same output format);
// bench/run_cpu_bench.sh runs both on the same machine and prints the ratio.
//
//   fwd_ms:    forward alone, under NoGradGuard (no graph recorded)
//   fwdbwd_ms: forward with grad on, then sg::autograd::grad(sum(y * gy), {x, w[, styles]})
// Protocol: `warmup` untimed runs, then the median of `reps` timed runs (steady_clock).
// Threads: OMP_NUM_THREADS (printed as omp_get_max_threads()).
//
// Usage: build/bench_cpu_conv [--quick]
// Output: one line per case,
//   case=<name> impl=stylegrad fwd_ms=<ms> fwdbwd_ms=<ms> gflop=<forward GFLOP>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/tensor.h"

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

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
      return 2;
    }
  }
  const int warmup = quick ? 1 : 3, reps = quick ? 3 : 11;
  std::printf("# stylegrad bench_cpu_conv: f32, omp_get_max_threads()=%d, warmup=%d, reps=%d (median)\n",
              omp_get_max_threads(), warmup, reps);
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
