// Adam: the numbers of torch.optim.Adam (checked against Debian's torch 1.13, values below),
// per-parameter step counts when a parameter has no gradient, f32, and an exact resume
// from state() / load_state() (also through a safetensors file).
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/cpu/parallel.h"

using namespace sg;
using Catch::Matchers::Contains;

namespace {

// The gradients the scenarios use, element k of parameter `which` at step s (1-based).
double grad_value(int which, int k, int s) {
  if (which == 0) return std::sin(0.7 * k + 1.3 * s) * (1 + 0.5 * k);
  return std::cos(0.4 * k - 0.9 * s) * 0.01 * (k + 1);
}

const std::vector<double> kP0 = {0.5, -1.0, 2.0, 0.25, -0.75, 1.5};  // shape [2, 3]
const std::vector<double> kP1 = {0.1, 0.2, -0.3, 0.4};               // shape [4]

// torch's formula (torch/optim/adam.py, _single_tensor_adam) in double, for one parameter.
struct RefAdam {
  std::vector<double> p, m, v;
  int64_t t = 0;
  explicit RefAdam(std::vector<double> p0) : p(p0), m(p0.size(), 0.0), v(p0.size(), 0.0) {}
  void step(const std::vector<double>& g, const AdamConfig& c) {
    t += 1;
    const double bc1 = 1 - std::pow(c.beta1, (double)t), bc2 = 1 - std::pow(c.beta2, (double)t);
    const double step_size = c.lr / bc1, bc2_sqrt = std::sqrt(bc2);
    for (size_t k = 0; k < p.size(); ++k) {
      m[k] = m[k] * c.beta1 + g[k] * (1 - c.beta1);
      v[k] = v[k] * c.beta2 + g[k] * g[k] * (1 - c.beta2);
      p[k] += -step_size * (m[k] / (std::sqrt(v[k]) / bc2_sqrt + c.eps));
    }
  }
};

std::vector<double> grads_for(int which, size_t n, int s) {
  std::vector<double> g(n);
  for (size_t k = 0; k < n; ++k) g[k] = grad_value(which, (int)k, s);
  return g;
}

// Runs `steps` steps of our Adam and of the reference; p1 gets no gradient at steps in skip.
// Returns our final parameters (p0 then p1) and checks them against the reference.
std::vector<double> run_scenario(const AdamConfig& c, int steps, const std::vector<int>& skip, DType dt, double tol) {
  Tensor p0 = from_vector(kP0, {2, 3}, dt).set_requires_grad();
  Tensor p1 = from_vector(kP1, {4}, dt).set_requires_grad();
  Adam opt({{"p0", p0}, {"p1", p1}}, c);
  RefAdam r0(kP0), r1(kP1);
  for (int s = 1; s <= steps; ++s) {
    opt.zero_grad();
    p0.set_grad(from_vector(grads_for(0, 6, s), {2, 3}, dt));
    r0.step(grads_for(0, 6, s), c);
    if (std::find(skip.begin(), skip.end(), s) == skip.end()) {
      p1.set_grad(from_vector(grads_for(1, 4, s), {4}, dt));
      r1.step(grads_for(1, 4, s), c);
    }
    opt.step();
  }
  REQUIRE(opt.step_count() == steps);
  std::vector<double> ours = p0.to_vector(), ref = r0.p;
  for (double x : p1.to_vector()) ours.push_back(x);
  ref.insert(ref.end(), r1.p.begin(), r1.p.end());
  for (size_t k = 0; k < ours.size(); ++k) CHECK(ours[k] == Approx(ref[k]).epsilon(tol).margin(tol));
  return ours;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("sg_optim_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("Adam matches torch.optim.Adam (f64, beta1 0.9, a parameter without grad)", "[optim]") {
  // torch.optim.Adam([p0, p1], lr=0.01, betas=(0.9, 0.99), eps=1e-8), 4 steps, p1.grad None at
  // step 3, run with Debian's torch 1.13 (/usr/bin/python3) in float64:
  const std::vector<double> torch_values = {
      0.4792317050092821, -1.0104255526284496, 2.0028295027125793,  0.2788259412663143, -0.7254054260474041,
      1.5159785760990565, 0.08967815377583034, 0.18263036208110817, -0.320970809527955, 0.37665189606509336};
  const auto ours = run_scenario({0.01, 0.9, 0.99, 1e-8}, 4, {3}, DType::f64, 1e-13);
  for (size_t k = 0; k < ours.size(); ++k) CHECK(ours[k] == Approx(torch_values[k]).epsilon(1e-12).margin(1e-14));
}

TEST_CASE("Adam matches torch.optim.Adam (f64, StyleGAN2 defaults)", "[optim]") {
  // torch.optim.Adam([p0, p1], lr=0.002, betas=(0, 0.99), eps=1e-8), 3 steps, float64:
  const std::vector<double> torch_values = {
      0.4985115811307386, -0.9989782689741148, 2.0028512786637798, 0.2556395604048646,   -0.7472323327074215,
      1.500209489772815,  0.10176318918340596, 0.1995338710290095, -0.30239740845850055, 0.3959559133163391};
  const auto ours = run_scenario(AdamConfig{}, 3, {}, DType::f64, 1e-13);
  for (size_t k = 0; k < ours.size(); ++k) CHECK(ours[k] == Approx(torch_values[k]).epsilon(1e-12).margin(1e-14));
}

TEST_CASE("Adam in f32 follows the double reference", "[optim]") {
  run_scenario({0.01, 0.9, 0.99, 1e-8}, 5, {2, 4}, DType::f32, 2e-6);
  run_scenario(AdamConfig{}, 5, {}, DType::f32, 2e-6);
}

TEST_CASE("Adam: a large parameter (the parallel path) matches the reference", "[optim]") {
  const int64_t n = 200000;
  std::vector<double> p(n), g(n);
  for (int64_t k = 0; k < n; ++k) p[k] = std::sin(0.001 * k), g[k] = std::cos(0.37 * k) * 0.1;
  Tensor w = from_vector(p, {n}, DType::f32).set_requires_grad();
  AdamConfig c{0.01, 0.5, 0.9, 1e-8};
  Adam opt({{"w", w}}, c);
  RefAdam ref(p);
  for (int s = 0; s < 2; ++s) {
    w.set_grad(from_vector(g, {n}, DType::f32));
    opt.step();
    ref.step(g, c);
  }
  const auto ours = w.to_vector();
  double worst = 0;
  for (int64_t k = 0; k < n; ++k) worst = std::max(worst, std::abs(ours[k] - ref.p[k]));
  CHECK(worst < 1e-6);
}

TEST_CASE("Adam: many parameters in one multi-tensor step, on 1 to 3 threads, match the reference", "[optim]") {
  // Sizes from 1 element to past the parallel grain (2^16), so each thread's share of the
  // joined index space starts and ends inside tensors and spans several; parameter 2 has no
  // gradient at step 2, so its step count (and constants) differ from the others'.
  const std::vector<int64_t> sizes = {1, 7, 40000, 3, 70000, 513, 20000, 1};
  const AdamConfig c{0.01, 0.9, 0.99, 1e-8};
  const int saved = sg::kernels::cpu::num_threads();
  for (int threads : {1, 2, 3}) {
    sg::kernels::cpu::set_num_threads(threads);
    std::vector<std::pair<std::string, Tensor>> params;
    std::vector<RefAdam> refs;
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::vector<double> p0(sizes[i]);
      for (int64_t k = 0; k < sizes[i]; ++k) p0[k] = std::sin(0.01 * k + (double)i);
      params.emplace_back("p" + std::to_string(i), from_vector(p0, {sizes[i]}, DType::f64).set_requires_grad());
      refs.emplace_back(p0);
    }
    Adam opt(params, c);
    for (int s = 1; s <= 3; ++s) {
      opt.zero_grad();
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (i == 2 && s == 2) continue;
        std::vector<double> g(sizes[i]);
        for (int64_t k = 0; k < sizes[i]; ++k) g[k] = std::cos(0.37 * k - 0.5 * s + (double)i) * 0.1;
        params[i].second.set_grad(from_vector(g, {sizes[i]}, DType::f64));
        refs[i].step(g, c);
      }
      opt.step();
    }
    for (size_t i = 0; i < sizes.size(); ++i) {
      const auto ours = params[i].second.to_vector();
      double worst = 0;
      for (int64_t k = 0; k < sizes[i]; ++k) worst = std::max(worst, std::abs(ours[k] - refs[i].p[k]));
      INFO("threads " << threads << ", parameter " << i << " (" << sizes[i] << " elements)");
      CHECK(worst < 1e-14);
    }
  }
  sg::kernels::cpu::set_num_threads(saved);
}

