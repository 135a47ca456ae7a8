// Kernel-level checks of CPU kernels that have more than one variant: each fast variant
// against the general one on randomized parameters (the op-level gradchecks and the PyTorch
// oracle see only the shapes the op table and the fixtures pick).
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cpu/conv.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/winograd.h"
#include "kernels/cpu/upfirdn2d.h"

namespace {

using sg::kernels::UpFirDn2dParams;

// upfirdn2d's separable variant (a 1-D filter [k]) against the direct one given outer(f, f)
// as a 2-D filter: every combination of up / down 1..3, filter length 1..10, pads from -2 to
// 4 (negative pads crop), flip and gain, odd sizes.
template <class T>
void check_upfirdn_separable(double tol) {
  std::mt19937_64 rng(1234);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::normal_distribution<double> normal;
  int checked = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    UpFirDn2dParams p;
    p.planes = uni(1, 3);
    p.in_h = uni(1, 9), p.in_w = uni(1, 9);
    p.fh = p.fw = uni(1, 10);  // above 8: the separable variant's run-time tap count
    p.upx = uni(1, 3), p.upy = uni(1, 3), p.downx = uni(1, 3), p.downy = uni(1, 3);
    p.padx0 = uni(-2, 4), p.pady0 = uni(-2, 4);
    const int64_t padx1 = uni(-2, 4), pady1 = uni(-2, 4);
    p.flip_filter = uni(0, 1) == 1;
    p.gain = uni(0, 1) == 1 ? 1.0 : 0.5 + uni(0, 8) * 0.5;
    const int64_t nw = p.in_w * p.upx + p.padx0 + padx1 - p.fw, nh = p.in_h * p.upy + p.pady0 + pady1 - p.fh;
    if (nw < 0 || nh < 0) continue;
    p.out_w = nw / p.downx + 1, p.out_h = nh / p.downy + 1;
    std::vector<T> x(p.planes * p.in_h * p.in_w), f(p.fh), f2(p.fh * p.fw);
    for (T& v : x) v = (T)normal(rng);
    for (T& v : f) v = (T)normal(rng);
    for (int64_t i = 0; i < p.fh; ++i)
      for (int64_t j = 0; j < p.fw; ++j) f2[i * p.fw + j] = f[i] * f[j];
    const size_t ny = size_t(p.planes * p.out_h * p.out_w);
    std::vector<T> y_sep(ny, T(777)), y_dir(ny, T(-777));  // every element must be written
    UpFirDn2dParams q = p;
    q.separable = true;
    sg::kernels::cpu::upfirdn2d<T>(q, x.data(), f.data(), y_sep.data());
    q.separable = false;
    sg::kernels::cpu::upfirdn2d<T>(q, x.data(), f2.data(), y_dir.data());
    double scale = 1;
    for (T v : y_dir) scale = std::max(scale, std::abs((double)v));
    for (size_t i = 0; i < ny; ++i) {
      const double d = std::abs((double)y_sep[i] - (double)y_dir[i]);
      if (d > tol * scale) {
        INFO("trial " << trial << ": up (" << p.upx << ", " << p.upy << ") down (" << p.downx << ", " << p.downy
                      << ") pad0 (" << p.padx0 << ", " << p.pady0 << ") k " << p.fh << " in " << p.in_h << "x" << p.in_w
                      << " out " << p.out_h << "x" << p.out_w << " flip " << p.flip_filter << " element " << i << ": "
                      << y_sep[i] << " vs " << y_dir[i]);
        REQUIRE(d <= tol * scale);
      }
    }
    ++checked;
  }
  CHECK(checked > 1000);
}

// f32 result against the f64 reference: max error within 1e-5 of the reference's scale (the
// op table's f32-vs-f64 tolerance), and nonzero (the f32 path really ran).
void check_f32_error(const std::string& what, const std::vector<double>& ref, const std::vector<float>& got) {
  double scale = 0, err = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::abs(ref[i]));
    err = std::max(err, std::abs(ref[i] - (double)got[i]));
  }
  INFO(what << ": max error " << err << " at scale " << scale);
  CHECK(err <= 1e-5 * scale);
  CHECK(err > 0);
}

}  // namespace

TEST_CASE("strided_copy kernel: views that repeat the innermost element (expand of a size-1 last dim)", "[kernels]") {
  // nearest-neighbour upsampling's view, [N, C, H, 1, W, 1] expanded to [N, C, H, 2, W, 2], and
  // others: repeats 2-4, a permuted source, a broadcast middle dim, size-1 dims, more threads
  // than rows; each against the index formula out[idx] = a[idx . sa].
  using sg::kernels::cpu::strided_copy;
  struct Case {
    std::vector<int64_t> shape, sa;
  };
  const std::vector<Case> cases = {
      {{2, 3, 4, 2, 5, 2}, {60, 20, 5, 0, 1, 0}},  // nearest_up2 of [2, 3, 4, 5]
      {{1, 1, 1, 2, 1, 2}, {1, 1, 1, 0, 1, 0}},    // 1x1 image
      {{3, 7, 3}, {7, 1, 0}},                      // repeat 3
      {{4, 5, 4}, {1, 4, 0}},                      // a transposed source, repeat 4
      {{2, 6, 2}, {0, 1, 0}},                      // a broadcast outer dim
      {{5, 2}, {1, 0}},                            // one row
      {{3, 1, 4, 2}, {4, 9, 1, 0}},                // a size-1 middle dim
      {{2, 3, 5}, {3, 1, 0}},                      // repeat 5: the general path
  };
  for (const Case& c : cases) {
    int64_t n = 1, src = 1;
    for (size_t d = 0; d < c.shape.size(); ++d) n *= c.shape[d], src += (c.shape[d] - 1) * c.sa[d];
    std::vector<float> a(src), out(n, -1.f), want(n);
    for (int64_t i = 0; i < src; ++i) a[i] = float(i) * 0.5f + 1.f;
    for (int64_t i = 0; i < n; ++i) {
      int64_t rest = i, off = 0;
      for (int d = (int)c.shape.size() - 1; d >= 0; --d) off += (rest % c.shape[d]) * c.sa[d], rest /= c.shape[d];
      want[i] = a[off];
    }
    strided_copy(c.shape, a.data(), c.sa, out.data());
    for (int64_t i = 0; i < n; ++i) {
      INFO("case of " << c.shape.size() << " dims, last " << c.shape.back() << ", element " << i);
      REQUIRE(out[i] == want[i]);
    }
  }
}

// strided_copy hands the views that swap the last two dims (transpose, permute) to transpose2d
// (kernels/cpu/transpose.h): 8x8 register blocks for f32 with AVX2, element blocks otherwise,
// split over the threads when large. Against the index formula out[idx] = a[idx . sa]: sizes
// that are and are not multiples of 8, a batch of matrices, a broadcast batch dim, a row stride
// wider than the rows (a slice's), one large enough for both threads; f32 and f64.
template <class T>
void check_transposing_copies() {
  using sg::kernels::cpu::strided_copy;
  struct Case {
    std::vector<int64_t> shape, sa;
  };
  const std::vector<Case> cases = {
      {{384, 192}, {1, 384}},          // a [192, 384] weight transposed
      {{600, 300}, {1, 600}},          // 180,000 elements: split over the threads
      {{13, 9}, {1, 13}},              // no full block
      {{19, 26}, {1, 19}},             // full blocks and both edges
      {{3, 20, 17}, {340, 1, 20}},     // a batch of three
      {{2, 16, 8}, {0, 1, 16}},        // a broadcast batch dim
      {{9, 10}, {1, 12}},              // rows 12 apart, 9 used
      {{4, 3, 16, 8}, {1, 4, 96, 12}}  // permute(0, 1 -> 2, 3): the general path above the matrix
  };
  for (const Case& c : cases) {
    int64_t n = 1, src = 1;
    for (size_t d = 0; d < c.shape.size(); ++d) n *= c.shape[d], src += (c.shape[d] - 1) * c.sa[d];
    std::vector<T> a(src), out(n, T(-1)), want(n);
    for (int64_t i = 0; i < src; ++i) a[i] = T(i) * T(0.5) + T(1);
    for (int64_t i = 0; i < n; ++i) {
      int64_t rest = i, off = 0;
      for (int d = (int)c.shape.size() - 1; d >= 0; --d) off += (rest % c.shape[d]) * c.sa[d], rest /= c.shape[d];
      want[i] = a[off];
    }
    strided_copy(c.shape, a.data(), c.sa, out.data());
    INFO("shape " << c.shape[0] << "x" << c.shape[1] << " of " << c.shape.size() << " dims, " << sizeof(T) * 8
                  << "-bit");
    REQUIRE(std::memcmp(out.data(), want.data(), n * sizeof(T)) == 0);
  }
}

TEST_CASE("strided_copy kernel: views that swap the last two dims (transpose)", "[kernels]") {
  check_transposing_copies<float>();
  check_transposing_copies<double>();
}

TEST_CASE("reduce_sum kernel: sums over a short innermost dim (2x2 mean pooling, an expand's gradient)", "[kernels]") {
  // The fast paths for a reduced last dim of size 2-4 (and the dim above it reduced too) against a naive sum that adds
  // each output's terms in index order, which is the kernel's order too: the same bits.
  using sg::kernels::cpu::reduce_sum;
  struct Case {
    std::vector<int64_t> shape, so;  // so: output stride per input dim (0: reduced)
    int64_t outputs;
  };
  const std::vector<Case> cases = {
      {{2, 3, 4, 2, 5, 2}, {60, 20, 5, 0, 1, 0}, 120},  // avg_pool2 of [2, 3, 8, 10]
      {{2, 3, 4, 2, 5, 2}, {60, 20, 5, 0, 1, 0}, 120},  // (the same view: an expand's gradient)
      {{3, 7, 3}, {7, 1, 0}, 21},                       // windows of 3
      {{4, 5, 4}, {1, 4, 0}, 20},                       // windows of 4, output transposed
      {{6, 2}, {0, 0}, 1},                              // everything into one sum
      {{5, 4, 2}, {0, 1, 0}, 4},                        // an outer reduced dim too
      {{3, 1, 4, 2}, {4, 0, 1, 0}, 12},                 // a size-1 dim
      {{300, 64, 2}, {64, 1, 0}, 300 * 64},             // large enough for the threads
      {{5, 7, 3, 3}, {7, 1, 0, 0}, 35},                 // 3x3 kernels' taps: two reduced dims
      {{4, 6, 3, 3}, {1, 4, 0, 0}, 24},                 // the same, output transposed
      {{3, 5, 2, 4}, {0, 1, 0, 0}, 5},                  // and an outer reduced dim
      {{384, 384, 3, 3}, {384, 1, 0, 0}, 384 * 384},    // seed32's widest, threads
  };
  for (const Case& c : cases) {
    int64_t n = 1;
    for (int64_t d : c.shape) n *= d;
    std::vector<float> a(n);
    for (int64_t i = 0; i < n; ++i) a[i] = std::sin(0.37f * float(i)) * 3.f + 0.1f * float(i % 7);
    std::vector<double> got(c.outputs, 0.0), want(c.outputs, 0.0);
    for (int64_t i = 0, r = c.shape.back(); i < n; i += r) {  // each window summed, then added
      int64_t rest = i, off = 0;
      for (int d = (int)c.shape.size() - 1; d >= 0; --d) off += (rest % c.shape[d]) * c.so[d], rest /= c.shape[d];
      double acc = 0;
      for (int64_t k = 0; k < r; ++k) acc += (double)a[i + k];
      want[off] += acc;
    }
    reduce_sum<float>(c.shape, a.data(), c.so, got.data());
    for (int64_t i = 0; i < c.outputs; ++i) {
      INFO("case of " << c.shape.size() << " dims, last " << c.shape.back() << ", output " << i);
      REQUIRE(got[i] == want[i]);
    }
  }
}

