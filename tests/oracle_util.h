// Helpers for the PyTorch-oracle tests: load a fixture written by tests/oracle/make_fixtures.py
// (one safetensors file per case under SG_FIXTURE_DIR) and compare engine results with it.
//
// Error measure: max|a - b| / max(max|b|, 1e-12), b the (float64) reference. When the
// reference is identically zero (a gradient that is zero in exact arithmetic), the engine may
// return an undefined tensor ("no gradient") or values with max|a| <= tol.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "engine/io/safetensors.h"
#include "engine/ops.h"

#ifndef SG_FIXTURE_DIR
#error "SG_FIXTURE_DIR must name the directory make_fixtures.py writes"
#endif

namespace sg::oracle {

inline std::string fixture_path(const std::string& name) {
  return std::string(SG_FIXTURE_DIR) + "/" + name + ".safetensors";
}

// Tolerances on the relative error: f64 against the f64 reference, and f32 (inputs cast).
inline double tolerance(DType dt) { return dt == DType::f64 ? 1e-10 : 1e-4; }

class Fixture {
 public:
  explicit Fixture(const std::string& name) : name_(name), path_(fixture_path(name)) {
    tensors_ = io::load_safetensors_map(path_);
  }
  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }

  // The stored (float64) tensor.
  const Tensor& ref(const std::string& key) const {
    auto it = tensors_.find(key);
    if (it == tensors_.end()) throw Error(str("oracle fixture ", path_, ": no tensor \"", key, "\""));
    return it->second;
  }
  const Tensor& operator[](const std::string& key) const { return ref(key); }

  // A fresh leaf in dtype dt, optionally requiring grad.
  Tensor input(const std::string& key, DType dt, bool requires_grad = true) const {
    Tensor t = ref(key).to(dt).detach();
    if (requires_grad) t.set_requires_grad(true);
    return t;
  }

 private:
  std::string name_, path_;
  std::map<std::string, Tensor> tensors_;
};

struct Comparison {
  bool ok = false;
  double err = 0;    // relative error (absolute when the reference is all zero)
  std::string text;  // for INFO
};

// Compares `actual` with the reference `expected` at tolerance tol.
inline Comparison compare(const std::string& what, const Tensor& actual, const Tensor& expected, double tol,
                          DType want_dtype) {
  Comparison c;
  std::vector<double> b = expected.to_vector();
  double bmax = 0;
  for (double v : b) bmax = std::max(bmax, std::abs(v));
  const bool ref_zero = bmax == 0;
  if (!actual.defined()) {
    c.ok = ref_zero;
    c.text = str(what, ": engine returned no gradient (undefined); reference max|b| = ", bmax);
    return c;
  }
  if (actual.shape() != expected.shape() && !(actual.numel() == 1 && expected.numel() == 1)) {
    c.text = str(what, ": shape ", shape_str(actual.shape()), " but the reference has ", shape_str(expected.shape()));
    return c;
  }
  if (actual.dtype() != want_dtype) {
    c.text = str(what, ": dtype ", dtype_name(actual.dtype()), " but the inputs were ", dtype_name(want_dtype));
    return c;
  }
  std::vector<double> a = actual.to_vector();
  double dmax = 0;
  size_t worst = 0;
  bool finite = true;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) finite = false;
    double d = std::abs(a[i] - b[i]);
    if (d > dmax || !std::isfinite(d)) {
      dmax = d;
      worst = i;
    }
  }
  c.err = ref_zero ? dmax : dmax / std::max(bmax, 1e-12);
  c.ok = finite && c.err <= tol;
  c.text = str(what, " [", dtype_name(want_dtype), " ", shape_str(expected.shape()),
               "]: ", ref_zero ? "max abs error " : "max rel error ", c.err, " (tol ", tol, "), max|ref| ", bmax,
               a.empty() ? std::string() : str(", worst at flat index ", worst, ": got ", a[worst], " want ", b[worst]),
               finite ? "" : ", NON-FINITE values");
  return c;
}

}  // namespace sg::oracle

// CHECK that `actual` matches fixture tensor `key` of Fixture `fx` for dtype `dt`; prints the
// error either way on failure.
#define SG_ORACLE_CHECK(fx, key, actual, dt)                                                                 \
  do {                                                                                                       \
    auto sg_cmp_ = ::sg::oracle::compare((key), (actual), (fx).ref(key), ::sg::oracle::tolerance(dt), (dt)); \
    INFO((fx).name() << ": " << sg_cmp_.text);                                                               \
    CHECK(sg_cmp_.ok);                                                                                       \
  } while (0)