TEST_CASE("Adam state round trip resumes identically", "[optim]") {
  const AdamConfig c{0.01, 0.9, 0.99, 1e-8};
  auto make = [] {
    return std::pair{from_vector(kP0, {2, 3}, DType::f32).set_requires_grad(),
                     from_vector(kP1, {4}, DType::f32).set_requires_grad()};
  };
  auto [a0, a1] = make();
  Adam a({{"p0", a0}, {"p1", a1}}, c);
  auto set_grads = [](Tensor& p0, Tensor& p1, int s, bool with_p1) {
    p0.set_grad(from_vector(grads_for(0, 6, s), {2, 3}, DType::f32));
    if (with_p1) p1.set_grad(from_vector(grads_for(1, 4, s), {4}, DType::f32));
  };
  for (int s = 1; s <= 3; ++s) {
    a.zero_grad();
    set_grads(a0, a1, s, s != 2);  // p1's own step count lags behind
    a.step();
  }
  const auto st = a.state();
  std::map<std::string, Tensor> by_name(st.begin(), st.end());
  REQUIRE(by_name.count("p0.exp_avg"));
  REQUIRE(by_name.count("p1.exp_avg_sq"));
  CHECK(by_name.at("p0.exp_avg").shape() == Shape{2, 3});
  CHECK(by_name.at("step").dtype() == DType::f64);
  CHECK(by_name.at("step").item() == 3);
  CHECK(by_name.at("p1.step").item() == 2);

  // Through a file, as a training run would do it.
  TempDir dir;
  const std::string file = (dir.path / "optim.safetensors").string();
  io::save_safetensors(file, st);
  auto b0 = a0.detach().clone().set_requires_grad(), b1 = a1.detach().clone().set_requires_grad();
  Adam b({{"p0", b0}, {"p1", b1}}, c);
  b.load_state(io::load_safetensors(file));
  CHECK(b.step_count() == 3);
  for (int s = 4; s <= 6; ++s) {
    for (auto* opt : {&a, &b}) opt->zero_grad();
    set_grads(a0, a1, s, true);
    set_grads(b0, b1, s, true);
    a.step();
    b.step();
  }
  CHECK(a0.to_vector() == b0.to_vector());  // bit for bit
  CHECK(a1.to_vector() == b1.to_vector());
  // The saved state is a copy: stepping did not change it.
  CHECK(st[0].second.to_vector() != a.state()[0].second.to_vector());
}

