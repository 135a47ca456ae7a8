#include "engine/ops/common.h"

namespace sg::ops {

void check_defined(const char* op, const Tensor& t, const char* what) {
  SG_CHECK(t.defined(), op, what, " is an undefined tensor");
}

void check_same(const char* op, const std::vector<Tensor>& ts) {
  const Tensor* first = nullptr;
  for (auto& t : ts) {
    if (!t.defined()) continue;
    if (!first) {
      first = &t;
      continue;
    }
    SG_CHECK(t.dtype() == first->dtype(), op, "dtype mismatch: ", first->str(), " vs ", t.str());
    SG_CHECK(t.device() == first->device(), op, "device mismatch: ", first->str(), " vs ", t.str());
  }
}

void check_cpu(const char* op, const std::vector<Tensor>& ts) {
  for (auto& t : ts)
    SG_CHECK(!t.defined() || t.is_cpu(), op, "no kernel for device ", device_name(t.device()), " (", t.str(), ")");
}

bool is_cuda(const std::vector<Tensor>& ts) {
  for (auto& t : ts)
    if (t.defined()) return t.device().type == DeviceType::cuda;
  return false;
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    SG_CHECK(da == db || da == 1 || db == 1, op, "shapes ", shape_str(a), " and ", shape_str(b), " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t m = 1;
  for (int d = (int)s.size() - 1; d >= 0; --d) st[d] = m, m *= s[d];
  return st;
}

std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<int64_t> cs = contiguous_strides(s);
  std::vector<int64_t> st(out.size(), 0);
  size_t off = out.size() - s.size();
  for (size_t i = 0; i < s.size(); ++i) st[off + i] = s[i] == 1 ? 0 : cs[i];
  return st;
}

int64_t wrap_dim(const char* op, int64_t d, int64_t n) {
  int64_t r = d < 0 ? d + n : d;
  SG_CHECK(r >= 0 && r < std::max<int64_t>(n, 1), op, "dim ", d, " out of range for rank ", n);
  return r;
}

}  // namespace sg::ops
