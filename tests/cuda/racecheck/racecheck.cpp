// sg_cuda_racecheck: every CUDA kernel that uses shared memory or warp collectives, on
// shapes that span several blocks and tiles, against the CPU kernels (kernels/cpu/) in f64.
// It links only the kernels (no engine, no Catch), so a ThreadSanitizer build of it is
// cheap: CI builds it on the CUDA emulator with -DSG_SANITIZE=thread, where the emulator
// turns a missing barrier between two threads of a block into a TSan data-race report
// (docs/cuda-emulator.md). On a GPU, `compute-sanitizer --tool racecheck` can run it too.
//
// Usage: sg_cuda_racecheck     prints one line per kernel; exit 0 when every result
//                              matches, 1 otherwise (a race under TSan exits 66).
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/conv.h"
#include "kernels/cpu/upfirdn2d.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/modconv.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/upfirdn2d.h"

namespace kc = sg::kernels::cuda;
namespace cpu = sg::kernels::cpu;
using Vec = std::vector<double>;

namespace {

int g_failures = 0;

Vec random_vec(size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> d;
  Vec v(n);
  for (auto& x : v) x = (double)(float)d(g);  // representable in f32: the inputs are exact on both sides
  return v;
}

// A device copy of v in f32, freed at scope exit.
struct Dev {
  float* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t n_) : n(n_) { p = static_cast<float*>(kc::raw_malloc(n * sizeof(float) + 1)); }
  explicit Dev(const Vec& v) : Dev(v.size()) {
    std::vector<float> f(v.begin(), v.end());
    kc::memcpy_h2d(p, f.data(), n * sizeof(float));
  }
  ~Dev() { kc::raw_free(p); }
  Vec host() const {
    std::vector<float> f(n);
    kc::memcpy_d2h(f.data(), p, n * sizeof(float));
    return Vec(f.begin(), f.end());
  }
};

void report(const std::string& what, const Vec& got, const Vec& want, double tol) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  const double rel = err / std::max(scale, 1e-30);
  const bool ok = got.size() == want.size() && rel <= tol && !std::isnan(err);
  std::printf("%-4s %-58s max rel error %.2e (tolerance %.0e)\n", ok ? "ok" : "FAIL", what.c_str(), rel, tol);
  if (!ok) ++g_failures;
}