TEST_CASE("binary kernel: a contiguous operand times one value per row of its last dims", "[kernels]") {
  // The rows fast path (b broadcast over a's last dims, contiguous over the rest: a weight
  // [O, C, 3, 3] times [O, C, 1, 1]) against a naive loop, and shapes beside it that take the
  // general path (b broadcast over a leading dim too, b's leading dims transposed, b one value).
  using sg::kernels::cpu::binary;
  struct Case {
    std::vector<int64_t> shape, sb;  // sb: b's strides (0: broadcast)
  };
  const std::vector<Case> cases = {
      {{384, 384, 3, 3}, {384, 1, 0, 0}},  // seed32's widest weight term, threads
      {{5, 7, 3, 3}, {7, 1, 0, 0}},        // rows of 9
      {{2, 3, 4, 5}, {3, 1, 0, 0}},        // rows of 20
      {{4, 1, 6}, {1, 0, 0}},              // a size-1 dim among the leading ones
      {{3, 4, 1, 5}, {4, 1, 0, 0}},        // and among the broadcast ones
      {{3, 4, 5}, {0, 1, 0}},              // b broadcast over a leading dim: general path
      {{3, 4, 5}, {1, 3, 0}},              // b's leading dims transposed: general path
      {{3, 4, 5}, {0, 0, 0}},              // one value: general path
  };
  for (const Case& c : cases) {
    int64_t n = 1, nb = 1;
    for (size_t d = 0; d < c.shape.size(); ++d) n *= c.shape[d], nb += (c.shape[d] - 1) * c.sb[d];
    std::vector<int64_t> sa(c.shape.size());
    for (int64_t d = (int64_t)c.shape.size() - 1, s = 1; d >= 0; --d) sa[d] = s, s *= c.shape[d];
    std::vector<float> a(n), b(nb), got(n, 777.f), want(n);
    for (int64_t i = 0; i < n; ++i) a[i] = std::sin(0.37f * float(i)) * 3.f;
    for (int64_t i = 0; i < nb; ++i) b[i] = std::cos(0.91f * float(i)) + 0.5f;
    for (int64_t i = 0; i < n; ++i) {
      int64_t rest = i, off = 0;
      for (int d = (int)c.shape.size() - 1; d >= 0; --d) off += (rest % c.shape[d]) * c.sb[d], rest /= c.shape[d];
      want[i] = a[i] * b[off];
    }
    binary<float>(c.shape, a.data(), sa, b.data(), c.sb, got.data(), [](float x, float y) { return x * y; });
    INFO("case of " << c.shape.size() << " dims, first " << c.shape[0]);
    REQUIRE(std::memcmp(got.data(), want.data(), n * sizeof(float)) == 0);
  }
}

TEST_CASE("reduce_sum kernel: whole rows of the last dims, and the shapes beside them", "[kernels]") {
  // The rows fast path (every leading dim kept, contiguous in the output; every trailing dim
  // summed: [N, C, H, W] into [N, C, 1, 1]) and shapes that take the strided loops (a leading dim
  // summed too, the output's dims transposed, windows of 2, a full reduction), each against a
  // naive sum in double into an output that starts at 0.25 (the kernel adds into it).
  using sg::kernels::cpu::reduce_sum;
  struct Case {
    std::vector<int64_t> shape, so;  // so: the output's strides (0: summed)
  };
  const std::vector<Case> cases = {
      {{16, 384, 4, 4}, {384, 1, 0, 0}},  // seed32's 4x4 layers: rows of 16, threads
      {{3, 5, 7, 9}, {5, 1, 0, 0}},       // rows of 63
      {{4, 1, 6}, {1, 0, 0}},             // a size-1 dim among the kept ones
      {{2, 3, 1, 5}, {3, 1, 0, 0}},       // and among the summed ones
      {{2, 3, 4, 5}, {0, 1, 0, 0}},       // a leading dim summed: strided loop
      {{3, 4, 5}, {1, 3, 0}},             // the output's dims transposed: strided loop
      {{3, 4, 2}, {4, 1, 0}},             // windows of 2: strided loop
      {{3, 4, 5}, {0, 0, 0}},             // everything into one sum
  };
  for (const Case& c : cases) {
    int64_t n = 1, nout = 1;
    for (size_t d = 0; d < c.shape.size(); ++d) n *= c.shape[d], nout += (c.shape[d] - 1) * c.so[d];
    std::vector<float> a(n);
    for (int64_t i = 0; i < n; ++i) a[i] = std::sin(0.37f * float(i)) * 3.f;
    std::vector<double> got(nout, 0.25), want(nout, 0.25), mag(nout, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      int64_t rest = i, off = 0;
      for (int d = (int)c.shape.size() - 1; d >= 0; --d) off += (rest % c.shape[d]) * c.so[d], rest /= c.shape[d];
      want[off] += a[i], mag[off] += std::abs(a[i]);
    }
    reduce_sum<float>(c.shape, a.data(), c.so, got.data());
    INFO("case of " << c.shape.size() << " dims, first " << c.shape[0] << ", last " << c.shape.back());
    for (int64_t i = 0; i < nout; ++i) REQUIRE(std::abs(got[i] - want[i]) <= 1e-14 * (1.0 + mag[i]));
  }
}

TEST_CASE("upfirdn2d kernel: the separable variant equals the direct one (f64)", "[kernels]") {
  check_upfirdn_separable<double>(1e-12);
}

TEST_CASE("upfirdn2d kernel: the separable variant equals the direct one (f32)", "[kernels]") {
  check_upfirdn_separable<float>(2e-5);
}

// Many planes and a large image: the parallel path, and a shape from StyleGAN2 (the 4-tap blur
// after a stride-2 transposed conv, and the 2x downsampling before a strided conv). Variants 3
// and 4 have rows wide enough that the separable variant cuts each plane into several bands of
// output rows (kBandFloats in kernels/cpu/upfirdn2d.cpp), the last one shorter.
TEST_CASE("upfirdn2d kernel: separable equals direct on StyleGAN2's shapes, threaded", "[kernels]") {
  std::mt19937_64 rng(99);
  std::normal_distribution<double> normal;
  for (int variant = 0; variant < 5; ++variant) {
    UpFirDn2dParams p;
    p.planes = variant < 3 ? 64 : 3;
    p.in_h = p.in_w = variant == 0 ? 33 : 32;
    p.fh = p.fw = 4;
    if (variant == 0) p.padx0 = p.pady0 = 1, p.out_h = p.out_w = 32, p.gain = 4;  // blur after transposed conv
    if (variant == 1) p.upx = p.upy = 2, p.padx0 = p.pady0 = 2, p.out_h = p.out_w = 64, p.gain = 4;  // upsample2d
    if (variant == 2) p.downx = p.downy = 2, p.padx0 = p.pady0 = 1, p.out_h = p.out_w = 16;          // downsample2d
    if (variant ==
        3)  // upsample2d of a 37 x 301 image: 76 x 604 outputs, rows of 607 in P: 4 bands of up to 23 output rows
      p.in_h = 37, p.in_w = 301, p.upx = p.upy = 2, p.padx0 = p.pady0 = 2, p.out_h = 76, p.out_w = 604, p.gain = 4;
    if (variant == 4)  // downsample2d of a 101 x 1003 image: 51 x 502 outputs, 8 bands of up to 7 rows
      p.in_h = 101, p.in_w = 1003, p.downx = p.downy = 2, p.padx0 = p.pady0 = 1, p.out_h = 51, p.out_w = 502;
    std::vector<float> x(p.planes * p.in_h * p.in_w), f = {0.125f, 0.375f, 0.375f, 0.125f}, f2(16);
    for (float& v : x) v = (float)normal(rng);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) f2[i * 4 + j] = f[i] * f[j];
    std::vector<float> a(p.planes * p.out_h * p.out_w), b(a.size());
    p.separable = true;
    sg::kernels::cpu::upfirdn2d<float>(p, x.data(), f.data(), a.data());
    p.separable = false;
    sg::kernels::cpu::upfirdn2d<float>(p, x.data(), f2.data(), b.data());
    for (size_t i = 0; i < a.size(); ++i) REQUIRE(std::abs(a[i] - b[i]) <= 1e-5f * (1 + std::abs(b[i])));
  }
}

// Winograd F(2x2, 3x3) and F(4x4, 3x3) (kernels/cpu/winograd.h) against the im2col + GEMM path
// in f64 (which never takes Winograd): conv2d and conv_transpose2d, paddings 0-2, sizes that
// the tile does and does not divide, groups, batches whose tiles span images.
TEST_CASE("winograd kernel: conv2d, conv_transpose2d and the weight gradient equal the im2col path", "[kernels]") {
  std::mt19937_64 rng(5);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::normal_distribution<double> normal;
  int checked = 0;
  for (int trial = 0; trial < 60; ++trial) {
    sg::kernels::Conv2dParams p;
    const bool transposed = trial % 2 == 1;
    p.N = uni(1, 3), p.groups = uni(1, 2);
    p.Cin = p.groups * uni(16, 24), p.Cout = p.groups * uni(16, 24);
    p.H = uni(1, 11), p.W = uni(1, 11);
    p.kh = p.kw = 3;
    p.py = uni(0, 2), p.px = uni(0, 2);
    REQUIRE(sg::kernels::cpu::winograd_applies(p, transposed));
    const int64_t Ho = transposed ? p.H - 1 - 2 * p.py + 3 : p.H + 2 * p.py - 2;
    const int64_t Wo = transposed ? p.W - 1 - 2 * p.px + 3 : p.W + 2 * p.px - 2;
    if (Ho < 1 || Wo < 1) continue;
    std::vector<double> x(p.N * p.Cin * p.H * p.W), w(p.Cout * p.Cin / p.groups * 9);
    for (double& v : x) v = normal(rng);
    for (double& v : w) v = normal(rng);
    std::vector<double> dy(p.N * p.Cout * Ho * Wo), gb(w.size(), -777.0), b(dy.size(), -777.0);
    for (double& v : dy) v = normal(rng);
    if (!transposed) sg::kernels::cpu::conv2d_weight_grad<double>(p, dy.data(), x.data(), gb.data());
    if (transposed)
      sg::kernels::cpu::conv_transpose2d_forward<double>(p, x.data(), w.data(), b.data());
    else
      sg::kernels::cpu::conv2d_forward<double>(p, x.data(), w.data(), b.data());
    for (const int tile : {2, 4}) {
      if (!transposed) {  // the weight gradient of the same conv2d: dy [N, Cout, Ho, Wo]
        std::vector<double> ga(w.size(), 777.0);
        sg::kernels::cpu::conv2d_weight_grad_winograd<double>(p, dy.data(), x.data(), ga.data(), tile);
        for (size_t i = 0; i < ga.size(); ++i) {
          INFO("weight grad, F(" << tile << "x" << tile << ") trial " << trial << " N " << p.N << " groups " << p.groups
                                 << " C " << p.Cin << "->" << p.Cout << " " << p.H << "x" << p.W << " pad " << p.py
                                 << "," << p.px << " element " << i);
          REQUIRE(ga[i] == Approx(gb[i]).margin(1e-10));
        }
      }
      std::vector<double> a(dy.size(), 777.0);
      sg::kernels::cpu::conv2d_winograd<double>(p, x.data(), w.data(), a.data(), transposed, tile);
      for (size_t i = 0; i < a.size(); ++i) {
        INFO("F(" << tile << "x" << tile << ") trial " << trial << " transposed " << transposed << " N " << p.N
                  << " groups " << p.groups << " C " << p.Cin << "->" << p.Cout << " " << p.H << "x" << p.W << " pad "
                  << p.py << "," << p.px << " element " << i);
        REQUIRE(a[i] == Approx(b[i]).margin(1e-10));
      }
    }
    ++checked;
  }
  CHECK(checked > 30);
}

