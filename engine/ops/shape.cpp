// Shape ops. reshape shares the storage (free); the others materialise a contiguous result
// through the strided loops in kernels/cpu/loops.h (CPU) or kernels/cuda/copy.h (CUDA). Each
// backward is another shape op.
#include <algorithm>
#include <cstring>
#include <numeric>

#include <functional>

#include "engine/derivatives.h"
#include "engine/ops/common.h"
#include "kernels/cpu/loops.h"
#include "kernels/cuda/copy.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/runtime.h"

namespace sg {
using autograd::record;
namespace kc = kernels::cpu;
namespace kcu = kernels::cuda;

namespace {

// out = view of a with the given shape, element strides and element offset, copied.
Tensor strided_view_copy(const char* op, const Tensor& a, const Shape& shape, const std::vector<int64_t>& strides,
                         int64_t offset) {
  Tensor y = empty(shape, a.dtype(), a.device());
  ops::run_kernel(
      op, a.dtype(), {a}, [&]<class T>() { kc::strided_copy<T>(shape, a.data<T>() + offset, strides, y.data<T>()); },
      [&]<class T>() { kcu::strided_copy<T>(shape, a.data<T>() + offset, strides, y.data<T>()); });
  return y;
}
}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape) {
  ops::check_defined("reshape", a, "input");
  Shape s = shape;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      SG_CHECK(infer < 0, "reshape", "more than one -1 in ", shape_str(shape));
      infer = (int64_t)i;
    } else {
      SG_CHECK(s[i] >= 0, "reshape", "negative size in ", shape_str(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    SG_CHECK(known > 0 && a.numel() % known == 0, "reshape", "cannot reshape ", shape_str(a.shape()), " to ",
             shape_str(shape));
    s[infer] = a.numel() / known;
  }
  SG_CHECK(numel_of(s) == a.numel(), "reshape", "cannot reshape ", shape_str(a.shape()), " (", a.numel(),
           " elements) to ", shape_str(shape));
  Tensor y = a.detach();
  y.impl()->shape = s;
  record("reshape", {a}, {y}, std::bind_front(derivatives::reshape, a.shape()));
  return y;
}

Tensor permute(const Tensor& a, const std::vector<int64_t>& dims) {
  ops::check_defined("permute", a, "input");
  const int64_t n = a.dim();
  SG_CHECK((int64_t)dims.size() == n, "permute", dims.size(), " dims for shape ", shape_str(a.shape()));
  std::vector<int64_t> p(n), inv(n, -1);
  for (int64_t i = 0; i < n; ++i) {
    p[i] = ops::wrap_dim("permute", dims[i], n);
    SG_CHECK(inv[p[i]] < 0, "permute", "dims are not a permutation for shape ", shape_str(a.shape()));
    inv[p[i]] = i;
  }
  auto cs = ops::contiguous_strides(a.shape());
  Shape out(n);
  std::vector<int64_t> st(n);
  for (int64_t i = 0; i < n; ++i) out[i] = a.shape()[p[i]], st[i] = cs[p[i]];
  Tensor y = strided_view_copy("permute", a, out, st, 0);
  record("permute", {a}, {y}, std::bind_front(derivatives::permute, inv));
  return y;
}

Tensor transpose(const Tensor& a, int64_t d0, int64_t d1) {
  ops::check_defined("transpose", a, "input");
  std::vector<int64_t> p(a.dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[ops::wrap_dim("transpose", d0, a.dim())], p[ops::wrap_dim("transpose", d1, a.dim())]);
  return permute(a, p);
}

Tensor expand(const Tensor& a, const Shape& shape) {
  ops::check_defined("expand", a, "input");
  SG_CHECK(shape.size() >= a.shape().size(), "expand", "cannot expand ", shape_str(a.shape()), " to ",
           shape_str(shape));
  size_t off = shape.size() - a.shape().size();
  for (size_t i = 0; i < a.shape().size(); ++i)
    SG_CHECK(a.shape()[i] == shape[off + i] || a.shape()[i] == 1, "expand", "cannot expand ", shape_str(a.shape()),
             " to ", shape_str(shape));
  if (a.shape() == shape) return reshape(a, shape);
  Tensor y = strided_view_copy("expand", a, shape, ops::broadcast_strides(a.shape(), shape), 0);
  record("expand", {a}, {y}, std::bind_front(derivatives::expand, a.shape()));
  return y;
}

Tensor unsqueeze(const Tensor& a, int64_t dim) {
  ops::check_defined("unsqueeze", a, "input");
  int64_t d = ops::wrap_dim("unsqueeze", dim, a.dim() + 1);
  Shape s = a.shape();
  s.insert(s.begin() + d, 1);
  return reshape(a, s);
}

Tensor squeeze(const Tensor& a, int64_t dim) {
  ops::check_defined("squeeze", a, "input");
  int64_t d = ops::wrap_dim("squeeze", dim, a.dim());
  SG_CHECK(a.shape()[d] == 1, "squeeze", "dim ", dim, " of ", shape_str(a.shape()), " is not 1");
  Shape s = a.shape();
  s.erase(s.begin() + d);
  return reshape(a, s);
}

namespace {
struct SliceGeom {
  Shape out;
  std::vector<int64_t> strides;
  int64_t offset = 0;
};
SliceGeom slice_geom(const char* op, const Shape& shape, int64_t& dim, int64_t& start, int64_t& end, int64_t step) {
  dim = ops::wrap_dim(op, dim, (int64_t)shape.size());
  SG_CHECK(step >= 1, op, "step must be >= 1, got ", step);
  const int64_t n = shape[dim];
  if (start < 0) start += n;
  if (end < 0) end += n;
  end = std::min(end, n);
  SG_CHECK(start >= 0 && start <= n && end >= start, op, "range [", start, ", ", end, ") invalid for dim ", dim, " of ",
           shape_str(shape));
  SliceGeom g;
  g.out = shape;
  g.out[dim] = (end - start + step - 1) / step;
  g.strides = ops::contiguous_strides(shape);
  g.offset = start * g.strides[dim];
  g.strides[dim] *= step;
  return g;
}
}  // namespace

Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t end, int64_t step) {
  ops::check_defined("slice", a, "input");
  SliceGeom g = slice_geom("slice", a.shape(), dim, start, end, step);
  Tensor y = strided_view_copy("slice", a, g.out, g.strides, g.offset);
  record("slice", {a}, {y}, std::bind_front(derivatives::slice, a.shape(), dim, start, end, step));
  return y;
}