void conv_family(kc::ConvMath math) {
  // TF32: about 3e-4 expected (10-bit mantissa inputs); bf16 about 3e-3 (7-bit)
  const double tol = math == kc::ConvMath::fma ? 1e-5 : math == kc::ConvMath::bf16 ? 3e-2 : 3e-3;
  const char* tag = math == kc::ConvMath::fma         ? ""
                    : math == kc::ConvMath::tf32_wmma ? " (TF32, wmma)"
                    : math == kc::ConvMath::tf32      ? " (TF32, mma.sync)"
                                                      : " (bf16, mma.sync)";
  // 70 output channels (two row tiles), 2 x 12 x 12 = 288 pixels (five column tiles).
  const int64_t N = 2, Cin = 8, H = 12, W = 12, Cout = 70;
  const Vec x = random_vec(N * Cin * H * W, 1), w = random_vec(Cout * Cin * 9, 2);
  Vec y(N * Cout * H * W);
  cpu::conv2d_forward(sg::kernels::Conv2dParams{N, Cin, H, W, Cout, 3, 3, 1, 1, 1, 1, 0, 0, 1}, x.data(), w.data(),
                      y.data());
  Dev xd(x), wd(w), yd(y.size());
  kc::conv2d_forward(sg::kernels::Conv2dParams{N, Cin, H, W, Cout, 3, 3, 1, 1, 1, 1, 0, 0, 1}, xd.p, wd.p, yd.p, math);
  report(std::string("conv2d_forward 70 x 72 x 288") + tag, yd.host(), y, tol);

  // Transposed, stride 2: four output phases.
  const int64_t Co = 68, Ho = 2 * H;
  const Vec wt = random_vec(Cin * Co * 9, 3);
  Vec yt(N * Co * Ho * Ho);
  cpu::conv_transpose2d_forward(sg::kernels::Conv2dParams{N, Cin, H, W, Co, 3, 3, 2, 2, 1, 1, 1, 1, 1}, x.data(),
                                wt.data(), yt.data());
  Dev wtd(wt), ytd(yt.size());
  kc::conv_transpose2d_forward(sg::kernels::Conv2dParams{N, Cin, H, W, Co, 3, 3, 2, 2, 1, 1, 1, 1, 1}, xd.p, wtd.p,
                               ytd.p, math);
  report(std::string("conv_transpose2d_forward stride 2, 68 channels") + tag, ytd.host(), yt, tol);

  // Weight gradient with split-K: 4 x 16 x 16 = 1024 reduction rows.
  const int64_t Nb = 4, Hb = 16;
  const Vec xb = random_vec(Nb * Cin * Hb * Hb, 4), dy = random_vec(Nb * Cout * Hb * Hb, 5);
  Vec dw(Cout * Cin * 9);
  cpu::conv2d_weight_grad(sg::kernels::Conv2dParams{Nb, Cin, Hb, Hb, Cout, 3, 3, 1, 1, 1, 1, 0, 0, 1}, dy.data(),
                          xb.data(), dw.data());
  const int64_t ws = kc::conv2d_weight_grad_workspace(
      sg::kernels::Conv2dParams{Nb, Cin, Hb, Hb, Cout, 3, 3, 1, 1, 1, 1, 0, 0, 1}, math);
  Dev xbd(xb), dyd(dy), dwd(dw.size()), wsd(ws > 0 ? ws : 1);
  kc::conv2d_weight_grad(sg::kernels::Conv2dParams{Nb, Cin, Hb, Hb, Cout, 3, 3, 1, 1, 1, 1, 0, 0, 1}, dyd.p, xbd.p,
                         dwd.p, ws > 0 ? wsd.p : nullptr, math);
  // (TF32 and bf16 mma.sync: 16 x 16 outputs take conv_tc's weight gradient, not the split-K kernel)
  report(std::string("conv2d_weight_grad split-K (") + std::to_string(ws > 0) + ")" + tag +
             (math == kc::ConvMath::bf16 || math == kc::ConvMath::tf32 ? " -> conv_tc" : ""),
         dwd.host(), dw, tol);

  // The fused modulated conv: demodulation coefficients (warp shuffles), then the grouped
  // GEMM with the weight modulated on load.
  const int64_t O = 66, C = 5;
  const Vec xm = random_vec(N * C * H * W, 6), wm = random_vec(O * C * 9, 7), s = random_vec(N * C, 8);
  Vec wmod(N * O * C * 9), ym(N * O * H * W);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      double ss = 0;
      for (int64_t c = 0; c < C; ++c)
        for (int t = 0; t < 9; ++t) ss += std::pow(wm[(o * C + c) * 9 + t] * s[n * C + c], 2);
      const double d = 1 / std::sqrt(ss + 1e-8);
      for (int64_t c = 0; c < C; ++c)
        for (int t = 0; t < 9; ++t) wmod[((n * O + o) * C + c) * 9 + t] = wm[(o * C + c) * 9 + t] * s[n * C + c] * d;
    }
  cpu::conv2d_forward(sg::kernels::Conv2dParams{1, N * C, H, W, N * O, 3, 3, 1, 1, 1, 1, 0, 0, N}, xm.data(),
                      wmod.data(), ym.data());
  Dev xmd(xm), wmd(wm), sd(s), dd(N * O), ymd(ym.size());
  kc::modconv_dcoefs(wmd.p, sd.p, dd.p, N, O, C, 9, 1e-8);
  kc::modconv_forward(xmd.p, wmd.p, sd.p, dd.p, ymd.p, N, C, H, W, O, 3, 3, 1, math);
  report(std::string("modconv_dcoefs + modconv_forward (fused)") + tag, ymd.host(), ym, tol);
}

