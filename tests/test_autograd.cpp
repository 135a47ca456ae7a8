// The autograd engine: accumulation, grad() on leaves and intermediates, guards, the
// saved-output mechanism, and derivatives of order two and three.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "engine/ops.h"

using namespace sg;
using Catch::Matchers::Contains;

// ASan and TSan replace malloc (ASan holds freed blocks back on purpose).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED_MALLOC 1
#endif
#endif
#ifndef SANITIZED_MALLOC
#define SANITIZED_MALLOC 0
#endif

namespace {
Tensor f64(std::vector<double> v, Shape s) { return from_vector(v, s, DType::f64).set_requires_grad(true); }
}  // namespace

TEST_CASE("backward accumulates into .grad and zero_grad clears it", "[autograd]") {
  Tensor x = f64({1.0, -2.0, 3.0}, {3});
  Tensor y = sum(add(mul(x, x), x));  // d/dx = 2x + 1 (x used twice: a diamond)
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3.0, -3.0, 7.0});
  sum(mul(x, 2.0)).backward();  // accumulates
  CHECK(x.grad().to_vector() == std::vector<double>{5.0, -1.0, 9.0});
  CHECK_FALSE(x.grad().requires_grad());
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("grad with respect to an intermediate tensor", "[autograd]") {
  Tensor z = f64({0.5, 1.5}, {2});
  Tensor w = mul(z, 3.0);  // like w = mapping(z): not a leaf
  Tensor img = sum(mul(square(w), 2.0));
  auto g = autograd::grad({img}, {w, z});
  CHECK(g[0].to_vector() == std::vector<double>{6.0, 18.0});   // 4w
  CHECK(g[1].to_vector() == std::vector<double>{18.0, 54.0});  // 4w * 3
}

TEST_CASE("grad reports unused inputs unless allow_unused", "[autograd]") {
  Tensor x = f64({1.0}, {1}), u = f64({2.0}, {1});
  Tensor y = sum(mul(x, 2.0));
  REQUIRE_THROWS_WITH(autograd::grad({y}, {x, u}), Contains("not used"));
  auto g = autograd::grad({y}, {x, u}, {}, false, true);
  CHECK(g[0].item() == 2.0);
  CHECK_FALSE(g[1].defined());
}

TEST_CASE("grad of a non-scalar output needs grad_outputs", "[autograd]") {
  Tensor x = f64({1.0, 2.0}, {2});
  Tensor y = mul(x, 3.0);
  REQUIRE_THROWS_WITH(autograd::grad({y}, {x}), Contains("one-element"));
  auto g = autograd::grad({y}, {x}, {from_vector({1.0, -1.0}, {2}, DType::f64)});
  CHECK(g[0].to_vector() == std::vector<double>{3.0, -3.0});
}

TEST_CASE("NoGradGuard records nothing; create_graph records the gradient's graph", "[autograd]") {
  Tensor x = f64({0.3, -0.7}, {2});
  {
    NoGradGuard ng;
    CHECK_FALSE(exp(x).requires_grad());
  }
  Tensor y = sum(exp(x));
  auto g1 = autograd::grad({y}, {x}, {}, false);
  CHECK_FALSE(g1[0].requires_grad());
  auto g2 = autograd::grad({y}, {x}, {}, true);
  CHECK(g2[0].requires_grad());
}

TEST_CASE("third derivative of tanh", "[autograd]") {
  const double v = 0.37;
  Tensor x = f64({v}, {1});
  Tensor y = sum(tanh(x));
  Tensor d1 = autograd::grad({y}, {x}, {}, true)[0];
  Tensor d2 = autograd::grad({sum(d1)}, {x}, {}, true)[0];
  Tensor d3 = autograd::grad({sum(d2)}, {x}, {}, false)[0];
  const double t = std::tanh(v);
  CHECK(d1.item() == Approx(1 - t * t).epsilon(1e-12));
  CHECK(d2.item() == Approx(-2 * t * (1 - t * t)).epsilon(1e-12));
  CHECK(d3.item() == Approx((1 - t * t) * (6 * t * t - 2)).epsilon(1e-12));
}

TEST_CASE("third-order mixed derivative of a product chain", "[autograd]") {
  Tensor x = f64({1.5}, {1}), y = f64({-2.0}, {1}), z = f64({0.5}, {1});
  Tensor f = sum(mul(mul(mul(x, y), z), x));                    // x^2 y z
  Tensor fx = autograd::grad({f}, {x}, {}, true)[0];            // 2 x y z
  Tensor fxy = autograd::grad({sum(fx)}, {y}, {}, true)[0];     // 2 x z
  Tensor fxyx = autograd::grad({sum(fxy)}, {x}, {}, false)[0];  // 2 z
  CHECK(fx.item() == Approx(2 * 1.5 * -2.0 * 0.5));
  CHECK(fxy.item() == Approx(2 * 1.5 * 0.5));
  CHECK(fxyx.item() == Approx(1.0));
}