TEST_CASE("Adam: bad state and bad gradients are sg::Error", "[optim]") {
  Tensor p = from_vector(kP0, {2, 3}, DType::f64).set_requires_grad();
  Adam opt({{"p", p}}, {});
  auto st = opt.state();
  SECTION("missing name") {
    std::vector<std::pair<std::string, Tensor>> s;
    for (auto& e : st)
      if (e.first != "p.exp_avg_sq") s.push_back(e);
    CHECK_THROWS_WITH(opt.load_state(s), Contains("p.exp_avg_sq"));
  }
  SECTION("missing step") {
    std::vector<std::pair<std::string, Tensor>> s(st.begin(), st.end() - 1);
    CHECK_THROWS_WITH(opt.load_state(s), Contains("step"));
  }
  SECTION("shape mismatch") {
    for (auto& e : st)
      if (e.first == "p.exp_avg") e.second = zeros({3, 2}, DType::f64);
    CHECK_THROWS_WITH(opt.load_state(st), Contains("p.exp_avg") && Contains("(3, 2)"));
  }
  SECTION("gradient of the wrong shape") {
    p.set_grad(zeros({6}, DType::f64));
    CHECK_THROWS_AS(opt.step(), Error);
  }
  SECTION("duplicate names") { CHECK_THROWS_WITH(Adam({{"p", p}, {"p", p}}, {}), Contains("duplicate")); }
}

// AdamConfig::grad_nan_to_num (the trainer's: NaN -> 0, +-inf -> +-1e5) reads each gradient
// through nan_to_num inside the step: the bits of sanitising every .grad first and stepping
// without it, f32 and f64, in gradients with NaN, both infinities and finite values past 1e5,
// and in a parameter large enough to be split over the threads. A planted change (another
// posinf) fails it: the test compares against nan_to_num's own numbers.
TEST_CASE("Adam: grad_nan_to_num gives the bits of nan_to_num then the step", "[optim]") {
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    Rng rng(17);
    const int64_t big = 200000;
    const Tensor p0 = randn({big}, rng, dt), p1 = randn({3, 5}, rng, dt);
    std::vector<Tensor> a{p0.clone().set_requires_grad(), p1.clone().set_requires_grad()};
    std::vector<Tensor> b{p0.clone().set_requires_grad(), p1.clone().set_requires_grad()};
    AdamConfig ca;
    ca.beta1 = 0.5, ca.grad_nan_to_num = true;
    AdamConfig cb = ca;
    cb.grad_nan_to_num = false;
    Adam oa({{"p0", a[0]}, {"p1", a[1]}}, ca), ob({{"p0", b[0]}, {"p1", b[1]}}, cb);
    for (int step = 0; step < 3; ++step) {
      for (size_t i = 0; i < a.size(); ++i) {
        std::vector<double> g = mul(randn(a[i].shape(), rng, DType::f64), 3e5).to_vector();
        for (size_t k = 0; k < g.size(); k += 7) g[k] = std::nan("");
        for (size_t k = 3; k < g.size(); k += 11) g[k] = INFINITY;
        for (size_t k = 5; k < g.size(); k += 13) g[k] = -INFINITY;
        const Tensor raw = from_vector(g, a[i].shape(), DType::f64).to(dt);
        a[i].set_grad(raw);
        b[i].set_grad(nan_to_num(raw, 0.0, 1e5, -1e5));
      }
      oa.step();
      ob.step();
    }
    // bit for bit (a bool, so that a failure does not print 200,000 numbers)
    auto same = [](const Tensor& x, const Tensor& y) { return x.to_vector() == y.to_vector(); };
    for (size_t i = 0; i < a.size(); ++i) CHECK(same(a[i], b[i]));
    const auto sa = oa.state(), sb = ob.state();
    for (size_t k = 0; k < sa.size(); ++k) CHECK(same(sa[k].second, sb[k].second));
  }
}