// The multi-stage tensor-core path (kernels/cuda/conv_tc.h): cp.async into a ring of three
// shared-memory stages, ldmatrix out of it; unsplit and split-K, the weight gradient, and the
// strided conv_transpose2d's phases.
void conv_tc(kc::ConvMath math) {
  const double tol = math == kc::ConvMath::bf16 ? 3e-2 : 3e-3;
  const char* tag = math == kc::ConvMath::bf16 ? " (bf16, conv_tc)" : " (TF32, conv_tc)";
  struct Case {
    sg::kernels::Conv2dParams p;
    const char* what;
  };
  // (small: under ThreadSanitizer every emulated copy and barrier is slow; 7 and more k-tiles
  // still wrap the three stages; bf16 leaves the first unsplit)
  const Case cases[] = {{{2, 24, 12, 12, 136, 3, 3, 1, 1, 1, 1, 0, 0, 1}, "conv2d_forward 136 x 288 x 216"},
                        {{2, 64, 6, 6, 70, 3, 3, 1, 1, 1, 1, 0, 0, 1}, "conv2d_forward split-K 70 x 72 x 576"}};
  unsigned seed = 20;
  for (const Case& c : cases) {
    const sg::kernels::Conv2dParams& p = c.p;
    const Vec x = random_vec(p.N * p.Cin * p.H * p.W, seed++), w = random_vec(p.Cout * p.Cin * 9, seed++);
    Vec y(p.N * p.Cout * p.H * p.W);
    cpu::conv2d_forward(p, x.data(), w.data(), y.data());
    const int64_t bytes = kc::conv2d_forward_workspace<float>(p, math);
    Dev xd(x), wd(w), yd(y.size()), ws((size_t)bytes / 4 + 1);
    kc::conv2d_forward<float>(p, xd.p, wd.p, yd.p, math, nullptr, ws.p);
    report(std::string(c.what) + tag, yd.host(), y, tol);
    // the weight gradient of the same conv
    const Vec dy = random_vec(y.size(), seed++);
    Vec dw(w.size());
    cpu::conv2d_weight_grad(p, dy.data(), x.data(), dw.data());
    const int64_t elems = kc::conv2d_weight_grad_workspace(p, math);
    Dev dyd(dy), dwd(dw.size()), wws((size_t)elems);
    kc::conv2d_weight_grad<float>(p, dyd.p, xd.p, dwd.p, wws.p, math);
    report(std::string("conv2d_weight_grad of ") + c.what + tag, dwd.host(), dw, tol);
  }
  // conv_transpose2d stride 2: four phase GEMMs sharing one packed x
  const sg::kernels::Conv2dParams pt{1, 40, 8, 8, 72, 3, 3, 2, 2, 1, 1, 1, 1, 1};
  const Vec x = random_vec(pt.N * pt.Cin * pt.H * pt.W, seed++), w = random_vec(pt.Cin * pt.Cout * 9, seed++);
  Vec y(pt.N * pt.Cout * 16 * 16);
  cpu::conv_transpose2d_forward(pt, x.data(), w.data(), y.data());
  const int64_t bytes = kc::conv_transpose2d_forward_workspace<float>(pt, math);
  Dev xd(x), wd(w), yd(y.size()), ws((size_t)bytes / 4 + 1);
  kc::conv_transpose2d_forward<float>(pt, xd.p, wd.p, yd.p, math, ws.p);
  report(std::string("conv_transpose2d_forward stride 2, 72 x 256 x 40") + tag, yd.host(), y, tol);
}

void sums() {
  struct Case {
    std::vector<int64_t> shape;
    std::vector<bool> reduced;
    const char* what;
  };
  const Case cases[] = {{{2, 40000}, {false, true}, "sum block + split-S [2, 40000] over 1"},
                        {{300, 5000}, {false, true}, "sum block [300, 5000] over 1"},
                        {{3000, 40}, {true, false}, "sum column + split-S [3000, 40] over 0"},
                        {{20, 9000}, {true, false}, "sum column [20, 9000] over 0"},
                        {{30, 1000}, {false, true}, "sum warp [30, 1000] over 1"}};
  unsigned seed = 20;
  for (const Case& c : cases) {
    const int64_t rows = c.shape[0], cols = c.shape[1];
    const Vec a = random_vec(rows * cols, seed++);
    Vec want(c.reduced[0] ? cols : rows, 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) want[c.reduced[0] ? k : r] += a[r * cols + k];
    Dev ad(a), out(want.size());
    const size_t wsb = kc::sum_workspace_bytes(c.shape, c.reduced);
    void* ws = wsb ? kc::raw_malloc(wsb) : nullptr;
    kc::sum(c.shape, c.reduced, ad.p, out.p, ws);
    if (ws) kc::raw_free(ws);
    report(c.what, out.host(), want, 1e-6);
  }
}

