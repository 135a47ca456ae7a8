// upfirdn2d on the CPU (kernels/cpu/upfirdn2d.h, the separable variant) on the main job's
// calls, against the memory roofline measured in the same run.
//
// Shapes: every separable upfirdn2d call of the README's main job (small, batch 16, 64 channels:
// 1024 planes; filter [1, 3, 3, 1]): the blur after each stride-2 transposed conv of G, the
// blur before each stride-2 conv of D, and the 2x up / down sampling of the skip paths; the
// gradients of each are calls of the same list. Per shape: the median time of
// --reps calls; the time a parallel copy of the same bytes (input read + output written) takes
// on the same threads (copy_ms: what a kernel bound by memory bandwidth would need); and their
// ratio copy_ms / ms (1: at the memory roofline).
//
// Usage: build/bench_cpu_upfirdn2d [--reps N] [--planes P]
//   e.g. build-prof/bench_cpu_upfirdn2d --reps 50
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/upfirdn2d.h"

namespace {

struct Shape {
  const char* what;
  int64_t in, up, down, pad, out;
};

template <class F>
double median_ms(int reps, F f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--reps N] [--planes P]\n", argv0);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 30;
  int64_t planes = 16 * 64;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc)
      reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--planes" && i + 1 < argc)
      planes = std::max<int64_t>(1, std::atoll(argv[++i]));
    else
      usage(argv[0]);
  }
  const Shape shapes[] = {
      // The blur after G's stride-2 transposed convs (pad 1) and before D's stride-2 convs
      // (pad 2); each is the other's gradient.
      {"blur 33->32 (G up-conv)", 33, 1, 1, 1, 32},
      {"blur 32->33 (D down-conv)", 32, 1, 1, 2, 33},
      {"blur 17->16", 17, 1, 1, 1, 16},
      {"blur 16->17", 16, 1, 1, 2, 17},
      {"blur 9->8", 9, 1, 1, 1, 8},
      {"blur 8->9", 8, 1, 1, 2, 9},
      // The skip paths: G's toRGB upsampling, D's downsampling; each the other's gradient.
      {"up 16->32 (G skip)", 16, 2, 1, 2, 32},
      {"down 32->16 (D skip)", 32, 1, 2, 1, 16},
      {"up 8->16", 8, 2, 1, 2, 16},
      {"down 16->8", 16, 1, 2, 1, 8},
      {"up 4->8", 4, 2, 1, 2, 8},
      {"down 8->4", 8, 1, 2, 1, 4},
  };
  std::printf("# bench_cpu_upfirdn2d: f32, separable [1, 3, 3, 1], %lld planes, %d threads, median of %d\n",
              (long long)planes, sg::kernels::cpu::num_threads(), reps);
  std::printf("%-26s %5s %3s %5s %4s %5s %9s %9s %8s\n", "call", "in", "up", "down", "pad", "out", "ms", "copy_ms",
              "copy/ms");
  const std::vector<float> f = {1.f, 3.f, 3.f, 1.f};
  for (const Shape& s : shapes) {
    sg::kernels::UpFirDn2dParams p;
    p.separable = true, p.planes = planes, p.fh = p.fw = 4;
    p.in_h = p.in_w = s.in, p.out_h = p.out_w = s.out;
    p.upx = p.upy = s.up, p.downx = p.downy = s.down, p.padx0 = p.pady0 = s.pad;
    p.gain = 1.0 / 64 * s.up * s.up;
    std::vector<float> x(planes * s.in * s.in), y(planes * s.out * s.out);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (float)(i % 17) - 8.f;
    sg::kernels::cpu::upfirdn2d<float>(p, x.data(), f.data(), y.data());  // warm-up
    const double ms = median_ms(reps, [&] { sg::kernels::cpu::upfirdn2d<float>(p, x.data(), f.data(), y.data()); });
    // The same bytes moved by a copy: x read into a buffer the size of x, y's size written.
    std::vector<float> xc(x.size()), yc(y.size());
    const double copy_ms = median_ms(reps, [&] {
      sg::kernels::cpu::parallel_for(planes, true, [&](int64_t p0, int64_t p1) {
        const int64_t nx = s.in * s.in, ny = s.out * s.out;
        std::memcpy(xc.data() + p0 * nx, x.data() + p0 * nx, (p1 - p0) * nx * sizeof(float));
        std::memset(yc.data() + p0 * ny, 0, (p1 - p0) * ny * sizeof(float));
      });
    });
    std::printf("%-26s %5lld %3lld %5lld %4lld %5lld %9.3f %9.3f %8.2f\n", s.what, (long long)s.in, (long long)s.up,
                (long long)s.down, (long long)s.pad, (long long)s.out, ms, copy_ms, copy_ms / ms);
  }
}
