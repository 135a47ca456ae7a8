// The CUDA kernels' less travelled paths, each against the CPU in f64 (tag [paths]):
//   - the conv family past its first 64 x 64 tile (output channels, pixels, weight columns),
//     split-K weight gradients, transposed-conv phases, grid chunking over groups;
//   - sum in every mode (thread, warp, block, column, each with and without split-S, zeros);
//   - upfirdn2d past its first output tile, every (up, down) of the separable path, the
//     general kernel with and without its filter in shared memory, plane chunking;
//   - the 64-bit-index variants and multi-pass grid-stride loops, reached with small tensors
//     by lowering the launch thresholds (kernels/cuda/runtime.h, LaunchLimits);
//   - the unaligned (scalar) paths of the vectorised kernels;
//   - the TF32 tensor-core variants, within an error bound derived from TF32's 10-bit mantissa;
//   - the fused epilogues (ConvFusion, ModConvEpilogue) called directly;
//   - the errors the host side raises for shapes the kernels cannot take.
// On the emulator (-DSG_CUDA_EMU=ON) the tests also read the launch log, so each one proves
// that the variant it is about actually ran. They are valid on a real GPU too.
#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>

#include "cuda_test_util.h"
#include "engine/ops.h"

#ifdef SG_HAVE_CUDA
#include "kernels/cuda/adam.h"
#include "kernels/cuda/bias_act.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/modconv.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/upfirdn2d.h"

using namespace sg;
using namespace sgtest;
using namespace sgtest::cuda;
namespace kc = sg::kernels::cuda;

namespace {

// Lowers launch thresholds for one test; restores them on exit.
struct LimitsOverride {
  kc::LaunchLimits saved = kc::launch_limits();
  kc::LaunchLimits* operator->() { return &kc::launch_limits(); }
  ~LimitsOverride() { kc::launch_limits() = saved; }
};

// Checks that a kernel whose name starts with `prefix` is in the log.
#define SG_CHECK_LAUNCHED(log, prefix)           \
  do {                                           \
    if (kHaveLaunchLog) {                        \
      INFO("expected a launch of " << (prefix)); \
      CHECK(launched((log), (prefix)));          \
    }                                            \
  } while (0)

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// fn in f64 on the CPU and in f32 on the device: the output and d<y, v>/d every input.
void check_fn(const std::string& what, const Fn& fn, const std::vector<Tensor>& inputs, uint64_t seed,
              double tol = kTol) {
  std::vector<Tensor> x64, xd;
  for (auto& t : inputs) {
    x64.push_back(leaf64(t, true));
    xd.push_back(to_dut(t, true));
  }
  Tensor y64 = fn(x64), yd = fn(xd);
  SG_DEVICE_CHECK(what + ": forward", yd, y64, tol);
  Rng g(seed);
  Tensor v = randn(y64.shape(), g, DType::f64);
  auto g64 = autograd::grad({y64}, x64, {v}, false, true);
  auto gd = autograd::grad({yd}, xd, {to_dut(v)}, false, true);
  for (size_t i = 0; i < g64.size(); ++i) SG_DEVICE_CHECK(str(what, ": d/d input ", i), gd[i], g64[i], tol);
}

int64_t shape_numel(const Shape& s) { return std::accumulate(s.begin(), s.end(), int64_t(1), std::multiplies<>()); }

}  // namespace

TEST_CASE("cuda paths: conv family past the first tile, split-K, phases", "[cuda][paths][sanitize][racecheck]") {
  if (!real_cuda("conv paths")) return;
  take_launch_log();
  // 70 output channels: two 64-row tiles; N*H*W = 1024 pixels: 16 column tiles and, in the
  // weight gradient (K = 1024 >= 2 x 512 rows), two split-K slices; Cin*9 = 72 weight columns.
  Tensor x = rnd({4, 8, 16, 16}, 1), w = rnd({70, 8, 3, 3}, 2);
  check_fn(
      "conv2d 70 x 72, 1024 pixels",
      [](auto& in) {
        return conv2d(in[0], in[1], {1, 1}, {1, 1});
      },
      {x, w}, 3);
  auto log = take_launch_log();
  SG_CHECK_LAUNCHED(log, "conv2d_forward");
  SG_CHECK_LAUNCHED(log, "conv_transpose2d_forward");
  SG_CHECK_LAUNCHED(log, "conv2d_weight_grad (split-K reduction)");
  // Grouped, strided, odd sizes.
  Tensor xg = rnd({3, 6, 11, 9}, 4), wg = rnd({66, 2, 3, 3}, 5);
  check_fn(
      "conv2d groups 3 stride 2",
      [](auto& in) {
        return conv2d(in[0], in[1], {2, 2}, {1, 0}, 3);
      },
      {xg, wg}, 6);
  // Transposed stride 2 (four output phases), more than 64 output channels.
  Tensor xt = rnd({2, 5, 7, 6}, 7), wt = rnd({5, 68, 3, 3}, 8);
  check_fn(
      "conv_transpose2d stride 2 Cout 68",
      [](auto& in) {
        return conv_transpose2d(in[0], in[1], {2, 2}, {1, 1}, {1, 0});
      },
      {xt, wt}, 9);
}