Tensor slice_backward(const Tensor& a, const Shape& shape, int64_t dim, int64_t start, int64_t end, int64_t step) {
  ops::check_defined("slice_backward", a, "input");
  SliceGeom g = slice_geom("slice_backward", shape, dim, start, end, step);
  SG_CHECK(g.out == a.shape(), "slice_backward", "gradient ", shape_str(a.shape()), " does not match slice ",
           shape_str(g.out), " of ", shape_str(shape));
  Tensor y = zeros(shape, a.dtype(), a.device());
  ops::run_kernel(
      "slice_backward", a.dtype(), {a},
      [&]<class T>() { kc::strided_scatter<T>(g.out, a.data<T>(), y.data<T>() + g.offset, g.strides); },
      [&]<class T>() { kcu::strided_scatter<T>(g.out, a.data<T>(), y.data<T>() + g.offset, g.strides); });
  record("slice_backward", {a}, {y}, std::bind_front(derivatives::slice_backward, dim, start, end, step));
  return y;
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  SG_CHECK(!xs.empty(), "cat", "needs at least one tensor");
  for (auto& x : xs) ops::check_defined("cat", x, "an input");
  ops::check_same("cat", xs);
  const Shape& s0 = xs[0].shape();
  int64_t d = ops::wrap_dim("cat", dim, (int64_t)s0.size());
  Shape out = s0;
  out[d] = 0;
  for (auto& x : xs) {
    SG_CHECK(x.dim() == (int64_t)s0.size(), "cat", "rank mismatch: ", shape_str(s0), " vs ", shape_str(x.shape()));
    for (int64_t i = 0; i < x.dim(); ++i)
      SG_CHECK(i == d || x.shape()[i] == s0[i], "cat", "shapes ", shape_str(s0), " and ", shape_str(x.shape()),
               " differ outside dim ", d);
    out[d] += x.shape()[d];
  }
  Tensor y = empty(out, xs[0].dtype(), xs[0].device());
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= out[i];
  for (int64_t i = d + 1; i < (int64_t)out.size(); ++i) inner *= out[i];
  const size_t es = dtype_size(y.dtype());
  int64_t at = 0;
  std::vector<int64_t> sizes;
  for (auto& x : xs) {
    const int64_t rows = x.shape()[d] * inner;
    const char* src = (const char*)x.raw_data();
    char* dst = (char*)y.raw_data();
    ops::run_kernel(
        "cat", x.dtype(), xs,
        [&]<class T>() {
          for (int64_t o = 0; o < outer; ++o)
            std::memcpy(dst + (o * out[d] * inner + at * inner) * es, src + o * rows * es, rows * es);
        },
        [&]<class T>() {
          // One 2-D copy per input: `outer` rows of rows*es bytes into the output slab.
          kcu::copy_rows(dst + at * inner * es, (size_t)(out[d] * inner) * es, src, (size_t)rows * es,
                         (size_t)rows * es, (size_t)outer);
        });
    at += x.shape()[d];
    sizes.push_back(x.shape()[d]);
  }
  record("cat", xs, {y}, std::bind_front(derivatives::cat, d, sizes));
  return y;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  SG_CHECK(!xs.empty(), "stack", "needs at least one tensor");
  ops::check_defined("stack", xs[0], "an input");
  int64_t d = ops::wrap_dim("stack", dim, xs[0].dim() + 1);
  std::vector<Tensor> u;
  for (auto& x : xs) {
    ops::check_defined("stack", x, "an input");
    SG_CHECK(x.shape() == xs[0].shape(), "stack", "shapes differ: ", shape_str(xs[0].shape()), " vs ",
             shape_str(x.shape()));
    u.push_back(unsqueeze(x, d));
  }
  return cat(u, d);
}

