// "cuda: <op>" for every entry of the op table (tests/optable.cpp): each sample's inputs are
// drawn in f64 on the CPU; the same function runs on the CPU in f64 (the reference) and on
// CUDA in f32 (inputs .to(f32).cuda()), TF32 off, and the test compares
//   forward        y
//   first order    grad(y, inputs, v)                    a fixed random cotangent v
//   second order   grad(<grad(y, inputs, v, create_graph), u>, inputs and v)
//                  (what gradgradcheck differentiates: the backward's derivatives in x and in v)
// with max|a - b| / max|b| < 1e-4 for each tensor (gradients far smaller than their siblings:
// see kSiblingFloor). A sample that throws (for instance "no kernel
// for device cuda") fails the test and the other samples still run.
//
// Tags: [sanitize] entries also run under compute-sanitizer memcheck, [racecheck] under
// racecheck too (the GPU run kit, scripts/gpu-kit.sh; on the emulator, ThreadSanitizer
// checks the same kernels through sg_cuda_racecheck: docs/cuda-emulator.md).
#include <algorithm>
#include <deque>

#include "cuda_test_util.h"
#include "optable.h"

using namespace sg;
using namespace sgtest;
using namespace sgtest::cuda;

namespace {

const char* const kSanitize[] = {"add",
                                 "sum",
                                 "mean",
                                 "cat",
                                 "matmul",
                                 "conv2d",
                                 "conv_transpose2d",
                                 "conv2d_weight_grad",
                                 "upfirdn2d",
                                 "bias_act",
                                 "bias_act_grad",
                                 "modulated_conv2d (fused)",
                                 "minibatch_stddev"};
const char* const kRacecheck[] = {"sum", "conv2d", "conv2d_weight_grad", "upfirdn2d", "modulated_conv2d (fused)"};

template <size_t N>
bool listed(const std::string& name, const char* const (&names)[N]) {
  return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return name == n; });
}

std::string input_name(size_t i) { return str("input ", i); }

// A gradient far smaller than its siblings of the same order is small by cancellation (for
// instance the second derivative of a piecewise-linear op, zero but for an eps): its f32
// rounding is at the siblings' scale, so it is measured against 0.1 x the largest of them.
constexpr double kSiblingFloor = 0.1;
double group_max(const std::vector<Tensor>& ts) {
  double m = 0;
  for (auto& t : ts) m = std::max(m, max_abs(t));
  return m;
}