// Chunks of tiles that start and end inside a tile row (kernels/cpu/winograd.cpp splits a
// row into runs there): 64 channels make chunks of 128 tiles in F(2x2) and 64 in F(4x4), and
// rows of 10-12 (F(2x2)) or 5-6 tiles (F(4x4)) do not divide them; sizes the tile does not
// divide cut the last runs of the images.
TEST_CASE("winograd kernel: chunks that split tile rows equal the im2col path", "[kernels]") {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  struct Case {
    int64_t H, W, pad;
    bool transposed;
  };
  for (const Case& c : {Case{23, 21, 1, false}, Case{20, 22, 0, false}, Case{19, 24, 2, false}, Case{21, 23, 1, true},
                        Case{22, 20, 0, true}}) {
    sg::kernels::Conv2dParams p;
    p.N = 3, p.groups = 1, p.Cin = 64, p.Cout = 64, p.H = c.H, p.W = c.W, p.kh = p.kw = 3, p.py = p.px = c.pad;
    REQUIRE(sg::kernels::cpu::winograd_applies(p, c.transposed));
    const int64_t Ho = c.transposed ? p.H + 2 - 2 * p.py : p.H + 2 * p.py - 2;
    const int64_t Wo = c.transposed ? p.W + 2 - 2 * p.px : p.W + 2 * p.px - 2;
    REQUIRE((Ho + 1) / 2 * ((Wo + 1) / 2) * p.N > 128);  // more than one chunk
    std::vector<double> x(p.N * 64 * p.H * p.W), w(64 * 64 * 9), dy(p.N * 64 * Ho * Wo);
    for (auto* v : {&x, &w, &dy})
      for (double& e : *v) e = normal(rng);
    std::vector<double> b(dy.size(), -777.0), gb(w.size(), -777.0);
    if (c.transposed)
      sg::kernels::cpu::conv_transpose2d_forward<double>(p, x.data(), w.data(), b.data());
    else
      sg::kernels::cpu::conv2d_forward<double>(p, x.data(), w.data(), b.data());
    if (!c.transposed) sg::kernels::cpu::conv2d_weight_grad<double>(p, dy.data(), x.data(), gb.data());
    for (const int tile : {2, 4}) {
      std::vector<double> a(dy.size(), 777.0);
      sg::kernels::cpu::conv2d_winograd<double>(p, x.data(), w.data(), a.data(), c.transposed, tile);
      for (size_t i = 0; i < a.size(); ++i) {
        INFO("F(" << tile << "x" << tile << ") " << c.H << "x" << c.W << " pad " << c.pad << " transposed "
                  << c.transposed << " element " << i);
        REQUIRE(a[i] == Approx(b[i]).margin(1e-10));
      }
      if (c.transposed) continue;
      std::vector<double> ga(w.size(), 777.0);
      sg::kernels::cpu::conv2d_weight_grad_winograd<double>(p, dy.data(), x.data(), ga.data(), tile);
      for (size_t i = 0; i < ga.size(); ++i) {
        INFO("weight grad F(" << tile << "x" << tile << ") " << c.H << "x" << c.W << " pad " << c.pad << " element "
                              << i);
        REQUIRE(ga[i] == Approx(gb[i]).margin(1e-9));
      }
    }
  }
}

// f32 Winograd against f64 im2col with 512 input channels, where the transforms' rounding
// error would show: within the op table's f32-vs-f64 tolerance (1e-5 of the output scale;
// measured: under 1e-6).
TEST_CASE("winograd kernel: f32 error with 512 channels stays within the f32 tolerance", "[kernels]") {
  // (conv2d, conv_transpose2d and conv2d's weight gradient)
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  for (const bool transposed : {false, true}) {
    sg::kernels::Conv2dParams p;
    p.N = 2, p.Cin = 512, p.Cout = 32, p.H = p.W = 8, p.kh = p.kw = 3, p.py = p.px = 1;
    REQUIRE(sg::kernels::cpu::winograd_applies(p, transposed));
    std::vector<double> x(p.N * p.Cin * 64), w(transposed ? 512 * 32 * 9 : 32 * 512 * 9);
    for (double& v : x) v = normal(rng);
    for (double& v : w) v = normal(rng) / std::sqrt(512.0 * 9);
    std::vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end());
    std::vector<double> ref(p.N * 32 * 64);
    if (transposed)  // x [2, 512, 8, 8], w [512, 32, 3, 3]
      sg::kernels::cpu::conv_transpose2d_forward<double>(p, x.data(), w.data(), ref.data());
    else
      sg::kernels::cpu::conv2d_forward<double>(p, x.data(), w.data(), ref.data());
    std::vector<double> dy(ref.size()), gref(w.size());  // the weight gradient, dy [2, 32, 8, 8]
    for (double& v : dy) v = normal(rng);
    std::vector<float> dyf(dy.begin(), dy.end());
    if (!transposed) sg::kernels::cpu::conv2d_weight_grad<double>(p, dy.data(), x.data(), gref.data());
    for (const int tile : {2, 4}) {
      const std::string name = "F(" + std::to_string(tile) + "x" + std::to_string(tile) + ") ";
      std::vector<float> got(ref.size());
      sg::kernels::cpu::conv2d_winograd<float>(p, xf.data(), wf.data(), got.data(), transposed, tile);
      check_f32_error(name + "transposed " + std::to_string(transposed), ref, got);
      if (transposed) continue;
      std::vector<float> gf(w.size());
      sg::kernels::cpu::conv2d_weight_grad_winograd<float>(p, dyf.data(), xf.data(), gf.data(), tile);
      check_f32_error(name + "weight grad", gref, gf);
    }
    // conv2d_forward / conv_transpose2d_forward take the default tile (F(2x2) at 8x8)
    std::vector<float> got(ref.size());
    if (transposed)
      sg::kernels::cpu::conv_transpose2d_forward<float>(p, xf.data(), wf.data(), got.data());
    else
      sg::kernels::cpu::conv2d_forward<float>(p, xf.data(), wf.data(), got.data());
    check_f32_error("dispatched, transposed " + std::to_string(transposed), ref, got);
  }
}

// The f32 small-planes input transform (kernels/cpu/winograd.cpp): blocks of 16 channels are
// copied channel-last through 8x8 register transposes (AVX2) and only the plane's border is
// zeroed, a partial block of channels goes the scalar way. Image widths 1-17 and 32 give rows
// of 1-7 columns (masked loads), exactly 8, 9-15, 16 and more; channel counts 16, 32 (two full
// blocks) and 40 (a partial one); paddings 0-2; the forward, the transposed conv and the weight
// gradient, against the im2col path in f64.
TEST_CASE("winograd kernel: f32 small planes (16-channel transposing copy) equal the f64 path", "[kernels]") {
  std::mt19937_64 rng(13);
  std::normal_distribution<double> normal;
  int checked = 0;
  for (const int64_t C : {16, 32, 40})
    for (const int64_t Wd : {1, 3, 4, 6, 8, 9, 12, 15, 16, 17, 32})
      for (const bool transposed : {false, true}) {
        sg::kernels::Conv2dParams p;
        p.N = 2, p.Cin = C, p.Cout = 16, p.H = Wd == 32 ? 12 : Wd + 1, p.W = Wd, p.kh = p.kw = 3;
        p.py = p.px = (C + Wd + (int)transposed) % 3;
        const int64_t Ho = transposed ? p.H + 2 - 2 * p.py : p.H + 2 * p.py - 2;
        const int64_t Wo = transposed ? p.W + 2 - 2 * p.px : p.W + 2 * p.px - 2;
        if (Ho < 1 || Wo < 1) continue;
        if (transposed) std::swap(p.Cin, p.Cout);  // x [N, Cin = 16 / C]: the plane copies C channels
        REQUIRE(sg::kernels::cpu::winograd_applies(p, transposed));
        std::vector<double> x(p.N * p.Cin * p.H * p.W), w(p.Cin * p.Cout * 9), dy(p.N * p.Cout * Ho * Wo);
        for (auto* v : {&x, &w, &dy})
          for (double& e : *v) e = normal(rng);
        std::vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end()), dyf(dy.begin(), dy.end());
        std::vector<double> ref(dy.size()), gref(w.size());
        if (transposed)
          sg::kernels::cpu::conv_transpose2d_forward<double>(p, x.data(), w.data(), ref.data());
        else
          sg::kernels::cpu::conv2d_forward<double>(p, x.data(), w.data(), ref.data());
        if (!transposed) sg::kernels::cpu::conv2d_weight_grad<double>(p, dy.data(), x.data(), gref.data());
        for (const int tile : {2, 4}) {
          const std::string name = "F(" + std::to_string(tile) + ") C " + std::to_string(C) + " W " +
                                   std::to_string(Wd) + " pad " + std::to_string(p.py) + " transposed " +
                                   std::to_string(transposed);
          std::vector<float> got(ref.size(), 777.f);
          sg::kernels::cpu::conv2d_winograd<float>(p, xf.data(), wf.data(), got.data(), transposed, tile);
          check_f32_error(name, ref, got);
          if (transposed) continue;
          std::vector<float> gf(w.size(), 777.f);
          sg::kernels::cpu::conv2d_weight_grad_winograd<float>(p, dyf.data(), xf.data(), gf.data(), tile);
          check_f32_error(name + " weight grad", gref, gf);
        }
        ++checked;
      }
  CHECK(checked >= 60);
}

// A Winograd call of the two tests below: x [N, C, H, H], C -> O channels, 3x3, padding `pad`.
struct WinogradCase {
  int64_t N, C, O, H, pad;
  bool transposed, scales;
};