void upfirdn() {
  const int64_t planes = 3, H = 20, W = 37;
  const Vec x = random_vec(planes * H * W, 40);
  const Vec f1 = {0.125, 0.375, 0.375, 0.125};
  struct Case {
    int64_t up, down;
    bool separable;
    const char* what;
  };
  const Case cases[] = {{2, 1, true, "upfirdn2d separable up 2 (several 16 x 32 tiles)"},
                        {1, 2, true, "upfirdn2d separable down 2"},
                        {2, 2, true, "upfirdn2d separable up 2 down 2"},
                        {2, 1, false, "upfirdn2d general (2-D filter in shared memory)"}};
  for (const Case& c : cases) {
    const int64_t k = 4;
    Vec f2(k * k);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) f2[i * k + j] = f1[i] * f1[j] * (c.separable ? 1.0 : 1.0 + 0.1 * j);
    sg::kernels::UpFirDn2dParams p;
    p.planes = planes, p.in_h = H, p.in_w = W, p.fh = p.fw = k;
    p.upx = p.upy = c.up, p.downx = p.downy = c.down, p.padx0 = p.pady0 = 2, p.gain = 2.0;
    p.out_h = (H * c.up + 2 + 1 - k) / c.down + 1, p.out_w = (W * c.up + 2 + 1 - k) / c.down + 1;
    Vec y(planes * p.out_h * p.out_w);
    cpu::upfirdn2d(p, x.data(), f2.data(), y.data());
    sg::kernels::UpFirDn2dParams q = p;  // the same parameters, with the 1-D filter when separable
    q.separable = c.separable;
    Dev xd(x), fd(c.separable ? f1 : f2), yd(y.size());
    kc::upfirdn2d(q, xd.p, fd.p, yd.p);
    report(c.what, yd.host(), y, 1e-5);
  }
}

// The thin 1x1 weight gradient (kernels/cuda/conv_thin.h): a shared-memory tree over each
// block's 256 threads, and pixel slices summed by a second kernel.
void thin_wgrad() {
  for (const bool to_rgb : {true, false}) {
    const sg::kernels::Conv2dParams p{2, to_rgb ? 9 : 3, 72, 72, to_rgb ? 3 : 9, 1, 1};
    const Vec x = random_vec(p.N * p.Cin * p.H * p.W, 30), dy = random_vec(p.N * p.Cout * p.H * p.W, 31);
    Vec dw(p.Cout * p.Cin);
    cpu::conv2d_weight_grad(p, dy.data(), x.data(), dw.data());
    const int64_t ws = kc::conv2d_weight_grad_workspace(p, kc::ConvMath::fma);
    Dev xd(x), dyd(dy), dwd(dw.size()), wsd(ws > 0 ? ws : 1);
    kc::conv2d_weight_grad(p, dyd.p, xd.p, dwd.p, wsd.p, kc::ConvMath::fma);
    report(std::string("conv1x1_thin_wgrad ") + (to_rgb ? "toRGB" : "fromRGB") + ", " + std::to_string(ws) +
               " workspace elements",
           dwd.host(), dw, 1e-5);
  }
}

}  // namespace

int main() {
  if (kc::device_count() == 0) {
    std::printf("sg_cuda_racecheck: no CUDA device\n");
    return 1;
  }
  std::printf("sg_cuda_racecheck on %s\n", kc::device_name().c_str());
  try {
    for (kc::ConvMath math : {kc::ConvMath::fma, kc::ConvMath::tf32_wmma, kc::ConvMath::tf32, kc::ConvMath::bf16})
      conv_family(math);
    for (kc::ConvMath math : {kc::ConvMath::tf32, kc::ConvMath::bf16}) conv_tc(math);
    thin_wgrad();
    sums();
    upfirdn();
  } catch (const std::exception& e) {
    std::printf("FAIL exception: %s\n", e.what());
    return 1;
  }
  std::printf("%s\n", g_failures ? "FAILED" : "all results match the CPU");
  return g_failures ? 1 : 0;
}