void check_sample(const Sample& s, const std::vector<Tensor>& in, const std::vector<bool>& diff, uint64_t seed) {
  std::vector<Tensor> x64, xd, wrt64, wrtd;
  std::vector<size_t> wrt_index;
  for (size_t i = 0; i < in.size(); ++i) {
    x64.push_back(leaf64(in[i], diff[i]));
    xd.push_back(to_dut(in[i], diff[i]));
    if (!diff[i]) continue;
    wrt64.push_back(x64.back());
    wrtd.push_back(xd.back());
    wrt_index.push_back(i);
  }

  // forward
  Tensor y64 = s.fn(x64), yd = s.fn(xd);
  CHECK(yd.dtype() == DType::f32);
  SG_DEVICE_CHECK("forward", yd, y64);
  REQUIRE(y64.requires_grad());  // every entry differentiates at least one input

  // first order, a fixed cotangent
  Rng g(seed);
  Tensor v64 = randn(y64.shape(), g, DType::f64);
  auto g64 = autograd::grad({y64}, wrt64, {v64}, false, /*allow_unused=*/true);
  auto gd = autograd::grad({yd}, wrtd, {to_dut(v64)}, false, /*allow_unused=*/true);
  const double floor1 = kSiblingFloor * group_max(g64);
  for (size_t k = 0; k < wrt64.size(); ++k)
    SG_DEVICE_CHECK(str("first order: d<y, v>/d ", input_name(wrt_index[k])), gd[k], g64[k], kTol, floor1);

  // second order: h(x, v) = sum_k <grad_k(y, x, v), u_k>, differentiated in x and v
  std::vector<Tensor> u64;
  for (auto& w : wrt64) u64.push_back(randn(w.shape(), g, DType::f64));
  auto second = [&](const std::vector<Tensor>& xs, const std::vector<Tensor>& wrt, const Tensor& v,
                    const std::vector<Tensor>& us) {
    Tensor y = s.fn(xs);
    auto gr = autograd::grad({y}, wrt, {v}, /*create_graph=*/true, /*allow_unused=*/true);
    Tensor h;
    for (size_t k = 0; k < gr.size(); ++k) {
      if (!gr[k].defined()) continue;
      Tensor term = sum(mul(gr[k], us[k]));
      h = h.defined() ? add(h, term) : term;
    }
    std::vector<Tensor> targets = wrt;
    targets.push_back(v);
    if (!h.defined() || !h.requires_grad()) return std::vector<Tensor>(targets.size());
    return autograd::grad({h}, targets, {}, false, /*allow_unused=*/true);
  };
  Tensor vl64 = leaf64(v64, true), vld = to_dut(v64, true);
  std::vector<Tensor> ud;
  for (auto& u : u64) ud.push_back(to_dut(u));
  auto gg64 = second(x64, wrt64, vl64, u64);
  auto ggd = second(xd, wrtd, vld, ud);
  const double floor2 = kSiblingFloor * group_max(gg64);
  for (size_t k = 0; k < wrt64.size(); ++k)
    SG_DEVICE_CHECK(str("second order: d<grad, u>/d ", input_name(wrt_index[k])), ggd[k], gg64[k], kTol, floor2);
  SG_DEVICE_CHECK("second order: d<grad, u>/d v (the cotangent)", ggd.back(), gg64.back(), kTol, floor2);
}

struct CudaEntryInvoker : Catch::ITestInvoker {
  size_t index;
  explicit CudaEntryInvoker(size_t i) : index(i) {}
  void invoke() const override {
    const OpEntry& e = op_table()[index];
    uint64_t seed = entry_seed(index);  // the same inputs as the CPU checks of this entry
    for (const Sample& s : e.samples) {
      std::vector<bool> diff;
      std::vector<Tensor> in = make_inputs(s, seed++, diff);
      INFO(e.name << " [" << s.desc << "] on " << device_name(device()) << " f32 vs cpu f64");
      try {
        check_sample(s, in, diff, seed);
      } catch (const std::exception& ex) {
        FAIL_CHECK("threw: " << ex.what());
      }
    }
  }
};

bool register_all() {
  static std::deque<std::string> names, tags;  // Catch keeps StringRefs
  const auto& t = op_table();
  for (size_t i = 0; i < t.size(); ++i) {
    names.push_back("cuda: " + t[i].name);
    tags.push_back(str("[cuda][optable]", listed(t[i].name, kSanitize) ? "[sanitize]" : "",
                       listed(t[i].name, kRacecheck) ? "[racecheck]" : ""));
    Catch::AutoReg(new CudaEntryInvoker(i), CATCH_INTERNAL_LINEINFO, Catch::StringRef(),
                   Catch::NameAndTags{Catch::StringRef(names.back()), Catch::StringRef(tags.back())});
  }
  return true;
}
const bool registered = register_all();

}  // namespace

TEST_CASE("cuda: the sanitizer subsets name op-table entries", "[cuda][optable]") {
  // A renamed entry must not silently drop out of the compute-sanitizer runs.
  auto has = [](const char* n) {
    const auto& t = op_table();
    return std::any_of(t.begin(), t.end(), [&](const OpEntry& e) { return e.name == n; });
  };
  for (const char* n : kSanitize) {
    INFO(n);
    CHECK(has(n));
  }
  for (const char* n : kRacecheck) {
    INFO(n);
    CHECK(has(n));
    CHECK(listed(n, kSanitize));
  }
}