Tensor repeat(const Tensor& a, const std::vector<int64_t>& repeats) {
  ops::check_defined("repeat", a, "input");
  SG_CHECK(repeats.size() >= a.shape().size(), "repeat", repeats.size(), " repeats for shape ", shape_str(a.shape()));
  Shape s(repeats.size() - a.shape().size(), 1);
  s.insert(s.end(), a.shape().begin(), a.shape().end());
  Shape inter, expanded, out;
  for (size_t i = 0; i < s.size(); ++i) {
    SG_CHECK(repeats[i] >= 0, "repeat", "negative repeat count");
    inter.insert(inter.end(), {1, s[i]});
    expanded.insert(expanded.end(), {repeats[i], s[i]});
    out.push_back(repeats[i] * s[i]);
  }
  return reshape(expand(reshape(a, inter), expanded), out);
}

Tensor flip(const Tensor& a, const std::vector<int64_t>& dims) {
  ops::check_defined("flip", a, "input");
  auto st = ops::contiguous_strides(a.shape());
  int64_t offset = 0;
  for (auto d0 : dims) {
    int64_t d = ops::wrap_dim("flip", d0, a.dim());
    if (a.shape()[d] == 0) continue;
    offset += (a.shape()[d] - 1) * st[d];
    st[d] = -st[d];
  }
  Tensor y = strided_view_copy("flip", a, a.shape(), st, offset);
  record("flip", {a}, {y}, std::bind_front(derivatives::flip, dims));
  return y;
}

Tensor cast(const Tensor& a, DType t) {
  ops::check_defined("cast", a, "input");
  if (a.dtype() == t) return reshape(a, a.shape());
  Tensor y = empty(a.shape(), t, a.device());
  ops::run_kernel(
      "cast", a.dtype(), {a},
      [&]<class S>() {
        dispatch_dtype(t, [&]<class D>() {
          const S* p = a.data<S>();
          D* q = y.data<D>();
          for (int64_t i = 0; i < a.numel(); ++i) q[i] = (D)p[i];
        });
      },
      [&]<class S>() { dispatch_dtype(t, [&]<class D>() { kcu::cast<S, D>(a.numel(), a.data<S>(), y.data<D>()); }); });
  record("cast", {a}, {y}, std::bind_front(derivatives::cast, a.dtype()));
  return y;
}

Tensor contiguous_copy(const Tensor& a) {
  ops::check_defined("clone", a, "input");
  Tensor y = empty(a.shape(), a.dtype(), a.device());
  ops::run_kernel(
      "clone", a.dtype(), {a},
      [&]<class T>() { std::memcpy(y.raw_data(), a.raw_data(), a.numel() * dtype_size(a.dtype())); },
      [&]<class T>() {
        if (a.numel() > 0) kcu::memcpy_d2d(y.raw_data(), a.raw_data(), a.numel() * dtype_size(a.dtype()));
      });
  record("clone", {a}, {y}, derivatives::clone);
  return y;
}

}  // namespace sg