TEST_CASE("a node that saves its output does not keep itself alive", "[autograd]") {
  std::weak_ptr<autograd::Node> node;
  {
    Tensor x = f64({0.1, 0.2}, {2});
    Tensor y = exp(x);
    node = y.grad_fn();
    CHECK_FALSE(node.expired());
    // second order through the saved output works
    Tensor g = autograd::grad({sum(y)}, {x}, {}, true)[0];
    Tensor gg = autograd::grad({sum(g)}, {x})[0];
    CHECK(gg.to_vector()[0] == Approx(std::exp(0.1)));
  }
  CHECK(node.expired());
}

TEST_CASE("NoWeightGradientsGuard skips conv weight gradients", "[autograd]") {
  Rng g(3);
  Tensor x = randn({1, 2, 4, 4}, g, DType::f64).set_requires_grad(true);
  Tensor w = randn({3, 2, 3, 3}, g, DType::f64).set_requires_grad(true);
  Tensor y = sum(conv2d(x, w, {1, 1}, {1, 1}));
  {
    NoWeightGradientsGuard nw;
    auto gr = autograd::grad({y}, {x, w}, {}, false, true);
    CHECK(gr[0].defined());
    CHECK_FALSE(gr[1].defined());
  }
  auto gr = autograd::grad({y}, {x, w});
  CHECK(gr[1].defined());
}

TEST_CASE("set_requires_grad is for leaves only", "[autograd]") {
  Tensor x = f64({1.0}, {1});
  Tensor y = mul(x, 2.0);
  REQUIRE_THROWS_AS(y.set_requires_grad(true), Error);
}

TEST_CASE("reshape is free: it shares the storage", "[tensor]") {
  Tensor x = arange(6, 0, 1, DType::f64);
  Tensor y = x.reshape({2, 3});
  CHECK(y.raw_data() == x.raw_data());
  CHECK(y.shape() == Shape{2, 3});
}

TEST_CASE("host storage is 64-byte aligned, and a freed tensor's block serves the next one of its size", "[tensor]") {
  for (int64_t n : {0, 1, 3, 16, 17, 1000, 1 << 20})
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor t = empty({n}, dt);
      INFO("numel " << n << " " << dtype_name(dt));
      CHECK(reinterpret_cast<uintptr_t>(t.raw_data()) % 64 == 0);
      if (n > 0) {  // the whole range is writable (ASan would catch an overrun of the block)
        std::memset(t.raw_data(), 0xab, (size_t)n * dtype_size(dt));
        CHECK(t.to_vector().back() != 0.0);
      }
    }
#if defined(__GLIBC__) && !SANITIZED_MALLOC
  // glibc's malloc gives a freed block back to the next request of its size. With
  // aligned_alloc, a 4 MiB tensor freed and asked for again, while smaller tensors made in
  // between stay alive, got fresh (page-faulting) memory at each of its first 8 rounds
  // (engine/tensor.cpp).
  std::vector<Tensor> kept;
  std::vector<const void*> at;
  for (int round = 0; round < 6; ++round) {
    Tensor t = empty({1 << 20}, DType::f32);
    at.push_back(t.raw_data());
    kept.push_back(empty({16}, DType::f32));
  }
  for (int round = 2; round < 6; ++round) CHECK(at[round] == at[1]);
#endif
}

TEST_CASE("nan_to_num: torch's defaults (NaN -> 0, +-inf -> the dtype's largest finite values)", "[autograd]") {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::f32, DType::f64}) {
    const double big =
        dt == DType::f32 ? (double)std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
    Tensor x = from_vector({std::nan(""), inf, -inf, 2.5}, {4}, dt);
    CHECK(nan_to_num(x).to_vector() == std::vector<double>{0, big, -big, 2.5});
    CHECK(nan_to_num(x, 1, 2, 3).to_vector() == std::vector<double>{1, 2, 3, 2.5});
  }
}

TEST_CASE("cast: the gradient is cast back to the input's dtype, to every order", "[autograd]") {
  // f64 -> f32 -> f64: the op table's f64 gradcheck cannot check cast, so it is checked here.
  Tensor x = from_vector({0.1, -2.5, 3.0}, {3}, DType::f64).set_requires_grad(true);
  Tensor y = cast(square(cast(x, DType::f32)), DType::f64);  // y = (float)x^2 in f32
  REQUIRE(y.dtype() == DType::f64);
  Tensor g = autograd::grad({sum(y)}, {x}, {}, true)[0];
  REQUIRE(g.dtype() == DType::f64);
  const std::vector<double> xv = x.to_vector(), gv = g.to_vector();
  for (size_t i = 0; i < 3; ++i) CHECK(gv[i] == (double)(2.0f * (float)xv[i]));
  // d/dx sum(g) = d/dx sum(2x) = 2, through cast's backward of cast's backward.
  Tensor gg = autograd::grad({sum(g)}, {x})[0];
  CHECK(gg.to_vector() == std::vector<double>{2, 2, 2});
}