// Winograd's AVX-512 transforms (kernels/cpu/winograd.cpp): F(2x2)'s small-plane input transform
// of full 16-channel blocks (input_tiles_f2_avx512) and, on 4x4 outputs, its output transform
// and the write of each image's block (outputs_f2_4x4_avx512); F(4x4)'s weight transform, 8
// kernels per register (weight_transform4_avx512; the lanes past a multiple of 8 the portable
// way). Each does the portable loops' operations in their order: the same bits with the AVX-512
// kernels on and off (the GEMM's kernels give the same bits either way). 4x4 outputs from 4x4
// (padding 1) and 6x6 (padding 0) inputs and transposed from 4x4 (padding 1) and 2x2 (padding
// 0); batches whose chunks are and are not multiples of 16 tiles; channels 16, 48, 40 and 37
// (partial blocks: 6 x 5 weight lanes), 20 output channels (a partial sliver), 65 (D's
// minibatch-stddev conv) and 384 (the split by output channels); other output sizes; the
// modulated conv's scales; both tiles; 1 and 2 threads. And against f64 im2col.
TEST_CASE("winograd kernel: the AVX-512 transforms give the portable ones' bits", "[kernels]") {
  if (!sg::kernels::cpu::gemm_avx512_available())
    WARN("this CPU has no AVX-512: only the portable transforms run here, compared with themselves");
  std::mt19937_64 rng(37);
  std::normal_distribution<double> normal;
  const int threads = sg::kernels::cpu::num_threads();
  int outputs_4x4 = 0;
  for (const WinogradCase& c :
       {WinogradCase{16, 64, 64, 4, 1, false, false}, WinogradCase{16, 64, 64, 4, 1, true, false},
        WinogradCase{8, 48, 32, 6, 0, false, true}, WinogradCase{5, 40, 24, 4, 1, false, false},
        WinogradCase{4, 32, 40, 2, 0, true, false}, WinogradCase{12, 65, 64, 4, 1, false, true},
        WinogradCase{3, 16, 16, 4, 1, false, false}, WinogradCase{4, 48, 48, 8, 1, false, false},
        WinogradCase{2, 32, 16, 7, 1, true, false}, WinogradCase{16, 384, 384, 4, 1, true, false},
        WinogradCase{8, 384, 384, 4, 1, false, true}, WinogradCase{2, 37, 20, 8, 1, false, false}})
    for (const int tile : {2, 4})
      for (const int team : {1, 2}) {
        sg::kernels::Conv2dParams p;
        p.N = c.N, p.Cin = c.C, p.Cout = c.O, p.H = p.W = c.H, p.kh = p.kw = 3, p.py = p.px = c.pad;
        const int64_t Ho = c.transposed ? c.H + 2 - 2 * c.pad : c.H + 2 * c.pad - 2;
        outputs_4x4 += tile == 2 && Ho == 4;
        std::vector<double> x(c.N * c.C * c.H * c.H), w(c.O * c.C * 9), xs(c.N * c.C), ys(c.N * c.O);
        for (auto* v : {&x, &w, &xs, &ys})
          for (double& e : *v) e = normal(rng);
        std::vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end()), xsf(xs.begin(), xs.end()),
            ysf(ys.begin(), ys.end());
        std::vector<float> y[2];
        sg::kernels::cpu::set_num_threads(team);
        for (const bool wide : {true, false}) {  // AVX-512 first: no packed weights left by the other
          const bool before = sg::kernels::cpu::gemm_use_avx512(wide);
          y[wide].assign(c.N * c.O * Ho * Ho, 777.f);  // [N, Cout, Ho, Ho], transposed or not
          sg::kernels::cpu::conv2d_winograd<float>(p, xf.data(), wf.data(), y[wide].data(), c.transposed, tile,
                                                   c.scales ? xsf.data() : nullptr, c.scales ? ysf.data() : nullptr);
          sg::kernels::cpu::gemm_use_avx512(before);
        }
        sg::kernels::cpu::set_num_threads(threads);
        const std::string name = "N " + std::to_string(c.N) + " C " + std::to_string(c.C) + " O " +
                                 std::to_string(c.O) + " " + std::to_string(c.H) + "x" + std::to_string(c.H) + " pad " +
                                 std::to_string(c.pad) + " transposed " + std::to_string(c.transposed) + " scales " +
                                 std::to_string(c.scales) + " threads " + std::to_string(team) + " F(" +
                                 std::to_string(tile) + ")";
        INFO(name);
        REQUIRE(std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float)) == 0);
        std::vector<double> xm(x), ref(y[0].size());
        if (c.scales)
          for (size_t i = 0; i < xm.size(); ++i) xm[i] *= xs[i / (c.H * c.H)];
        if (c.transposed)
          sg::kernels::cpu::conv_transpose2d_forward<double>(p, xm.data(), w.data(), ref.data());
        else
          sg::kernels::cpu::conv2d_forward<double>(p, xm.data(), w.data(), ref.data());
        if (c.scales)
          for (size_t i = 0; i < ref.size(); ++i) ref[i] *= ys[i / (Ho * Ho)];
        check_f32_error(name, ref, y[1]);
      }
  CHECK(outputs_4x4 >= 14);
}

// F(2x2) calls with few tiles against many output channels (seed32's 4x4 layers: at least as
// many channels as tiles, the packed weights past 4 MiB) split the work over the threads by
// output channels (kernels/cpu/winograd.h, winograd_split_outputs). The forward and the
// transposed conv: the same products in the same order as the split by tiles, so the same bits.
// The weight gradient: one sum over all the tiles where the tile split adds its threads' partial
// sums, so the f32 rounding differs: both within f32 tolerance of the f64 im2col gradient.
// Output channels a multiple of the packed sliver and not, tiles cut by the output's edge, the
// modulated conv's scales, seed32's 384 channels at batch 16; 2 threads.
TEST_CASE("winograd kernel: the split by output channels gives the split by tiles' numbers", "[kernels]") {
  std::mt19937_64 rng(29);
  std::normal_distribution<double> normal;
  const int threads = sg::kernels::cpu::num_threads();
  sg::kernels::cpu::set_num_threads(2);
  for (const WinogradCase& c :
       {WinogradCase{4, 256, 256, 4, 1, false, false}, WinogradCase{4, 256, 256, 4, 1, true, false},
        WinogradCase{3, 264, 250, 4, 1, false, true}, WinogradCase{3, 250, 264, 4, 1, true, false},
        WinogradCase{2, 256, 262, 5, 0, false, false}, WinogradCase{16, 384, 384, 4, 1, false, false},
        WinogradCase{16, 384, 384, 4, 1, true, false}}) {
    sg::kernels::Conv2dParams p;
    p.N = c.N, p.Cin = c.C, p.Cout = c.O, p.H = p.W = c.H, p.kh = p.kw = 3, p.py = p.px = c.pad;
    const int64_t Ho = c.transposed ? c.H + 2 - 2 * c.pad : c.H + 2 * c.pad - 2;
    std::vector<double> x(c.N * c.C * c.H * c.H), w(c.O * c.C * 9), dy(c.N * c.O * Ho * Ho);
    for (auto* v : {&x, &w, &dy})
      for (double& e : *v) e = normal(rng);
    std::vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end()), dyf(dy.begin(), dy.end());
    std::vector<float> xs(c.N * c.C), ys(c.N * c.O);
    for (auto* v : {&xs, &ys})
      for (float& e : *v) e = (float)normal(rng);
    std::vector<float> y[2], dw[2];
    for (const bool split : {false, true}) {
      const bool before = sg::kernels::cpu::winograd_split_outputs(split);
      y[split].assign(dy.size(), 777.f);
      sg::kernels::cpu::conv2d_winograd<float>(p, xf.data(), wf.data(), y[split].data(), c.transposed, 2,
                                               c.scales ? xs.data() : nullptr, c.scales ? ys.data() : nullptr);
      if (!c.transposed) {
        dw[split].assign(w.size(), 777.f);
        sg::kernels::cpu::conv2d_weight_grad_winograd<float>(p, dyf.data(), xf.data(), dw[split].data(), 2);
      }
      sg::kernels::cpu::winograd_split_outputs(before);
    }
    const std::string name = "N " + std::to_string(c.N) + " C " + std::to_string(c.C) + " O " + std::to_string(c.O) +
                             " " + std::to_string(c.H) + "x" + std::to_string(c.H) + " pad " + std::to_string(c.pad) +
                             " transposed " + std::to_string(c.transposed) + " scales " + std::to_string(c.scales);
    INFO(name);
    CHECK(std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float)) == 0);
    if (c.transposed) continue;
    std::vector<double> ref(w.size());
    sg::kernels::cpu::conv2d_weight_grad<double>(p, dy.data(), x.data(), ref.data());
    check_f32_error(name + " weight grad, split by tiles", ref, dw[0]);
    check_f32_error(name + " weight grad, split by output channels", ref, dw[1]);
  }
  sg::kernels::cpu::set_num_threads(threads);
}

// The im2col / col2im + GEMM convolutions (kernels/cpu/conv.cpp) against a direct convolution
// written from conv.h's formulas, in f64 (bits aside, every path) and f32: strides 1-3 per axis
// (stride 2 along x has its own row gathers and scatter-adds, with the row widths 4, 8 and 16
// unrolled: the Wo of the trials is often one of those), paddings 0-2 (rows that read outside
// the image), kernels 1-4, groups, batches of 1-3 (the batched path for grids of <= 64 pixels,
// the per-image tasks above), output_padding for the transposed conv. Few channels, so that
// Winograd never applies.
template <class T>
void check_conv_direct(double tol) {
  std::mt19937_64 rng(sizeof(T) == 4 ? 21 : 22);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::normal_distribution<double> normal;
  int checked = 0, s2 = 0;
  for (int trial = 0; trial < 400; ++trial) {
    sg::kernels::Conv2dParams p;
    p.N = uni(1, 3), p.groups = uni(1, 2);
    p.Cin = p.groups * uni(1, 4), p.Cout = p.groups * uni(1, 4);
    p.kh = uni(1, 4), p.kw = uni(1, 4);
    p.sy = uni(1, 3), p.sx = trial % 2 == 0 ? 2 : uni(1, 3);
    p.py = uni(0, std::min<int>(2, p.kh - 1)), p.px = uni(0, std::min<int>(2, p.kw - 1));
    p.H = uni(1, 19);
    const int64_t want_wo = std::array<int64_t, 4>{4, 8, 16, uni(1, 9)}[uni(0, 3)];
    p.W = std::max<int64_t>(1, (want_wo - 1) * p.sx + p.kw - 2 * p.px);
    const int64_t Ho = (p.H + 2 * p.py - p.kh) / p.sy + 1, Wo = (p.W + 2 * p.px - p.kw) / p.sx + 1;
    if (p.H + 2 * p.py < p.kh || p.W + 2 * p.px < p.kw) continue;
    const int64_t Cg = p.Cin / p.groups, Cgo = p.Cout / p.groups;
    std::vector<double> x(p.N * p.Cin * p.H * p.W), w(p.Cout * Cg * p.kh * p.kw), dy(p.N * p.Cout * Ho * Wo);
    for (double& v : x) v = normal(rng);
    for (double& v : w) v = normal(rng);
    for (double& v : dy) v = normal(rng);
    // direct: y = conv2d(x, w); dw = its weight gradient for dy; dx = conv2d's data gradient
    // of dy, which is conv_transpose2d(dy, w) with the output_padding that gives back H x W
    // (and, for the tolerance, the sums of the products' magnitudes: a long f32 sum's rounding
    // grows with them; one wrong or missing product moves a result by far more)
    std::vector<double> y(dy.size(), 0.0), dw(w.size(), 0.0), dx(x.size(), 0.0);
    std::vector<double> ym(dy.size(), 0.0), dwm(w.size(), 0.0), dxm(x.size(), 0.0);
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t co = 0; co < p.Cout; ++co)
        for (int64_t oy = 0; oy < Ho; ++oy)
          for (int64_t ox = 0; ox < Wo; ++ox)
            for (int64_t ci = 0; ci < Cg; ++ci)
              for (int64_t i = 0; i < p.kh; ++i)
                for (int64_t j = 0; j < p.kw; ++j) {
                  const int64_t iy = oy * p.sy - p.py + i, ix = ox * p.sx - p.px + j;
                  if (iy < 0 || iy >= p.H || ix < 0 || ix >= p.W) continue;
                  const int64_t xi = ((n * p.Cin + co / Cgo * Cg + ci) * p.H + iy) * p.W + ix;
                  const int64_t wi = ((co * Cg + ci) * p.kh + i) * p.kw + j,
                                yi = ((n * p.Cout + co) * Ho + oy) * Wo + ox;
                  y[yi] += w[wi] * x[xi], ym[yi] += std::abs(w[wi] * x[xi]);
                  dw[wi] += dy[yi] * x[xi], dwm[wi] += std::abs(dy[yi] * x[xi]);
                  dx[xi] += dy[yi] * w[wi], dxm[xi] += std::abs(dy[yi] * w[wi]);
                }
    auto cast = [](const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); };
    const std::vector<T> xt = cast(x), wt = cast(w), dyt = cast(dy);
    std::vector<T> ya(y.size(), T(777)), dwa(w.size(), T(777)), dxa(x.size(), T(777));
    sg::kernels::cpu::conv2d_forward<T>(p, xt.data(), wt.data(), ya.data());
    sg::kernels::cpu::conv2d_weight_grad<T>(p, dyt.data(), xt.data(), dwa.data());
    sg::kernels::Conv2dParams t = p;  // the data gradient as a transposed conv of dy
    t.Cin = p.Cout, t.Cout = p.Cin, t.H = Ho, t.W = Wo;
    t.opy = p.H - ((Ho - 1) * p.sy - 2 * p.py + p.kh), t.opx = p.W - ((Wo - 1) * p.sx - 2 * p.px + p.kw);
    // conv_transpose2d's weights are [Cin, Cout/groups, kh, kw]: of t, [p.Cout, Cg, kh, kw], i.e. w as stored
    sg::kernels::cpu::conv_transpose2d_forward<T>(t, dyt.data(), wt.data(), dxa.data());
    INFO("trial " << trial << " N " << p.N << " groups " << p.groups << " C " << p.Cin << "->" << p.Cout << " " << p.H
                  << "x" << p.W << " k " << p.kh << "x" << p.kw << " stride " << p.sy << "," << p.sx << " pad " << p.py
                  << "," << p.px << " out " << Ho << "x" << Wo);
    for (size_t i = 0; i < y.size(); ++i) REQUIRE(std::abs(double(ya[i]) - y[i]) <= tol * (1e-3 + ym[i]));
    for (size_t i = 0; i < dw.size(); ++i) REQUIRE(std::abs(double(dwa[i]) - dw[i]) <= tol * (1e-3 + dwm[i]));
    for (size_t i = 0; i < dx.size(); ++i) REQUIRE(std::abs(double(dxa[i]) - dx[i]) <= tol * (1e-3 + dxm[i]));
    ++checked;
    s2 += p.sx == 2 && (Wo == 4 || Wo == 8 || Wo == 16);
  }
  CHECK(checked > 300);
  CHECK(s2 > 60);  // the unrolled stride-2 row widths, often
}