TEST_CASE("cuda paths: conv grid chunking over groups", "[cuda][paths]") {
  if (!real_cuda("conv grid chunking")) return;
  LimitsOverride lim;
  lim->max_grid_yz = 4;  // transposed stride 2 has 4 phases: one group per launch
  Tensor x = rnd({2, 6, 7, 7}, 11), w = rnd({9, 2, 3, 3}, 12), wt = rnd({6, 3, 3, 3}, 13);
  take_launch_log();
  check_fn(
      "conv2d groups 3, grid z <= 4",
      [](auto& in) {
        return conv2d(in[0], in[1], {1, 1}, {1, 1}, 3);
      },
      {x, w}, 14);
  check_fn(
      "conv_transpose2d groups 3, grid z <= 4",
      [](auto& in) {
        return conv_transpose2d(in[0], in[1], {2, 2}, {1, 1}, {1, 1}, 3);
      },
      {x, wt}, 15);
  // Count the launches: chunked grids launch once per chunk.
  if (kHaveLaunchLog) {
    auto log = take_launch_log();
    CHECK(std::count(log.begin(), log.end(), std::string("conv_transpose2d_forward")) >= 3);
  }
  lim->max_grid_yz = 1;  // 2 row tiles cannot fit: a clear error, not a wrong answer
  Tensor xb = to_dut(rnd({1, 2, 4, 4}, 16)), wb = to_dut(rnd({70, 2, 3, 3}, 17));
  expect_error([&] { conv2d(xb, wb, {1, 1}, {1, 1}); }, {"conv2d_forward", "too many output channels"}, true);
  Tensor wtb = to_dut(rnd({2, 3, 3, 3}, 18));
  expect_error(
      [&] {
        conv_transpose2d(xb, wtb, {2, 2}, {1, 1}, {1, 1});
      },
      {"conv_transpose2d_forward", "stride"}, true);
}

TEST_CASE("cuda paths: sum in every mode", "[cuda][paths][sanitize][racecheck]") {
  if (!real_cuda("sum modes")) return;
  struct Case {
    Shape shape;
    std::vector<int64_t> dims;
    const char* kernel;  // the kernel this shape selects (reduce.cu's plan)
    bool split;
  };
  const Case cases[] = {
      {{50, 7}, {1}, "sum_thread_kernel", false},          // innermost, R < 32
      {{10, 40}, {0}, "sum_thread_kernel", false},         // outer, R < 16
      {{30, 1000}, {1}, "sum_warp_kernel", false},         // innermost, R <= 4096
      {{2, 40000}, {1}, "sum_block_kernel", true},         // innermost, few outputs: split-S
      {{300, 5000}, {1}, "sum_block_kernel", false},       // innermost, many outputs
      {{3000, 40}, {0}, "sum_column_kernel", true},        // outer, few output columns: split-S
      {{20, 9000}, {0}, "sum_column_kernel", false},       // outer, many output columns
      {{6, 7, 8, 9}, {0, 2}, "sum_column_kernel", false},  // reduced dims interleaved with kept ones
      {{4, 5}, {}, "sum_thread_kernel", false},            // everything, R < 32
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    INFO("sum of a " << c.shape.size() << "-d tensor of " << shape_numel(c.shape) << " elements over " << c.dims.size()
                     << " dims, expecting " << c.kernel);
    take_launch_log();
    Tensor a = rnd(c.shape, seed++);
    check_fn(
        "sum", [&](auto& in) { return sum(in[0], c.dims); }, {a}, seed++);
    auto log = take_launch_log();
    SG_CHECK_LAUNCHED(log, c.kernel);
    if (c.split) SG_CHECK_LAUNCHED(log, "sum_finalize_kernel");
  }
  // Empty reductions write zeros; empty outputs write nothing.
  Tensor e = to_dut(zeros({3, 0, 2}, DType::f64));
  CHECK(max_abs(sum(e, {1})) == 0.0);
  CHECK(sum(e, {0}).numel() == 0);
}

TEST_CASE("cuda paths: 64-bit indices and multi-pass grid-stride loops", "[cuda][paths][sanitize]") {
  if (!real_cuda("64-bit index variants")) return;
  LimitsOverride lim;
  lim->index32_elements = 16;  // anything larger indexes in 64 bits
  lim->index32_span = 16;
  lim->uint32_span = 64;
  lim->max_blocks = 2;  // grid-stride loops go round several times
  take_launch_log();
  Tensor a = rnd({3, 5, 7, 11}, 200), b = rnd({1, 5, 1, 11}, 201), c = rnd({3, 1, 7, 1}, 202);
  check_fn(
      "add with broadcast", [](auto& in) { return add(in[0], in[1]); }, {a, b}, 203);
  check_fn(
      "where with broadcast", [](auto& in) { return where(gt(in[2], 0.0), in[0], in[1]); }, {a, b, c}, 204);
  check_fn(
      "permute",
      [](auto& in) {
        return permute(in[0], {2, 0, 3, 1});
      },
      {a}, 205);
  check_fn(
      "slice (scatter in the backward)", [](auto& in) { return slice(in[0], 3, 1, 10, 2); }, {a}, 206);
  check_fn(
      "sum over {0, 2}",
      [](auto& in) {
        return sum(in[0], {0, 2});
      },
      {a}, 207);
  check_fn(
      "sum over 3 (warp)", [](auto& in) { return sum(mul(in[0], in[0]), {1}); }, {rnd({9, 300}, 208)}, 209);
  check_fn(
      "bias_act lrelu clamp", [](auto& in) { return bias_act(in[0], in[1], Act::lrelu, 0.2, 1.4, 1.5, 1); },
      {a, rnd({5}, 210)}, 211);
  check_fn(
      "unary chain", [](auto& in) { return tanh(exp(mul(in[0], 0.3))); }, {a}, 212);
  auto log = take_launch_log();
  for (const char* k : {"binary_strided_kernel<int64>", "where_kernel<int64>", "strided_copy (gather_kernel)<int64>",
                        "strided_scatter (scatter_kernel)<int64>", "sum_column_kernel<int64>", "sum_warp_kernel<int64>",
                        "bias_act_forward_kernel<uint64>"})
    SG_CHECK_LAUNCHED(log, k);
}

