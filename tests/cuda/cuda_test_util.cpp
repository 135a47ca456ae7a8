#include "cuda_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#ifdef SG_CUDA_EMU
#include "kernels/cuda/emu/launch_log.h"
#endif

namespace sgtest::cuda {
using namespace sg;

bool self_check() {
  const char* v = std::getenv("SG_CUDA_TESTS_DEVICE");
  return v && std::strcmp(v, "cpu") == 0;
}

std::string no_device_reason() {
  if (!cuda_built()) return "stylegrad was built without the CUDA backend (SG_HAVE_CUDA off)";
  const char* vis = std::getenv("CUDA_VISIBLE_DEVICES");
  return str("the CUDA backend is built but no device was found (cudaGetDeviceCount: 0",
             vis ? str(", CUDA_VISIBLE_DEVICES=", vis) : std::string(), ")");
}

Device device() { return self_check() ? Device::cpu() : Device::cuda(); }

bool real_cuda(const char* test) {
  if (!self_check()) return true;
  WARN(test << ": needs a real CUDA device; not run in the harness self-check");
  return false;
}

void check_format_bound(const std::string& what, double u, int64_t K, const Tensor& got, const Tensor& ref,
                        const Tensor& absref, double slack) {
  const double bound = 2 * u + u * u + (double)K * std::ldexp(1.0, -24);
  const std::vector<double> g = got.to_vector(), r = ref.to_vector(), ar = absref.to_vector();
  REQUIRE(g.size() == r.size());
  REQUIRE(g.size() == ar.size());
  double worst = 0, largest = 0;  // error / bound (with and without the slack), largest over the outputs
  for (size_t i = 0; i < g.size(); ++i) {
    const double err = std::abs(g[i] - r[i]);
    worst = std::max(worst, err / (bound * ar[i] + slack * (1 + std::abs(r[i])) + 1e-30));
    largest = std::max(largest, err / (bound * ar[i] + 1e-30));
  }
  INFO(what << ": largest error is " << worst << " of the bound for u = 2^" << std::log2(u) << " (K = " << K << ")");
  CHECK(worst <= 1.0);
  CHECK(largest > 1e-3);
}

Tensor to_dut(const Tensor& t, bool requires_grad) {
  Tensor d = t.detach().to(DType::f32).to(device()).detach();
  if (d.impl()->storage == t.impl()->storage) d = d.clone().detach();  // never share storage with the reference
  if (requires_grad) d.set_requires_grad(true);
  return d;
}

Tensor leaf64(const Tensor& t, bool requires_grad) {
  Tensor d = t.detach().to(DType::f64).detach();
  if (requires_grad) d.set_requires_grad(true);
  return d;
}

double max_abs(const Tensor& t) {
  double m = 0;
  if (t.defined())
    for (double v : t.to_vector()) m = std::max(m, std::abs(v));
  return m;
}

oracle::Comparison compare_to_ref(const std::string& what, const Tensor& actual, const Tensor& ref, double tol,
                                  double floor) {
  if (actual.defined() && actual.device() != device()) {
    oracle::Comparison c;
    c.text = str(what, ": result on ", device_name(actual.device()), ", expected ", device_name(device()), " (",
                 actual.str(), ")");
    return c;
  }
  if (!ref.defined() && !actual.defined()) return {true, 0, what + ": no gradient on either device"};
  Tensor b = ref.defined() ? ref.detach().to(Device::cpu()).to(DType::f64) : zeros(actual.shape(), DType::f64);
  // oracle::compare divides by max|b|: dividing by max(max|b|, floor) instead is the same test
  // at a tolerance scaled by floor / max|b|.
  const double bmax = max_abs(b);
  std::string note = ref.defined() ? "" : " (reference: no gradient)";
  if (bmax > 0 && floor > bmax) {
    tol *= floor / bmax;
    note += str(" (max|ref| below the floor ", floor, " of its siblings: tolerance scaled to ", tol, ")");
  }
  return oracle::compare(what + note, actual, b, tol, DType::f32);
}

void expect_error(const std::function<void()>& f, std::initializer_list<std::string> pieces, bool any_exception) {
  std::string msg;
  try {
    f();
    FAIL_CHECK("no exception");
    return;
  } catch (const Error& e) {
    msg = e.what();
  } catch (const std::exception& e) {
    msg = e.what();
    if (!any_exception) {
      FAIL_CHECK("threw something other than sg::Error: " << msg);
      return;
    }
  }
  INFO("message: " << msg);
  for (const auto& p : pieces) {
    INFO("should mention \"" << p << "\"");
    CHECK(msg.find(p) != std::string::npos);
  }
}

sg::Tensor rnd(const sg::Shape& s, uint64_t seed) {
  sg::Rng g(seed);
  return sg::randn(s, g, sg::DType::f64);
}

std::vector<std::string> take_launch_log() {
#ifdef SG_CUDA_EMU
  return sgemu::take_launch_log();
#else
  return {};
#endif
}

bool launched(const std::vector<std::string>& log, const std::string& prefix) {
  return std::any_of(log.begin(), log.end(), [&](const std::string& n) { return n.rfind(prefix, 0) == 0; });
}

}  // namespace sgtest::cuda