TEST_CASE("conv kernels: the im2col / col2im paths equal a direct convolution (f64)", "[kernels]") {
  check_conv_direct<double>(1e-12);
}

TEST_CASE("conv kernels: the im2col / col2im paths equal a direct convolution (f32)", "[kernels]") {
  check_conv_direct<float>(3e-5);
}

namespace {

// A 1x1 conv's weight gradient with many channels and few pixels per image runs as one GEMM
// over the batch (conv.cpp pointwise_batched: seed32's 384-channel skip at 4x4); the shapes
// below take that path (M K >= 8 HW (M + K)) and the per-image one, against a direct sum.
template <class T>
void check_pointwise_wgrad(double tol) {
  std::mt19937_64 rng(37);
  std::normal_distribution<double> normal;
  struct Case {
    int64_t N, Cin, Cout, H, groups;
  };
  // The last three take tasks of several images (conv.cpp per_task: 8x8 and 4x4 grids, a
  // [Cgo, Cg] result of at least 2^15, 21 images = a run of 16 and one of 5).
  for (const Case& c : {Case{3, 16, 16, 1, 1}, Case{4, 64, 64, 2, 1}, Case{2, 40, 24, 1, 1}, Case{3, 64, 96, 2, 2},
                        Case{2, 96, 64, 4, 1}, Case{5, 8, 8, 3, 1}, Case{9, 192, 384, 8, 1}, Case{6, 512, 256, 8, 2},
                        Case{21, 256, 192, 4, 1}}) {
    sg::kernels::Conv2dParams p;
    p.N = c.N, p.Cin = c.Cin, p.Cout = c.Cout, p.H = p.W = c.H, p.groups = c.groups;
    const int64_t Cg = p.Cin / p.groups, Cgo = p.Cout / p.groups, HW = p.H * p.W;
    std::vector<double> x(p.N * p.Cin * HW), dy(p.N * p.Cout * HW), dw(p.Cout * Cg, 0.0), dwm(dw.size(), 0.0);
    for (double& v : x) v = normal(rng);
    for (double& v : dy) v = normal(rng);
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t co = 0; co < p.Cout; ++co)
        for (int64_t ci = 0; ci < Cg; ++ci)
          for (int64_t q = 0; q < HW; ++q) {
            const double v = dy[(n * p.Cout + co) * HW + q] * x[(n * p.Cin + co / Cgo * Cg + ci) * HW + q];
            dw[co * Cg + ci] += v, dwm[co * Cg + ci] += std::abs(v);
          }
    const std::vector<T> xt(x.begin(), x.end()), dyt(dy.begin(), dy.end());
    std::vector<T> got(dw.size(), T(777));
    sg::kernels::cpu::conv2d_weight_grad<T>(p, dyt.data(), xt.data(), got.data());
    INFO("N " << p.N << " Cin " << p.Cin << " Cout " << p.Cout << " " << p.H << "x" << p.W << " groups " << p.groups);
    for (size_t i = 0; i < dw.size(); ++i) REQUIRE(std::abs(double(got[i]) - dw[i]) <= tol * (1e-3 + dwm[i]));
  }
}

}  // namespace

TEST_CASE("conv kernels: a 1x1 weight gradient batched over the images equals a direct sum", "[kernels]") {
  check_pointwise_wgrad<double>(1e-12);
  check_pointwise_wgrad<float>(3e-5);
}