TEST_CASE("cuda paths: upfirdn2d past the first tile and the general kernel", "[cuda][paths][sanitize][racecheck]") {
  if (!real_cuda("upfirdn2d paths")) return;
  Tensor x = rnd({1, 3, 20, 37}, 300);
  Tensor f4 = fir_filter({1, 3, 3, 1}, DType::f64), f8 = fir_filter({1, 2, 3, 4, 4, 3, 2, 1}, DType::f64);
  struct Case {
    int64_t up, down;
    std::array<int64_t, 4> pad;
    bool eight;
  };
  const Case sep[] = {{2, 1, {2, 1, 2, 1}, false},
                      {1, 2, {1, 1, 1, 1}, false},
                      {2, 2, {1, 2, 2, 1}, false},
                      {1, 1, {4, 3, 3, 4}, true}};
  uint64_t seed = 301;
  take_launch_log();
  for (const Case& c : sep) {
    INFO("separable up " << c.up << " down " << c.down);
    UpFirDn p;
    p.upx = p.upy = c.up, p.downx = p.downy = c.down, p.pad = c.pad, p.gain = 1.5;
    Tensor f = c.eight ? f8 : f4;  // the filter travels as an input (it has no gradient)
    check_fn(
        "upfirdn2d separable", [&](auto& in) { return upfirdn2d(in[0], in[1], p); }, {x, f}, seed++);
  }
  SG_CHECK_LAUNCHED(take_launch_log(), "upfirdn2d_sep_kernel");
  // General kernel: a 2-D filter, up 3, down 2, uneven and negative pads, flipped.
  Tensor f2 = rnd({3, 5}, seed++);
  UpFirDn g;
  g.upx = 3, g.upy = 2, g.downx = 2, g.downy = 3, g.pad = {2, -1, 1, 3}, g.flip_filter = true;
  check_fn(
      "upfirdn2d general", [&](auto& in) { return upfirdn2d(in[0], in[1], g); }, {x, f2}, seed++);
  // A 2-D filter too large for shared memory (66 x 66 f32 = 17 KB): read from global memory.
  Tensor fbig = rnd({66, 66}, seed++);
  UpFirDn big;
  big.pad = {33, 33, 32, 33};
  check_fn(
      "upfirdn2d general, filter in global memory", [&](auto& in) { return upfirdn2d(in[0], in[1], big); },
      {rnd({1, 2, 5, 4}, seed), fbig}, seed + 1, 2e-4);
  seed += 2;
  SG_CHECK_LAUNCHED(take_launch_log(), "upfirdn2d_general_kernel");
  {
    LimitsOverride lim;
    lim->max_grid_yz = 2;  // 3 planes: two launches of the separable kernel
    UpFirDn p;
    p.upx = p.upy = 2, p.pad = {2, 1, 2, 1};
    check_fn(
        "upfirdn2d separable, planes chunked", [&](auto& in) { return upfirdn2d(in[0], in[1], p); },
        {rnd({1, 3, 3, 4}, seed), f4}, seed + 1);
    seed += 2;
    lim->max_grid_yz = 1;  // 2 row tiles do not fit in grid y: the general kernel takes it
    lim->max_blocks = 3;
    check_fn(
        "upfirdn2d separable shape on the general kernel", [&](auto& in) { return upfirdn2d(in[0], in[1], p); },
        {rnd({1, 2, 9, 5}, seed), f4}, seed + 1);
    seed += 2;
    SG_CHECK_LAUNCHED(take_launch_log(), "upfirdn2d_general_kernel");
  }
}

TEST_CASE("cuda paths: the scalar paths of the vectorised kernels (unaligned pointers)", "[cuda][paths][sanitize]") {
  if (!real_cuda("unaligned")) return;
  const int64_t n = 1001;
  Tensor a = to_dut(rnd({n + 1}, 400)), b = to_dut(rnd({n + 1}, 401));
  Tensor out = zeros({n + 1}, DType::f32, Device::cuda());
  const float* pa = a.data<float>() + 1;  // 4-byte aligned only: the scalar loops
  const float* pb = b.data<float>() + 1;
  float* po = out.data<float>() + 1;
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  kc::binary<float>({n}, pa, {1}, pb, {1}, po, sg::kernels::Mul{});
  std::vector<double> vo = out.to_vector();
  for (int64_t i = 0; i < n; i += 97) CHECK(vo[i + 1] == (double)((float)va[i + 1] * (float)vb[i + 1]));
  kc::unary<float>(n, pa, po, sg::kernels::Square{});
  vo = out.to_vector();
  for (int64_t i = 0; i < n; i += 97) CHECK(vo[i + 1] == (double)((float)va[i + 1] * (float)va[i + 1]));
  kc::fill<float>(n, po, 2.5);
  vo = out.to_vector();
  CHECK(std::all_of(vo.begin() + 1, vo.end(), [](double v) { return v == 2.5; }));
  // Adam on unaligned parameters: the scalar loop equals the CPU twin.
  Tensor p = to_dut(rnd({n + 1}, 402)), m = zeros({n + 1}, DType::f32, Device::cuda());
  Tensor v = zeros({n + 1}, DType::f32, Device::cuda());
  const std::vector<double> p0 = p.to_vector();
  kernels::cpu::AdamStepParams ap;
  ap.beta1 = 0.9, ap.beta2 = 0.99, ap.eps = 1e-8, ap.step_size = 0.01, ap.bc2_sqrt = std::sqrt(1 - 0.99);
  kc::adam_step<float>(n, p.data<float>() + 1, a.data<float>() + 1, m.data<float>() + 1, v.data<float>() + 1, ap);
  const std::vector<double> p1 = p.to_vector();
  for (int64_t i = 1; i <= n; i += 97) {
    const double g = va[i], mm = 0.1 * g, vv = 0.01 * g * g;
    const double want = p0[i] - 0.01 * mm / (std::sqrt(vv) / ap.bc2_sqrt + 1e-8);
    CHECK(std::abs(p1[i] - want) <= 1e-5 * (1 + std::abs(want)));
  }
  CHECK(p1[0] == p0[0]);  // the element before the range is untouched
}

