// Philox4x32-10: known-answer vectors (Random123's kat_vectors) and the engine's draws.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/ops.h"
#include "kernels/philox.h"

using namespace sg;

TEST_CASE("Philox4x32-10 known-answer vectors", "[random]") {
  auto r = kernels::philox4x32_10(0, 0, 0);
  CHECK(r.v[0] == 0x6627e8d5u);
  CHECK(r.v[1] == 0xe169c58du);
  CHECK(r.v[2] == 0xbc57ac4cu);
  CHECK(r.v[3] == 0x9b00dbd8u);
  auto m = kernels::philox4x32_10(~0ull, ~0ull, ~0ull);
  CHECK(m.v[0] == 0x408f276du);
  CHECK(m.v[1] == 0x41c83b0eu);
  CHECK(m.v[2] == 0xa20bc7c6u);
  CHECK(m.v[3] == 0x6d5451fdu);
  auto p = kernels::philox4x32_10(0x85a308d3243f6a88ull, 0x0370734413198a2eull, 0x299f31d0a4093822ull);
  CHECK(p.v[0] == 0xd16cfe09u);
  CHECK(p.v[1] == 0x94fdccebu);
  CHECK(p.v[2] == 0x5001e420u);
  CHECK(p.v[3] == 0x24126ea1u);
}

TEST_CASE("randn is reproducible, advances the offset, and is standard normal", "[random]") {
  Rng a(42), b(42);
  auto x = randn({100000}, a, DType::f64).to_vector();
  auto y = randn({100000}, b, DType::f64).to_vector();
  CHECK(x == y);
  CHECK(a.offset == 50000);
  auto z = randn({4}, a, DType::f64).to_vector();
  CHECK(z[0] != x[0]);
  double m = 0, s = 0;
  for (double v : x) m += v;
  m /= x.size();
  for (double v : x) s += (v - m) * (v - m);
  s = std::sqrt(s / x.size());
  CHECK(std::abs(m) < 0.01);
  CHECK(std::abs(s - 1) < 0.01);
  // f32 draws are the f64 draws rounded
  Rng c(42);
  auto f = randn({8}, c, DType::f32).to_vector();
  for (int i = 0; i < 8; ++i) CHECK(f[i] == Approx(x[i]).epsilon(1e-6));
}

TEST_CASE("rand is uniform in (0, 1)", "[random]") {
  Rng g(7);
  auto u = rand({40000}, g, DType::f64).to_vector();
  double m = 0, lo = 1, hi = 0;
  for (double v : u) m += v, lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo > 0);
  CHECK(hi < 1);
  CHECK(std::abs(m / u.size() - 0.5) < 0.01);
}

TEST_CASE("randn and rand give philox_normal's and philox_uniform's values element by element", "[random]") {
  // The CPU draw computes each Philox block once for the 2 normals or 4 uniforms it serves;
  // every element must still be the formula's: draws that end inside a block (odd sizes), and
  // thread slices that start inside one (n > 4096 runs on the pool, cut at odd elements).
  for (int64_t n : {1, 3, 5, 7, 4097, 10001}) {
    Rng g(1234);
    (void)randn({3}, g, DType::f64);  // move the counter off zero
    (void)rand({5}, g, DType::f64);
    const uint64_t off_n = g.offset;
    const std::vector<double> z = randn({n}, g, DType::f64).to_vector();
    const uint64_t off_u = g.offset;
    const std::vector<double> u = rand({n}, g, DType::f64).to_vector();
    const std::vector<double> zf = randn({n}, g, DType::f32).to_vector();
    const uint64_t off_f = off_u + ((uint64_t)n + 3) / 4;
    INFO("n " << n);
    for (int64_t i = 0; i < n; ++i) {
      REQUIRE(z[(size_t)i] == kernels::philox_normal(1234, off_n, i));
      REQUIRE(u[(size_t)i] == kernels::philox_uniform(1234, off_u, i));
      REQUIRE(zf[(size_t)i] == (double)(float)kernels::philox_normal(1234, off_f, i));
    }
  }
}