// The data gradient of a 3x3, stride-2, padding-0 conv on grids 8 or 4 wide (small's 17x17 and
// 9x9 Ddown convs) writes each image row from its taps (conv.cpp col2im_s2k3_avx512) where the
// AVX-512 kernels are on: the bits of col2im's scatter-adds, which run with them off (the GEMM
// gives the same bits either way). Non-square grids, several groups, grids that take the
// general path (16 wide, output padding), zero weights and +0 / -0 inputs.
TEST_CASE("conv kernels: the stride-2 data gradient written row by row gives col2im's bits", "[kernels]") {
  if (!sg::kernels::cpu::gemm_avx512_available())
    WARN("this CPU has no AVX-512: only col2im's path runs here, compared with itself");
  std::mt19937_64 rng(43);
  std::normal_distribution<float> normal;
  struct Case {
    int64_t N, Cin, Cout, H, W, groups, op;
  };
  for (const Case& c : {Case{16, 64, 64, 8, 8, 1, 0}, Case{16, 64, 64, 4, 4, 1, 0}, Case{3, 24, 40, 5, 8, 2, 0},
                        Case{2, 16, 8, 7, 4, 1, 0}, Case{4, 32, 32, 6, 16, 1, 0}, Case{3, 16, 16, 8, 8, 1, 1}}) {
    sg::kernels::Conv2dParams t;  // conv_transpose2d: dy [N, Cin, H, W] -> dx [N, Cout, Ho, Wo]
    t.N = c.N, t.Cin = c.Cin, t.Cout = c.Cout, t.H = c.H, t.W = c.W, t.groups = c.groups, t.kh = t.kw = 3;
    t.sy = t.sx = 2, t.opy = t.opx = c.op;
    const int64_t Ho = (t.H - 1) * 2 + 3 + c.op, Wo = (t.W - 1) * 2 + 3 + c.op;
    std::vector<float> dy(t.N * t.Cin * t.H * t.W), w(t.Cin * (t.Cout / t.groups) * 9);
    for (float& v : dy) v = normal(rng);
    for (float& v : w) v = normal(rng);
    for (size_t i = 0; i < w.size(); i += 7) w[i] = 0.f;                   // some taps add +0
    for (size_t i = 0; i < dy.size(); i += 5) dy[i] = i % 2 ? -0.f : 0.f;  // and -0
    std::vector<float> want(t.N * t.Cout * Ho * Wo, 777.f), got(want.size(), 777.f);
    const bool was = sg::kernels::cpu::gemm_use_avx512(false);
    sg::kernels::cpu::conv_transpose2d_forward<float>(t, dy.data(), w.data(), want.data());
    sg::kernels::cpu::gemm_use_avx512(true);
    sg::kernels::cpu::conv_transpose2d_forward<float>(t, dy.data(), w.data(), got.data());
    sg::kernels::cpu::gemm_use_avx512(was);
    INFO("N " << t.N << " Cin " << t.Cin << " Cout " << t.Cout << " " << t.H << "x" << t.W << " groups " << t.groups
              << " output padding " << c.op);
    REQUIRE(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
  }
}

// The 1x1 weight gradient over the batch where both operands are packed from the images
// (conv.cpp PointwiseColsT with gemm_pack_a_segments: pixels per image and the group's input
// channels multiples of 16, AVX-512): the bits of the GEMM on the matrices written out, dY_g
// [Cgo, N HW] times X_g [Cg, N HW]^T, which is what the path without AVX-512 runs. Segments
// that straddle the GEMM's k blocks (48 pixels), a partial last k block, rows that are not a
// multiple of the packed kernel's 6, groups.
TEST_CASE("conv kernels: a 1x1 weight gradient packed from the images gives the written-out GEMM's bits", "[kernels]") {
  std::mt19937_64 rng(41);
  std::normal_distribution<float> normal;
  struct Case {
    int64_t N, Cin, Cout, H, W, groups;
  };
  for (const Case& c : {Case{20, 256, 256, 4, 4, 1}, Case{7, 768, 768, 6, 8, 1}, Case{9, 512, 520, 4, 4, 1},
                        Case{18, 512, 512, 4, 4, 2}, Case{32, 384, 384, 4, 4, 1}})
    for (const bool avx512 : {true, false}) {
      const bool was = sg::kernels::cpu::gemm_use_avx512(avx512);
      sg::kernels::Conv2dParams p;
      p.N = c.N, p.Cin = c.Cin, p.Cout = c.Cout, p.H = c.H, p.W = c.W, p.groups = c.groups;
      const int64_t Cg = p.Cin / p.groups, Cgo = p.Cout / p.groups, HW = p.H * p.W, cols = p.N * HW;
      std::vector<float> x(p.N * p.Cin * HW), dy(p.N * p.Cout * HW), want(p.Cout * Cg), got(want.size(), 777.f);
      for (float& v : x) v = normal(rng);
      for (float& v : dy) v = normal(rng);
      for (int64_t g = 0; g < p.groups; ++g) {
        std::vector<float> a(Cgo * cols), b(Cg * cols);
        for (int64_t n = 0; n < p.N; ++n)
          for (int64_t q = 0; q < HW; ++q) {
            for (int64_t o = 0; o < Cgo; ++o) a[o * cols + n * HW + q] = dy[(n * p.Cout + g * Cgo + o) * HW + q];
            for (int64_t ci = 0; ci < Cg; ++ci) b[ci * cols + n * HW + q] = x[(n * p.Cin + g * Cg + ci) * HW + q];
          }
        sg::kernels::cpu::gemm<float>(false, true, Cgo, Cg, cols, 1.f, a.data(), cols, b.data(), cols, 0.f,
                                      want.data() + g * Cgo * Cg, Cg);
      }
      sg::kernels::cpu::conv2d_weight_grad<float>(p, dy.data(), x.data(), got.data());
      sg::kernels::cpu::gemm_use_avx512(was);
      INFO("N " << p.N << " Cin " << p.Cin << " Cout " << p.Cout << " " << p.H << "x" << p.W << " groups " << p.groups
                << " avx512 " << avx512);
      REQUIRE(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
    }
}

namespace {

// conv2d_forward_scaled against its definition run as three passes (scale x, conv2d_forward,
// scale y): the same bits, in the fused small-planes Winograd path (f32, 3x3, at most 8 tiles
// per row; channel counts that are and are not multiples of the 16-lane copy) and in the
// three-pass fallback (wider images, 1x1 and strided convs, f64), with either scale absent.
template <class T>
void check_conv_scaled() {
  std::mt19937_64 rng(29);
  std::normal_distribution<double> normal;
  int fused = 0, unfused = 0;
  struct Case {
    int64_t N, Cin, Cout, H, W, k, s, pad;
  };
  const Case cases[] = {{3, 16, 16, 4, 4, 3, 1, 1},   {2, 32, 48, 8, 8, 3, 1, 1},  {2, 40, 24, 16, 16, 3, 1, 1},
                        {2, 24, 32, 32, 32, 3, 1, 1}, {1, 16, 16, 7, 13, 3, 1, 0}, {2, 16, 16, 48, 40, 3, 1, 1},
                        {2, 8, 16, 8, 8, 3, 1, 1},    {2, 20, 12, 8, 8, 1, 1, 0},  {2, 16, 16, 9, 9, 3, 2, 0}};
  for (const Case& c : cases)
    for (int which = 0; which < 4; ++which) {  // both scales, x only, y only, neither
      sg::kernels::Conv2dParams p;
      p.N = c.N, p.Cin = c.Cin, p.Cout = c.Cout, p.H = c.H, p.W = c.W, p.kh = p.kw = c.k;
      p.sy = p.sx = c.s, p.py = p.px = c.pad;
      const int64_t Ho = (p.H + 2 * p.py - p.kh) / p.sy + 1, Wo = (p.W + 2 * p.px - p.kw) / p.sx + 1;
      std::vector<T> x(p.N * p.Cin * p.H * p.W), w(p.Cout * p.Cin * p.kh * p.kw), xs(p.N * p.Cin), ys(p.N * p.Cout);
      for (auto* v : {&x, &w, &xs, &ys})
        for (T& e : *v) e = (T)normal(rng);
      const T* xsp = which == 0 || which == 1 ? xs.data() : nullptr;
      const T* ysp = which == 0 || which == 2 ? ys.data() : nullptr;
      std::vector<T> xm(x), ref(p.N * p.Cout * Ho * Wo), got(ref.size(), T(777));
      if (xsp)
        for (size_t i = 0; i < xm.size(); ++i) xm[i] = x[i] * xsp[i / (p.H * p.W)];
      sg::kernels::cpu::conv2d_forward<T>(p, xm.data(), w.data(), ref.data());
      if (ysp)
        for (size_t i = 0; i < ref.size(); ++i) ref[i] = ref[i] * ysp[i / (Ho * Wo)];
      sg::kernels::cpu::conv2d_forward_scaled<T>(p, x.data(), w.data(), got.data(), xsp, ysp);
      const bool fuses = std::is_same_v<T, float> && sg::kernels::cpu::winograd_fuses_scales(p, false);
      ++(fuses ? fused : unfused);
      INFO("N " << p.N << " Cin " << p.Cin << " Cout " << p.Cout << " " << p.H << "x" << p.W << " k " << p.kh
                << " stride " << p.sy << " scales " << which << " fused " << fuses);
      REQUIRE(std::memcmp(ref.data(), got.data(), ref.size() * sizeof(T)) == 0);
    }
  if (std::is_same_v<T, float>) {
    CHECK(fused >= 16);  // the cases above reach both paths
    CHECK(unfused >= 16);
  }
}

}  // namespace

// The downsampling convs' forward (stride 2, padding 0, output rows 4, 8 or 16 wide) packs the
// GEMM's columns straight from the images (conv.cpp S2Columns); it must give the bits of im2col
// and the GEMM, computed here image by image with the exposed building blocks. Batched (small
// grids) and per-image task paths, groups, 3x3 and 2x2 and 4x4 kernels, channel counts whose
// taps straddle the GEMM's k blocks of 256; the portable packer and, where the CPU has AVX-512,
// the AVX-512 one (rows 8 and 16 wide), or for 3x3 kernels and rows 16 wide (inputs 33 and 34
// wide) no packing at all: the GEMM reads column-split rows in place (S2Planes; output channels
// that are and are not a multiple of its 6-row tile, one to three k blocks, groups), whose data
// gradient then adds the GEMM's rows straight into column-split output rows, in col2im's order,
// and whose weight gradient (output channels per group a multiple of 32) reads col in place (an
// odd number of input channels: a partial 6-row sliver of taps, and taps not a multiple of 16). And the data gradient's
// col2im, whose AVX-512 scatter-add must give the portable one's bits, and the weight gradient, whose AVX-512 path
// packs col^T from the images (S2ColumnsT), against im2col's (the same GEMM on the same values).
TEST_CASE("conv kernels: the stride-2 forward's implicit columns give im2col's bits", "[kernels]") {
  std::mt19937_64 rng(31);
  std::normal_distribution<float> normal;
  struct Case {
    int64_t N, Cin, Cout, H, k, groups;
  };
  for (const Case& c :
       {Case{3, 16, 16, 33, 3, 1}, Case{4, 64, 32, 17, 3, 1}, Case{5, 40, 24, 9, 3, 1}, Case{2, 32, 32, 17, 3, 2},
        Case{1, 48, 16, 33, 3, 1}, Case{3, 30, 20, 32, 2, 1}, Case{2, 16, 8, 11, 4, 1}, Case{2, 64, 64, 65, 3, 1},
        Case{1, 32, 16, 17, 3, 1}, Case{3, 32, 16, 9, 3, 1}, Case{4, 64, 64, 33, 3, 1}, Case{2, 24, 20, 34, 3, 1},
        Case{2, 32, 32, 33, 3, 2}, Case{5, 21, 32, 34, 3, 1}, Case{3, 32, 64, 33, 3, 2}}) {
    sg::kernels::Conv2dParams p;
    p.N = c.N, p.Cin = c.Cin, p.Cout = c.Cout, p.H = p.W = c.H, p.kh = p.kw = c.k, p.sy = p.sx = 2, p.groups = c.groups;
    const int64_t Ho = (p.H - p.kh) / 2 + 1, Wo = Ho, Cg = p.Cin / p.groups, Og = p.Cout / p.groups;
    const int64_t K = Cg * p.kh * p.kw, HoWo = Ho * Wo;
    std::vector<float> x(p.N * p.Cin * p.H * p.W), w(p.Cout * K), col(K * HoWo);
    for (auto* v : {&x, &w})
      for (float& e : *v) e = normal(rng);
    std::vector<float> ref(p.N * p.Cout * HoWo), got(ref.size(), 777.f);
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t g = 0; g < p.groups; ++g) {
        sg::kernels::cpu::im2col<float>(x.data() + (n * p.Cin + g * Cg) * p.H * p.W, Cg, p.H, p.W, p.kh, p.kw, 2, 2, 0,
                                        0, Ho, Wo, 0, Ho, col.data(), false);
        sg::kernels::cpu::gemm<float>(false, false, Og, HoWo, K, 1.f, w.data() + g * Og * K, K, col.data(), HoWo, 0.f,
                                      ref.data() + (n * p.Cout + g * Og) * HoWo, HoWo);
      }
    // The data gradient (conv_transpose2d of dy), whose col2im scatter-adds the rows: the same
    // bits with the portable and the AVX-512 scatter-add.
    sg::kernels::Conv2dParams t = p;
    t.Cin = p.Cout, t.Cout = p.Cin, t.H = Ho, t.W = Wo, t.opy = t.opx = (p.H - p.kh) % 2;
    std::vector<float> dy(ref.size()), dx[2], dw[2];
    for (float& e : dy) e = normal(rng);
    for (bool wide : {false, true}) {  // the portable packer, and the AVX-512 one for rows 8 and 16 wide
      const bool before = sg::kernels::cpu::gemm_use_avx512(wide);
      std::fill(got.begin(), got.end(), 777.f);
      sg::kernels::cpu::conv2d_forward<float>(p, x.data(), w.data(), got.data());
      dx[wide].assign(x.size(), 777.f);
      sg::kernels::cpu::conv_transpose2d_forward<float>(t, dy.data(), w.data(), dx[wide].data());
      dw[wide].assign(w.size(), 777.f);
      sg::kernels::cpu::conv2d_weight_grad<float>(p, dy.data(), x.data(), dw[wide].data());
      sg::kernels::cpu::gemm_use_avx512(before);
      INFO("N " << p.N << " Cin " << p.Cin << " Cout " << p.Cout << " H " << p.H << " k " << p.kh << " groups "
                << p.groups << " Wo " << Wo << " AVX-512 " << (wide && sg::kernels::cpu::gemm_avx512_available()));
      REQUIRE(std::memcmp(ref.data(), got.data(), ref.size() * sizeof(float)) == 0);
    }
    REQUIRE(std::memcmp(dx[0].data(), dx[1].data(), x.size() * sizeof(float)) == 0);
    REQUIRE(std::memcmp(dw[0].data(), dw[1].data(), w.size() * sizeof(float)) == 0);
  }
}

// 1x1 convs on 4x4 grids (seed32's 384-channel skip) run two images per GEMM where the CPU has
// AVX-512 (conv.cpp PointwisePairs: B's two slivers read from two images, C's written to two):
// the forward and the data gradient (conv_transpose2d) must give the bits of one GEMM per image
// and group, with the AVX-512 kernels on and off. An odd batch (the last image alone), weights
// past one k block (384 channels), output channels not a multiple of the 6-row tile, groups.
TEST_CASE("conv kernels: 1x1 convs on 4x4 grids two images at a time give the per-image GEMMs' bits", "[kernels]") {
  std::mt19937_64 rng(37);
  std::normal_distribution<float> normal;
  struct Case {
    int64_t N, Cin, Cout, groups;
  };
  for (const Case& c : {Case{2, 384, 384, 1}, Case{5, 384, 384, 1}, Case{3, 20, 14, 1}, Case{4, 48, 96, 2},
                        Case{8, 64, 30, 1}, Case{7, 300, 40, 2}}) {
    sg::kernels::Conv2dParams p;
    p.N = c.N, p.Cin = c.Cin, p.Cout = c.Cout, p.H = p.W = 4, p.kh = p.kw = 1, p.groups = c.groups;
    const int64_t Cg = p.Cin / p.groups, Og = p.Cout / p.groups, HW = 16;
    std::vector<float> x(p.N * p.Cin * HW), w(p.Cout * Cg), dy(p.N * p.Cout * HW);
    for (auto* v : {&x, &w, &dy})
      for (float& e : *v) e = normal(rng);
    std::vector<float> y_ref(dy.size()), dx_ref(x.size());
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t g = 0; g < p.groups; ++g) {
        const float* wg = w.data() + g * Og * Cg;  // [Og, Cg]
        sg::kernels::cpu::gemm<float>(false, false, Og, HW, Cg, 1.f, wg, Cg, x.data() + (n * p.Cin + g * Cg) * HW, HW,
                                      0.f, y_ref.data() + (n * p.Cout + g * Og) * HW, HW);
        sg::kernels::cpu::gemm<float>(true, false, Cg, HW, Og, 1.f, wg, Cg, dy.data() + (n * p.Cout + g * Og) * HW, HW,
                                      0.f, dx_ref.data() + (n * p.Cin + g * Cg) * HW, HW);
      }
    sg::kernels::Conv2dParams t = p;  // the data gradient: conv_transpose2d of dy with the same weights
    t.Cin = p.Cout, t.Cout = p.Cin;
    for (const int kernels : {0, 1, 2}) {  // AVX2; AVX-512 6x32 tiles; AVX-512 with 12x32 tiles where 12 rows remain
      const bool wide = kernels > 0, tall = kernels == 2;
      const bool before = sg::kernels::cpu::gemm_use_avx512(wide), before_tall = sg::kernels::cpu::gemm_tall_wide(tall);
      std::vector<float> y(dy.size(), 777.f), dx(x.size(), 777.f);
      sg::kernels::cpu::conv2d_forward<float>(p, x.data(), w.data(), y.data());
      sg::kernels::cpu::conv_transpose2d_forward<float>(t, dy.data(), w.data(), dx.data());
      sg::kernels::cpu::gemm_use_avx512(before), sg::kernels::cpu::gemm_tall_wide(before_tall);
      INFO("N " << p.N << " Cin " << p.Cin << " Cout " << p.Cout << " groups " << p.groups << " AVX-512 "
                << (wide && sg::kernels::cpu::gemm_avx512_available()) << " 12x32 " << tall);
      REQUIRE(std::memcmp(y_ref.data(), y.data(), y.size() * sizeof(float)) == 0);
      REQUIRE(std::memcmp(dx_ref.data(), dx.data(), dx.size() * sizeof(float)) == 0);
    }
  }
}