TEST_CASE("cuda paths: multi-tensor Adam over many tensors, chunks and alignments", "[cuda][paths][sanitize]") {
  if (!real_cuda("multi-tensor Adam")) return;
  // More tensors than one launch holds, one spanning several chunks, odd sizes and unaligned
  // starts (the scalar loop), each with its own step count, every other one reading its
  // gradient (with NaNs and infinities in it) through nan_to_num: every element as the CPU twin.
  std::vector<int64_t> sizes;
  for (int i = 0; i < 2 * kc::kAdamMultiMax + 3; ++i) sizes.push_back(1 + (i * 37) % 300);
  sizes[5] = 2 * kc::kAdamChunk + 77;
  std::vector<Tensor> p, g, m, v;
  std::vector<kc::AdamTensor<float>> xs;
  std::vector<std::vector<double>> p0, g0, m0, v0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t n = sizes[i], off = (int64_t)(i % 3);  // offsets 0, 1, 2 elements
    p.push_back(to_dut(rnd({n + off}, 700 + i)));
    std::vector<double> gh = rnd({n + off}, 800 + i).to_vector();
    if (i % 2)
      for (size_t k = 0; k < gh.size(); k += 5) gh[k] = k % 3 == 0 ? std::nan("") : k % 3 == 1 ? INFINITY : -INFINITY;
    g.push_back(to_dut(from_vector(gh, {n + off}, DType::f32)));
    m.push_back(to_dut(mul(abs(rnd({n + off}, 900 + i)), 0.1)));
    v.push_back(to_dut(mul(abs(rnd({n + off}, 1000 + i)), 0.1)));
    p0.push_back(p.back().to_vector()), g0.push_back(g.back().to_vector());
    m0.push_back(m.back().to_vector()), v0.push_back(v.back().to_vector());
    kc::AdamTensor<float> x;
    x.n = n, x.param = p.back().data<float>() + off, x.grad = g.back().data<float>() + off;
    x.exp_avg = m.back().data<float>() + off, x.exp_avg_sq = v.back().data<float>() + off;
    x.p = kernels::cpu::AdamStepParams::make(0.01, 0.9, 0.99, 1e-8, 1 + (int64_t)(i % 4));
    x.p.nan_to_num = i % 2, x.p.nan = 0.0, x.p.posinf = 1e5, x.p.neginf = -1e5;
    xs.push_back(x);
  }
  take_launch_log();
  kc::adam_step_multi<float>(xs);
  auto log = take_launch_log();
  if (kHaveLaunchLog) CHECK(std::count(log.begin(), log.end(), std::string("adam_multi_kernel")) == 3);
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t n = sizes[i], off = (int64_t)(i % 3);
    std::vector<float> pp(p0[i].begin(), p0[i].end()), gg(g0[i].begin(), g0[i].end());
    std::vector<float> mm(m0[i].begin(), m0[i].end()), vv(v0[i].begin(), v0[i].end());
    kernels::cpu::adam_step<float>(n, pp.data() + off, gg.data() + off, mm.data() + off, vv.data() + off, xs[i].p);
    const std::vector<double> p1 = p[i].to_vector(), m1 = m[i].to_vector();
    INFO("tensor " << i << " of " << n << " elements at offset " << off);
    int bad = 0;
    for (int64_t j = 0; j < n + off; ++j) {
      // (nvcc may contract to an FMA where the CPU does not: an ulp apart at most)
      bad += std::abs(p1[j] - pp[j]) > 1e-6 * (1 + std::abs((double)pp[j]));
      bad += std::abs(m1[j] - mm[j]) > 1e-6 * (1 + std::abs((double)mm[j]));
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("cuda paths: TF32 and bf16 kernels within their error bounds", "[cuda][paths][tf32]") {
  if (!real_cuda("TF32 / bf16")) return;
  // Each variant within its format's error bound (check_format_bound, cuda_test_util.h).
  auto check_bound = [&](const std::string& what, double u, const Tensor& got, const Tensor& ref, const Tensor& absref,
                         int64_t K) { check_format_bound(what, u, K, got, ref, absref); };
  const double u_tf32 = std::ldexp(1.0, -11), u_bf16 = std::ldexp(1.0, -8);
  Tensor x = rnd({2, 24, 9, 9}, 500), w = rnd({70, 24, 3, 3}, 501), dy = rnd({2, 70, 9, 9}, 502);
  Tensor a = rnd({40, 300}, 503), bm = rnd({300, 33}, 504), s = rnd({2, 24}, 505);
  Tensor xd = to_dut(x), wd = to_dut(w), dyd = to_dut(dy);
  ModConv mc;
  mc.padding = 1, mc.demodulate = false;
  for (CudaMath math : {CudaMath::tf32, CudaMath::bf16}) {
    const std::string m = cuda_math_name(math), suffix = " <" + m + ">";
    const double u = math == CudaMath::tf32 ? u_tf32 : u_bf16;
    INFO("sg::set_cuda_math(" << m << ")");
    set_cuda_math(math);
    take_launch_log();
    Tensor y = conv2d(xd, wd, {1, 1}, {1, 1});
    Tensor dx = conv_transpose2d(dyd, wd, {1, 1}, {1, 1});
    Tensor dw = conv2d_weight_grad(dyd, xd, w.shape(), {1, 1}, {1, 1}, 1);
    Tensor mm = matmul(to_dut(a), to_dut(bm));
    Tensor ym = modulated_conv2d(xd, wd, to_dut(s), mc);  // the fused modconv: styles applied on packing
    set_cuda_math(CudaMath::f32);
    auto log = take_launch_log();
    // conv2d, conv_transpose2d and the fused modconv take the tensor-core implicit GEMM
    // (kernels/cuda/conv_tc.h; its own tests: test_cuda_conv_tc.cpp); the weight gradient of
    // 9 x 9 outputs (81 pixels, not a multiple of 8) the shared-memory kernel.
    SG_CHECK_LAUNCHED(log, "conv_tc_kernel" + suffix);
    SG_CHECK_LAUNCHED(log, "conv2d_weight_grad" + suffix);
    if (kHaveLaunchLog) CHECK(std::count(log.begin(), log.end(), "conv_tc_kernel" + suffix) == 3);
    check_bound("conv2d", u, y, conv2d(x, w, {1, 1}, {1, 1}), conv2d(abs(x), abs(w), {1, 1}, {1, 1}), 24 * 9);
    check_bound("conv_transpose2d", u, dx, conv_transpose2d(dy, w, {1, 1}, {1, 1}),
                conv_transpose2d(abs(dy), abs(w), {1, 1}, {1, 1}), 70 * 9);
    check_bound("conv2d_weight_grad", u, dw, conv2d_weight_grad(dy, x, w.shape(), {1, 1}, {1, 1}, 1),
                conv2d_weight_grad(abs(dy), abs(x), w.shape(), {1, 1}, {1, 1}, 1), 2 * 81);
    check_bound("matmul (cuBLAS TF32)", u_tf32, mm, matmul(a, bm), matmul(abs(a), abs(bm)), 300);
    check_bound("modulated_conv2d (fused)", u, ym, modulated_conv2d(x, w, s, mc),
                modulated_conv2d(abs(x), abs(w), abs(s), mc), 24 * 9);
  }
  // The shared-memory tensor-core rungs at kernel level (no workspace: not the conv_tc path):
  // nvcuda::wmma, and mma.sync reading f32 tiles.
  struct Rung {
    kc::ConvMath math;
    std::string name;  // (a named member, not a structured binding: clang 14 cannot capture those)
    double u;
  };
  for (const Rung& r : {Rung{kc::ConvMath::tf32_wmma, "tf32 wmma", u_tf32}, Rung{kc::ConvMath::tf32, "tf32", u_tf32},
                        Rung{kc::ConvMath::bf16, "bf16", u_bf16}}) {
    const kc::ConvMath math = r.math;
    const std::string& name = r.name;
    const double u = r.u;
    const kernels::Conv2dParams kp{2, 24, 9, 9, 70, 3, 3, 1, 1, 1, 1, 0, 0, 1};
    Tensor y = empty({2, 70, 9, 9}, DType::f32, Device::cuda());
    take_launch_log();
    kc::conv2d_forward<float>(kp, xd.data<float>(), wd.data<float>(), y.data<float>(), math);
    SG_CHECK_LAUNCHED(take_launch_log(), std::string("conv2d_forward <") + name + ">");
    check_bound(std::string("conv2d (shared-memory ") + name + ")", u, y, conv2d(x, w, {1, 1}, {1, 1}),
                conv2d(abs(x), abs(w), {1, 1}, {1, 1}), 24 * 9);
    // conv_transpose2d, stride 2 (four phases)
    const kernels::Conv2dParams kt{2, 70, 9, 9, 24, 3, 3, 2, 2, 1, 1, 0, 0, 1};
    Tensor dx2 = empty({2, 24, 17, 17}, DType::f32, Device::cuda());
    kc::conv_transpose2d_forward<float>(kt, dyd.data<float>(), wd.data<float>(), dx2.data<float>(), math);
    SG_CHECK_LAUNCHED(take_launch_log(), std::string("conv_transpose2d_forward <") + name + ">");
    check_bound(std::string("conv_transpose2d stride 2 (shared-memory ") + name + ")", u, dx2,
                conv_transpose2d(dy, w, {2, 2}, {1, 1}), conv_transpose2d(abs(dy), abs(w), {2, 2}, {1, 1}), 70 * 4);
  }
  CHECK(cuda_math() == CudaMath::f32);
}

TEST_CASE("cuda paths: the fused modulated conv, forward and backward, on shared-weight convs", "[cuda][paths][tf32]") {
  if (!real_cuda("fused modconv backward")) return;
  // derivatives::modulated_conv2d_fused writes the gradient as convs that share one weight
  // across the batch (groups 1), so in TF32 and bf16 the backward runs on the tensor-core GEMM
  // (conv_tc) like the forward, and no per-image (grouped) conv kernel is launched; the up-2
  // layer's forward too (kernels/cuda/modconv.h, modconv_transpose_forward: a GEMM per output
  // phase, styles applied as x is packed, demodulation in the epilogue). Against CPU f64: each
  // conv rounds its inputs to the format, so the results are within a few u of the largest
  // (tol 8u).
  for (const int64_t up : {1, 2}) {
    const int64_t Ho = 8 * up;
    Tensor x = rnd({3, 24, 8, 8}, 520), w = rnd({40, 24, 3, 3}, 521), s = rnd({3, 24}, 522);
    Tensor v = rnd({3, 40, Ho, Ho}, 523);
    ModConv mc;
    mc.padding = 1;  // demodulated, fused
    mc.up = up;
    std::vector<Tensor> in64{leaf64(x, true), leaf64(w, true), leaf64(s, true)};
    const Tensor y64 = modulated_conv2d(in64[0], in64[1], in64[2], mc);
    const auto g64 = autograd::grad({y64}, in64, {v});
    for (CudaMath math : {CudaMath::tf32, CudaMath::bf16}) {
      const std::string suffix = std::string(" <") + cuda_math_name(math) + ">";
      const double u = std::ldexp(1.0, math == CudaMath::tf32 ? -11 : -8);
      INFO("up " << up << ", sg::set_cuda_math(" << cuda_math_name(math) << ")");
      std::vector<Tensor> ind{to_dut(x, true), to_dut(w, true), to_dut(s, true)};
      set_cuda_math(math);
      take_launch_log();
      const Tensor yd = modulated_conv2d(ind[0], ind[1], ind[2], mc);
      const auto gd = autograd::grad({yd}, ind, {to_dut(v)});
      set_cuda_math(CudaMath::f32);
      const auto log = take_launch_log();
      if (kHaveLaunchLog) {
        // up 1: the forward and dx one GEMM each; up 2: the forward a GEMM per output phase (4),
        // dx one (the demodulation's term reads the forward's output: no z recomputed). The
        // weight gradient: one.
        CHECK(std::count(log.begin(), log.end(), "conv_tc_kernel" + suffix) == (up == 1 ? 2 : 5));
        CHECK(std::count(log.begin(), log.end(), "conv_tc_wgrad_kernel" + suffix) == 1);
        for (const std::string& k : {"conv2d_forward", "conv_transpose2d_forward", "conv2d_weight_grad"}) {
          INFO("no shared-memory conv kernel: " << k);
          CHECK_FALSE(launched(log, k));
        }
      }
      SG_DEVICE_CHECK("fused modconv forward" + suffix, yd, y64, 8 * u);
      const char* names[] = {"d/dx", "d/dweight", "d/dstyles"};
      for (int i = 0; i < 3; ++i)
        SG_DEVICE_CHECK(std::string("fused modconv backward ") + names[i] + suffix, gd[i], g64[i], 8 * u);
    }
  }
}

TEST_CASE("cuda paths: the fused conv epilogues", "[cuda][paths][sanitize]") {
  if (!real_cuda("fused epilogues")) return;
  // ConvFusion on a plain grouped conv: w modulated on load, then * row_scale + noise + bias,
  // lrelu, gain, clamp — against the same chain of engine ops in f64 on the CPU.
  const int64_t N = 2, G = 2, Cin = 6, Cout = 70, H = 7, W = 6;
  Tensor x = rnd({N, Cin, H, W}, 600), w = rnd({Cout, Cin / G, 3, 3}, 601);
  Tensor a_scale = rnd({Cin}, 602), row_scale = rnd({Cout}, 603), noise = rnd({N * G, H * W}, 604);
  Tensor bias = rnd({Cout}, 605);
  // w'[co, ci] = w[co, ci] * a_scale[g(co) * Cg + ci]
  Tensor a_of_co =
      reshape(expand(reshape(a_scale, {G, 1, Cin / G, 1, 1}), {G, Cout / G, Cin / G, 1, 1}), {Cout, Cin / G, 1, 1});
  Tensor ref = conv2d(x, mul(w, a_of_co), {1, 1}, {1, 1}, G);
  ref = mul(ref, reshape(row_scale, {1, Cout, 1, 1}));
  Tensor noise_nc = reshape(expand(reshape(noise, {N, G, 1, H, W}), {N, G, Cout / G, H, W}), {N, Cout, H, W});
  ref = bias_act(add(ref, noise_nc), bias, Act::lrelu, 0.2, 1.4, 2.0, 1);
  Tensor xd = to_dut(x), wd = to_dut(w), ad = to_dut(a_scale), rd = to_dut(row_scale), nd = to_dut(noise);
  Tensor bd = to_dut(bias), yd = empty({N, Cout, H, W}, DType::f32, Device::cuda());
  kc::ConvFusion<float> fu;
  fu.a_scale = ad.data<float>(), fu.row_scale = rd.data<float>(), fu.noise = nd.data<float>();
  fu.bias = bd.data<float>(), fu.act = 2, fu.alpha = 0.2, fu.gain = 1.4, fu.clamp = 2.0;
  kc::conv2d_forward<float>(sg::kernels::Conv2dParams{N, Cin, H, W, Cout, 3, 3, 1, 1, 1, 1, 0, 0, G}, xd.data<float>(),
                            wd.data<float>(), yd.data<float>(), kc::ConvMath::fma, &fu);
  SG_DEVICE_CHECK("ConvFusion: modulate, row scale, noise, bias, lrelu, gain, clamp", yd, ref);
  fu.act = 1, fu.clamp = -1, fu.a_scale = nullptr, fu.row_scale = nullptr, fu.noise = nullptr;
  kc::conv2d_forward<float>(sg::kernels::Conv2dParams{N, Cin, H, W, Cout, 3, 3, 1, 1, 1, 1, 0, 0, G}, xd.data<float>(),
                            wd.data<float>(), yd.data<float>(), kc::ConvMath::fma, &fu);
  SG_DEVICE_CHECK("ConvFusion: bias, relu, gain", yd,
                  bias_act(conv2d(x, w, {1, 1}, {1, 1}, G), bias, Act::relu, 0.2, 1.4, -1.0, 1));

  // ModConvEpilogue: the fused modulated conv with noise [N, Ho*Wo] and a shared bias [O].
  const int64_t O = 5, C = 4;
  Tensor xm = rnd({N, C, H, W}, 610), wm = rnd({O, C, 3, 3}, 611), st = rnd({N, C}, 612);
  Tensor nm = rnd({N, H * W}, 613), bm = rnd({O}, 614);
  ModConv mc;
  mc.padding = 1;
  Tensor refm = modulated_conv2d(xm, wm, st, mc);
  refm = bias_act(add(refm, reshape(nm, {N, 1, H, W})), bm, Act::lrelu, 0.2, std::sqrt(2.0), 0.5, 1);
  Tensor xmd = to_dut(xm), wmd = to_dut(wm), std_ = to_dut(st), nmd = to_dut(nm), bmd = to_dut(bm);
  Tensor dco = empty({N, O}, DType::f32, Device::cuda()), ymd = empty({N, O, H, W}, DType::f32, Device::cuda());
  kc::modconv_dcoefs<float>(wmd.data<float>(), std_.data<float>(), dco.data<float>(), N, O, C, 9, 1e-8);
  kc::ModConvEpilogue<float> ep;
  ep.noise = nmd.data<float>(), ep.bias = bmd.data<float>(), ep.act = 2, ep.alpha = 0.2, ep.gain = std::sqrt(2.0);
  ep.clamp = 0.5;
  kc::modconv_forward<float>(xmd.data<float>(), wmd.data<float>(), std_.data<float>(), dco.data<float>(),
                             ymd.data<float>(), N, C, H, W, O, 3, 3, 1, kc::ConvMath::fma, &ep);
  SG_DEVICE_CHECK("ModConvEpilogue: demodulated conv, noise, bias, lrelu, gain, clamp", ymd, refm);
}

TEST_CASE("cuda paths: host-side errors name the kernel and the limit", "[cuda][paths]") {
  if (!real_cuda("errors")) return;
  Tensor x = to_dut(rnd({2, 3}, 700));
  // More than 8 dims after coalescing.
  Tensor big = to_dut(rnd({2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2}, 701));
  expect_error(
      [&] {
        permute(big, {18, 16, 14, 12, 10, 8, 6, 4, 2, 0, 1, 3, 5, 7, 9, 11, 13, 15, 17});
      },
      {"strided_copy", "dims remain after coalescing"}, true);
  std::vector<float> host(4);
  float* dev = x.data<float>();
  CHECK_THROWS_WITH(kc::sum<float>({2, 3}, {true}, dev, dev, nullptr), Catch::Contains("reduce flags"));
  CHECK_THROWS_WITH(kc::sum<float>({2, 40000}, {false, true}, dev, dev, nullptr), Catch::Contains("workspace"));
  CHECK_THROWS_WITH(
      kc::gemm<float>(false, false, (int64_t)1 << 32, 1, 1, 1.0f, dev, 1, dev, 1, 0.0f, dev, 1, 1, 0, 0, 0),
      Catch::Contains("out of cuBLAS's int range"));
  CHECK_THROWS_WITH(kc::modconv_dcoefs<float>(dev, dev, dev, 1, 1, (int64_t)1 << 31, 2, 1e-8),
                    Catch::Contains("32-bit"));
  sg::kernels::UpFirDn2dParams up{};
  up.planes = 1, up.in_h = up.in_w = (int64_t)1 << 20, up.out_h = up.out_w = 1, up.fh = up.fw = 1;
  up.upx = up.upy = up.downx = up.downy = 1;
  CHECK_THROWS_WITH(kc::upfirdn2d<float>(up, dev, dev, dev), Catch::Contains("32-bit"));
  CHECK_THROWS_WITH(kc::conv2d_forward<float>(sg::kernels::Conv2dParams{1, 1, (int64_t)1 << 16, (int64_t)1 << 16, 1, 1,
                                                                        1, 1, 1, 0, 0, 0, 0, 1},
                                              dev, dev, dev, kc::ConvMath::fma),
                    Catch::Contains("32-bit"));
  CHECK_THROWS_WITH(kc::conv2d_weight_grad<float>(sg::kernels::Conv2dParams{4, 8, 64, 64, 8, 3, 3, 1, 1, 1, 1, 0, 0, 1},
                                                  dev, dev, dev, nullptr, kc::ConvMath::fma),
                    Catch::Contains("split-K needs the workspace"));
  (void)host;
}

TEST_CASE("cuda paths: f64 on the device, comparisons, casts and empty reductions", "[cuda][paths][sanitize]") {
  if (!real_cuda("f64 kernels")) return;
  // f64 end to end on the device: the double instantiations of the kernels (libdevice math,
  // cublasDgemm, the double Adam and demodulation) against the CPU in f64.
  auto dev64 = [](const Tensor& t) { return t.detach().to(Device::cuda()); };
  auto close64 = [](const std::string& what, const Tensor& got, const Tensor& want) {
    INFO(what);
    CHECK(got.dtype() == DType::f64);
    CHECK(max_rel_error(got.to(Device::cpu()), want) < 1e-12);
  };
  Tensor a = rnd({3, 4, 5}, 800), b = rnd({3, 5, 6}, 801);
  Tensor pos = add(abs(a), 0.1), ad = dev64(a), pd = dev64(pos);
  close64("exp", exp(ad), exp(a));
  close64("log", log(pd), log(pos));
  close64("sqrt, rsqrt", mul(sqrt(pd), rsqrt(add(pd, 1.0))), mul(sqrt(pos), rsqrt(add(pos, 1.0))));
  close64("tanh, sigmoid, softplus", add(tanh(ad), add(sigmoid(ad), softplus(ad))),
          add(tanh(a), add(sigmoid(a), softplus(a))));
  close64("pow", pow(pd, 2.5), pow(pos, 2.5));
  close64("batched matmul (cublasDgemmStridedBatched)", matmul(ad, dev64(b)), matmul(a, b));
  close64("matmul (cublasDgemm)", matmul(dev64(reshape(a, {12, 5})), dev64(reshape(b, {5, 18}))),
          matmul(reshape(a, {12, 5}), reshape(b, {5, 18})));
  ModConv mc;
  mc.padding = 1;
  Tensor x = rnd({2, 3, 5, 5}, 802), w = rnd({4, 3, 3, 3}, 803), st = rnd({2, 3}, 804);
  close64("modulated_conv2d (fused, demodulated)", modulated_conv2d(dev64(x), dev64(w), dev64(st), mc),
          modulated_conv2d(x, w, st, mc));
  // Comparisons (f32), with ties, and nan_to_num of NaN and infinities.
  Tensor c = from_vector({1, 2, 3, 2, 1, 0}, {6}, DType::f32), d = from_vector({2, 2, 2, 2, 2, 2}, {6}, DType::f32);
  Tensor cd = c.to(Device::cuda()), dd = d.to(Device::cuda());
  CHECK(gt(cd, dd).to_vector() == gt(c, d).to_vector());
  CHECK(lt(cd, dd).to_vector() == lt(c, d).to_vector());
  CHECK(ge(cd, dd).to_vector() == ge(c, d).to_vector());
  CHECK(le(cd, dd).to_vector() == le(c, d).to_vector());
  CHECK(lt(cd, 1.5).to_vector() == lt(c, 1.5).to_vector());
  const double inf = std::numeric_limits<double>::infinity();
  Tensor bad = from_vector({std::nan(""), inf, -inf, 1.5}, {4}, DType::f32);
  CHECK(nan_to_num(bad.to(Device::cuda()), 7, 8, 9).to_vector() == std::vector<double>{7, 8, 9, 1.5});
  // Casts between f32 and f64 on the device (the cast kernel itself).
  Tensor h = rnd({1000}, 805), hd = dev64(h), hf = empty({1000}, DType::f32, Device::cuda());
  Tensor back = empty({1000}, DType::f64, Device::cuda());
  kc::cast<double, float>(1000, hd.data<double>(), hf.data<float>());
  kc::cast<float, double>(1000, hf.data<float>(), back.data<double>());
  const std::vector<double> hv = h.to_vector(), bv = back.to_vector();
  for (size_t i = 0; i < hv.size(); i += 37) CHECK(bv[i] == (double)(float)hv[i]);
  // A weight gradient over an empty batch is zero.
  Tensor dy0 = zeros({0, 4, 5, 5}, DType::f32, Device::cuda()), x0 = zeros({0, 3, 5, 5}, DType::f32, Device::cuda());
  Tensor dw0 = full({4, 3, 3, 3}, 1.0, DType::f32, Device::cuda());
  kc::conv2d_weight_grad<float>(sg::kernels::Conv2dParams{0, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 0, 0, 1}, dy0.data<float>(),
                                x0.data<float>(), dw0.data<float>(), nullptr, kc::ConvMath::fma);
  CHECK(max_abs(dw0) == 0.0);
  // Broadcasts and reductions with too many dims are errors, not launches.
  Tensor z = full({300}, 5.0, DType::f32, Device::cuda());
  float* p = z.data<float>();
  Shape many(18, 2);  // reduced and kept dims alternate: 9 of each remain, one more than kMaxDims
  std::vector<bool> every_other(18);
  for (size_t i = 0; i < 18; ++i) every_other[i] = i % 2 == 0;
  CHECK_THROWS_WITH(kc::sum<float>(many, every_other, p, p, nullptr), Catch::Contains("dims remain after coalescing"));
}

#endif  // SG_HAVE_CUDA