// conv_weight_sq_sums (the demodulation's weight term, [C, O]) takes 16 input channels per
// step where the AVX-512 kernels are on (gathered taps, f64 sums in lanes): the bits of its
// definition (each square rounded to f32, summed in f64 over each row's taps, then the rows),
// with the AVX-512 kernels on and off; channel counts with and without a tail of fewer than 16,
// kernels 1x1 to 4x4; and f64 (the scalar loop) within rounding.
TEST_CASE("conv kernels: conv_weight_sq_sums gives its definition's bits", "[kernels]") {
  std::mt19937_64 rng(41);
  std::normal_distribution<double> normal;
  struct Case {
    int64_t O, C, kh, kw;
  };
  for (const Case& c : {Case{384, 384, 3, 3}, Case{7, 37, 3, 3}, Case{5, 16, 1, 1}, Case{3, 3, 3, 3}, Case{9, 48, 4, 4},
                        Case{6, 20, 2, 3}, Case{2, 15, 3, 3}}) {
    const int64_t khw = c.kh * c.kw;
    std::vector<float> w(c.O * c.C * khw), ref(c.C * c.O);
    std::vector<double> wd(w.size()), refd(ref.size());
    for (size_t i = 0; i < w.size(); ++i) w[i] = (float)normal(rng), wd[i] = normal(rng);
    for (int64_t o = 0; o < c.O; ++o)
      for (int64_t ci = 0; ci < c.C; ++ci) {
        double total = 0, totald = 0;
        for (int64_t i = 0; i < c.kh; ++i) {
          double row = 0, rowd = 0;
          for (int64_t j = 0; j < c.kw; ++j) {
            const float q = w[(o * c.C + ci) * khw + i * c.kw + j];
            const float sq = q * q;
            const double qd = wd[(o * c.C + ci) * khw + i * c.kw + j];
            row += (double)sq, rowd += qd * qd;
          }
          total += row, totald += rowd;
        }
        ref[ci * c.O + o] = (float)total, refd[ci * c.O + o] = totald;
      }
    for (const bool wide : {false, true}) {
      const bool before = sg::kernels::cpu::gemm_use_avx512(wide);
      std::vector<float> got(ref.size(), 777.f);
      std::vector<double> gotd(ref.size(), 777.);
      sg::kernels::cpu::conv_weight_sq_sums<float>(w.data(), c.O, c.C, c.kh, c.kw, got.data());
      sg::kernels::cpu::conv_weight_sq_sums<double>(wd.data(), c.O, c.C, c.kh, c.kw, gotd.data());
      sg::kernels::cpu::gemm_use_avx512(before);
      INFO("O " << c.O << " C " << c.C << " kernel " << c.kh << "x" << c.kw << " AVX-512 "
                << (wide && sg::kernels::cpu::gemm_avx512_available()));
      REQUIRE(std::memcmp(ref.data(), got.data(), ref.size() * sizeof(float)) == 0);
      for (size_t i = 0; i < refd.size(); ++i)  // (f64: GCC may contract a square and its sum into an FMA)
        REQUIRE(std::abs(gotd[i] - refd[i]) <= 1e-14 * refd[i]);
    }
  }
}

TEST_CASE("conv kernels: conv2d_forward_scaled equals scaling x, the conv, scaling y, bit for bit", "[kernels]") {
  check_conv_scaled<float>();
  check_conv_scaled<double>();
  sg::kernels::Conv2dParams p;  // the fused path refuses what it cannot fuse, naming itself
  p.N = 1, p.Cin = p.Cout = 16, p.H = 40, p.W = 40, p.kh = p.kw = 3, p.py = p.px = 1;
  REQUIRE_FALSE(sg::kernels::cpu::winograd_fuses_scales(p, false));
  std::vector<float> x(16 * 1600, 1.f), w(16 * 16 * 9, 1.f), y(16 * 1600), s(16, 2.f);
  REQUIRE_THROWS_WITH(sg::kernels::cpu::conv2d_winograd<float>(p, x.data(), w.data(), y.data(), false, 0, s.data()),
                      Catch::Matchers::Contains("conv2d_winograd: scales need the small planes"));
}

TEST_CASE("winograd kernel: an unsupported output tile is an error that names it", "[kernels]") {
  sg::kernels::Conv2dParams p;
  p.N = 1, p.Cin = p.Cout = 16, p.H = p.W = 8, p.kh = p.kw = 3, p.py = p.px = 1;
  std::vector<float> x(16 * 64), w(16 * 16 * 9), y(16 * 64);
  if (!std::getenv("SG_WINOGRAD_TILE")) {  // the default choice (winograd.h)
    CHECK(sg::kernels::cpu::winograd_tile(32, 32, 64, false) == 4);
    CHECK(sg::kernels::cpu::winograd_tile(16, 16, 64, false) == 4);
    CHECK(sg::kernels::cpu::winograd_tile(16, 15, 64, false) == 4);
    CHECK(sg::kernels::cpu::winograd_tile(8, 8, 192, false) == 4);
    CHECK(sg::kernels::cpu::winograd_tile(8, 8, 64, false) == 4);
    CHECK(sg::kernels::cpu::winograd_tile(8, 8, 48, false) == 2);
    CHECK(sg::kernels::cpu::winograd_tile(7, 7, 384, false) == 2);
    CHECK(sg::kernels::cpu::winograd_tile(8, 8, 64, true) == 4);
    CHECK(sg::kernels::cpu::winograd_tile(4, 4, 384, true) == 2);
  }
  CHECK(sg::kernels::cpu::winograd_tile(3, 32, 64, true) == 2);
  REQUIRE_THROWS_WITH(sg::kernels::cpu::conv2d_winograd<float>(p, x.data(), w.data(), y.data(), false, 3),
                      Catch::Matchers::Contains("conv2d_winograd: Winograd output tile 3"));
  REQUIRE_THROWS_WITH(sg::kernels::cpu::conv2d_weight_grad_winograd<float>(p, y.data(), x.data(), w.data(), 6),
                      Catch::Matchers::Contains("conv2d_weight_grad_winograd: Winograd output tile 6"));
}

// ---- GEMM: the packed AVX2 / AVX-512 kernel (and Eigen) against an f64 sum ---------------------
namespace {

// C = alpha op(A) op(B) + beta C for random shapes around the micro-tile (6 x 16) and block
// (144 x 256 x 3072) edges, both transposes, padded leading dimensions, alpha / beta of
// 0, 1 and random values; beta == 0 with NaN in C (must not be read); the padding columns of
// C beyond N must stay untouched. Error bound: the f32 dot-product bound K u sum|a b|.
template <class F>
int check_gemm(F&& gemm_f32, int trials, bool big) {
  std::mt19937_64 rng(77);
  auto uni = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  std::uniform_real_distribution<float> val(-1.f, 1.f);
  int bad = 0;
  for (int t = 0; t < trials; ++t) {
    int64_t M = uni(1, 40), N = uni(1, 70), K = uni(0, 300);
    if (big && t < 3) M = uni(140, 160), N = uni(3060, 3100), K = uni(250, 300);  // past MC, NC, KC
    if (big && t == 3) M = uni(300, 420), N = uni(10, 40), K = uni(250, 300);     // threads split the rows
    const bool ta = uni(0, 1), tb = uni(0, 1);
    const int64_t lda = (ta ? M : K) + uni(0, 2), ldb = (tb ? K : N) + uni(0, 2), ldc = N + uni(0, 2);
    const int ka = uni(0, 2), kb = uni(0, 3);
    const float alpha = ka == 0 ? 1.f : ka == 1 ? 0.f : val(rng);
    const float beta = kb == 0 ? 0.f : kb == 1 ? 1.f : val(rng);
    std::vector<float> A(std::max<int64_t>(1, (ta ? K : M) * lda)), B(std::max<int64_t>(1, (tb ? N : K) * ldb));
    std::vector<float> C0(M * ldc), C;
    for (float& v : A) v = val(rng);
    for (float& v : B) v = val(rng);
    for (float& v : C0) v = val(rng);
    C = C0;
    if (beta == 0.f)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = std::nanf("");
    gemm_f32(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        const float got = C[i * ldc + j];
        if (j >= N) {
          bad += got != C0[i * ldc + j];
          continue;
        }
        double s = 0, sa = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double a = ta ? A[k * lda + i] : A[i * lda + k], b = tb ? B[j * ldb + k] : B[k * ldb + j];
          s += a * b, sa += std::fabs(a * b);
        }
        const double ref = alpha * s + (beta == 0.f ? 0.0 : beta * double(C0[i * ldc + j]));
        const double tol = (K + 2) * 6e-8 * (std::fabs(alpha) * sa + std::fabs(beta * C0[i * ldc + j])) + 1e-30;
        if (!(std::fabs(got - ref) <= tol)) {
          if (bad < 5)
            UNSCOPED_INFO("M " << M << " N " << N << " K " << K << " ta " << ta << " tb " << tb << " (" << i << ", "
                               << j << "): " << got << " vs " << ref);
          ++bad;
        }
      }
  }
  return bad;
}

}  // namespace

// The AVX-512 micro-kernels (6x32 and 12x16, kernels/cpu/gemm_avx2.cpp) against the AVX2
// 6x16 one, bit for bit: each output adds its products in the same order, so which kernel runs
// must never change a result (the main job's trajectory depends on it). Random shapes around
// both tiles' edges (N 1-70: wide, tall and single slivers; M 1-40: 12-row pairs and 6-row
// rests), past the block sizes, both transposes, alpha / beta, op(A) prepacked or not.
// gemm_prepacked_row_table, gemm_prepacked_scatter_add and gemm_row_table_a (the stride-2
// forward's in-place B, its data gradient's in-place C, its weight gradient's in-place A: the
// bits are checked in "the stride-2 forward's implicit columns give im2col's bits") and
// gemm_prepacked_rows (the Winograd split by output channels: "the split by output channels
// gives the split by tiles' bits") refuse what they cannot run.
TEST_CASE("gemm kernel: the row-table GEMMs refuse what they cannot run, naming themselves", "[kernels][errors]") {
  using namespace sg::kernels::cpu;
  REQUIRE(gemm_avx2_available());  // every machine this project builds for (x86-64 with AVX2)
  std::vector<float> a(12 * 8, 1.f), base(64, 1.f), c(12 * 32);
  std::vector<int32_t> off(8, 0);
  const PackedA pa = gemm_pack_a_avx2(false, 12, 8, a.data(), 8);
  RowTable b{base.data(), 16, off.data()};
  REQUIRE_THROWS_WITH(gemm_prepacked_row_table(pa, 16, b, c.data(), 32),
                      Catch::Matchers::Contains("gemm_prepacked_row_table") &&
                          Catch::Matchers::Contains("N a multiple of 32 (got 16)"));
  b.off = nullptr;
  REQUIRE_THROWS_WITH(gemm_prepacked_row_table(pa, 32, b, c.data(), 32),
                      Catch::Matchers::Contains("gemm_prepacked_row_table"));
  b.off = off.data();
  REQUIRE_THROWS_WITH(gemm_prepacked_scatter_add(pa, 48, base.data(), 48, b),
                      Catch::Matchers::Contains("gemm_prepacked_scatter_add") &&
                          Catch::Matchers::Contains("N a multiple of 32 (got 48)"));
  std::vector<float> wide(12 * 300, 1.f);  // K past one k block: the products would be added in two parts
  const PackedA tall = gemm_pack_a_avx2(false, 12, 300, wide.data(), 300);
  REQUIRE_THROWS_WITH(gemm_prepacked_scatter_add(tall, 32, base.data(), 32, b),
                      Catch::Matchers::Contains("K <= 256 (got 300)"));
  REQUIRE_THROWS_WITH(gemm_prepacked_rows(pa, 3, 6, true, 8, 1.f, base.data(), 8, 0.f, c.data(), 8),
                      Catch::Matchers::Contains("gemm_prepacked_rows") &&
                          Catch::Matchers::Contains("rows 3 .. 9 of its 12 from a multiple of 6"));
  REQUIRE_THROWS_WITH(gemm_prepacked_rows(pa, 6, 12, true, 8, 1.f, base.data(), 8, 0.f, c.data(), 8),
                      Catch::Matchers::Contains("rows 6 .. 18 of its 12"));
  REQUIRE_THROWS_WITH(gemm_row_table_a(12, 32, 24, b, base.data(), 32, false, c.data(), 32),
                      Catch::Matchers::Contains("gemm_row_table_a") && Catch::Matchers::Contains("(got 24)"));
  REQUIRE_THROWS_WITH(gemm_row_table_a(12, 16, 16, b, base.data(), 16, false, c.data(), 32),
                      Catch::Matchers::Contains("N a multiple of 32 (got 16)"));
  const bool before = gemm_use_avx512(false);  // the 256-bit kernel alone: no row-table kernel
  CHECK_THROWS_WITH(gemm_prepacked_row_table(pa, 32, b, c.data(), 32), Catch::Matchers::Contains("AVX-512 kernels on"));
  CHECK_THROWS_WITH(gemm_prepacked_scatter_add(pa, 32, base.data(), 32, b),
                    Catch::Matchers::Contains("AVX-512 kernels on"));
  gemm_use_avx512(before);
}

TEST_CASE("gemm kernel: the AVX-512 micro-kernels give the AVX2 kernel's bits", "[kernels]") {
  using namespace sg::kernels::cpu;
  if (!gemm_avx512_available()) {
    WARN("this CPU has no AVX-512F: only the AVX2 kernel runs here, nothing to compare");
    return;
  }
  const bool was_on = gemm_use_avx512(false);  // (on by default, off with SG_CPU_GEMM=avx2)
  REQUIRE(gemm_use_avx512(true) == false);     // the switch reports what it replaced
  REQUIRE(gemm_use_avx512(was_on) == true);
  std::mt19937_64 rng(91);
  auto uni = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  std::uniform_real_distribution<float> val(-1.f, 1.f);
  int compared = 0;
  for (int t = 0; t < 300; ++t) {
    int64_t M = uni(1, 40), N = uni(1, 70), K = uni(0, 300);
    if (t < 3) M = uni(140, 160), N = uni(3060, 3100), K = uni(250, 300);  // past MC, NC, KC
    const bool ta = uni(0, 1), tb = uni(0, 1), pre = uni(0, 1);
    const int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
    const float alpha = t % 3 == 0 ? 1.f : val(rng), beta = t % 4 == 0 ? 0.f : val(rng);
    std::vector<float> A(std::max<int64_t>(1, M * K)), B(std::max<int64_t>(1, K * N)), C0(M * N);
    for (auto* v : {&A, &B, &C0})
      for (float& e : *v) e = val(rng);
    // out[0]: the 256-bit kernel; out[1], out[2]: the AVX-512 kernels with the 12x16 one's
    // broadcasts from memory and spread in registers (gemm_spread_broadcasts); out[3]: with the
    // 12x32 kernel where two slivers of A and B remain (gemm_tall_wide).
    std::vector<float> out[4];
    for (const int v : {0, 1, 2, 3}) {
      const bool before = gemm_use_avx512(v > 0), spread_before = gemm_spread_broadcasts(v == 2);
      const bool tall_before = gemm_tall_wide(v == 3);
      std::vector<float>& C = out[v];
      C = C0;
      if (pre)
        gemm_prepacked_avx2(gemm_pack_a_avx2(ta, M, K, A.data(), lda), tb, N, alpha, B.data(), ldb, beta, C.data(),
                            ldc);
      else
        gemm_f32_avx2(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
      gemm_use_avx512(before), gemm_spread_broadcasts(spread_before), gemm_tall_wide(tall_before);
    }
    INFO("M " << M << " N " << N << " K " << K << " ta " << ta << " tb " << tb << " prepacked " << pre);
    for (int v = 1; v < 4; ++v) {
      INFO("configuration " << v);
      REQUIRE(std::memcmp(out[0].data(), out[v].data(), out[0].size() * sizeof(float)) == 0);
    }
    ++compared;
  }
  CHECK(compared == 300);
  const bool spread_was = gemm_spread_broadcasts(false);  // the switch reports what it replaced
  REQUIRE(gemm_spread_broadcasts(true) == false);
  REQUIRE(gemm_spread_broadcasts(spread_was) == true);
  const bool tall_was = gemm_tall_wide(false);
  REQUIRE(gemm_tall_wide(true) == false);
  REQUIRE(gemm_tall_wide(tall_was) == true);
}

TEST_CASE("gemm kernel: the packed GEMM (AVX2 / AVX-512 kernels) equals an f64 sum, edges, transposes, alpha / beta",
          "[kernels]") {
  // The same for op(A) packed once (gemm_pack_a / gemm_prepacked) below.
  using namespace sg::kernels::cpu;
  if (!gemm_avx2_available()) {
    // The dispatcher then always takes Eigen's GEMM; say so rather than pass silently.
    WARN("this CPU has no AVX2 + FMA: the packed GEMM is not used here, only Eigen's is checked");
  } else {
    // From here (outside a parallel region) large calls split N or M into one slice per
    // thread; from inside a parallel region every call runs on the calling thread.
    auto outside_and_inside = [](auto&& f, int trials_outside, int trials_inside) {
      CHECK(check_gemm(f, trials_outside, true) == 0);
      int bad_inside = 0;
      parallel_region(2, [&](int tid, int) {
        if (tid == 0) bad_inside = check_gemm(f, trials_inside, true);
      });
      CHECK(bad_inside == 0);
    };
    outside_and_inside(gemm_f32_avx2, 400, 100);
    // op(A) packed once (gemm_pack_a_avx2), then multiplied: the same contract.
    auto prepacked = [](bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                        const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
      const PackedA P = gemm_pack_a_avx2(ta, M, K, A, lda);
      gemm_prepacked_avx2(P, tb, N, alpha, B, ldb, beta, C, ldc);
    };
    outside_and_inside(prepacked, 300, 100);
    // op(A) written in place by its producer (gemm_packed_a_prepare + packed_a_offset, as the
    // Winograd weight transform does), into a handle that held another operand before (NaN),
    // then multiplied: the same contract, and the same bytes as gemm_pack_a_avx2's.
    auto in_place = [](bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                       const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
      thread_local PackedA P;
      std::fill(P.data.begin(), P.data.end(), std::numeric_limits<float>::quiet_NaN());
      gemm_packed_a_prepare_avx2(P, M, K);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t k = 0; k < K; ++k) P.data[packed_a_offset(P, i, k)] = ta ? A[k * lda + i] : A[i * lda + k];
      const PackedA ref = gemm_pack_a_avx2(ta, M, K, A, lda);
      REQUIRE(P.data.size() == ref.data.size());
      if (!P.data.empty())  // (K == 0 packs nothing: memcmp of null pointers is undefined)
        REQUIRE(std::memcmp(P.data.data(), ref.data.data(), P.data.size() * sizeof(float)) == 0);
      gemm_prepacked_avx2(P, tb, N, alpha, B, ldb, beta, C, ldc);
    };
    outside_and_inside(in_place, 150, 50);
    // op(A) stored as segments of columns (gemm_pack_a_segments: a batch of images side by side,
    // the 1x1 weight gradient's dY): the segments copied apart with a gap, packed, the same bytes
    // as gemm_pack_a_avx2's of the whole matrix, then multiplied.
    auto segments = [](bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                       const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
      auto at = [&](int64_t i, int64_t k) { return ta ? A[k * lda + i] : A[i * lda + k]; };
      const int64_t seg = 1 + (M * 7 + K) % 40, segs = (K + seg - 1) / seg, stride = M * seg + 5;
      std::vector<float> split((size_t)std::max<int64_t>(1, segs * stride), 1e30f);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t k = 0; k < K; ++k) split[(k / seg) * stride + i * seg + k % seg] = at(i, k);
      thread_local PackedA P;
      gemm_pack_a_segments_avx2(P, M, K, split.data(), seg, seg, stride);
      const PackedA ref = gemm_pack_a_avx2(ta, M, K, A, lda);
      REQUIRE(P.data.size() == ref.data.size());
      if (!P.data.empty()) REQUIRE(std::memcmp(P.data.data(), ref.data.data(), P.data.size() * sizeof(float)) == 0);
      gemm_prepacked_avx2(P, tb, N, alpha, B, ldb, beta, C, ldc);
    };
    outside_and_inside(segments, 150, 50);
    // op(B) produced by a packer (ImplicitB, gemm_prepacked_implicit: the stride-2 convs'
    // columns) instead of read from memory: here a packer that reads B, writing the slivers and
    // the zeros past n as the contract says. Threads split N (the packer then starts at a
    // thread's column j0) or M.
    auto implicit_b = [](bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                         const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
      struct Src {
        const float* B;
        int64_t ldb;
        bool tb;
      } src{B, ldb, tb};
      ImplicitB b;
      b.ctx = &src;
      b.pack = [](const void* ctx, int64_t j0, int64_t n, int64_t k0, int64_t kc, float* dst) {
        const Src& s = *static_cast<const Src*>(ctx);
        for (int64_t j = 0; j < (n + kPackNR - 1) / kPackNR * kPackNR; ++j)
          for (int64_t k = 0; k < kc; ++k)
            dst[j / kPackNR * kc * kPackNR + k * kPackNR + j % kPackNR] = j >= n ? 0.f
                                                                          : s.tb ? s.B[(j0 + j) * s.ldb + k0 + k]
                                                                                 : s.B[(k0 + k) * s.ldb + j0 + j];
      };
      gemm_prepacked_implicit(gemm_pack_a_avx2(ta, M, K, A, lda), N, b, alpha, beta, C, ldc);
    };
    outside_and_inside(implicit_b, 150, 50);
  }
  // Whichever gemm() picks: gemm_pack_a packs for the packed kernel, keeps the operand for Eigen's.
  auto dispatched = [](bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                       const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    gemm_prepacked(gemm_pack_a(ta, M, K, A, lda), tb, N, alpha, B, ldb, beta, C, ldc);
  };
  CHECK(check_gemm(dispatched, 200, true) == 0);
  CHECK(check_gemm(gemm_eigen<float>, 200, false) == 0);
  CHECK(check_gemm(gemm<float>, 200, true) == 0);  // whichever the dispatcher picks
}
