// Reductions: sum and mean over any dims (keepdim), and sum_to (the adjoint of expand).
// Accumulation is in double for both dtypes, on the CPU and on CUDA (kernels/cuda/reduce.h,
// deterministic: no atomics).
#include <algorithm>
#include <functional>

#include "engine/derivatives.h"
#include "engine/ops/common.h"
#include "kernels/cpu/loops.h"
#include "kernels/cuda/reduce.h"

namespace sg {
namespace kc = kernels::cpu;

namespace {
// Normalised, sorted, unique reduced dims (all dims when `dims` is empty).
std::vector<int64_t> reduced_dims(const char* op, const Tensor& a, const std::vector<int64_t>& dims) {
  std::vector<int64_t> r;
  if (dims.empty()) {
    for (int64_t i = 0; i < a.dim(); ++i) r.push_back(i);
    return r;
  }
  for (auto d : dims) r.push_back(ops::wrap_dim(op, d, a.dim()));
  std::sort(r.begin(), r.end());
  SG_CHECK(std::adjacent_find(r.begin(), r.end()) == r.end(), op, "dims repeat for shape ", shape_str(a.shape()));
  return r;
}
}  // namespace

Tensor sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  ops::check_defined("sum", a, "input");
  std::vector<int64_t> rd = reduced_dims("sum", a, dims);
  Shape keep = a.shape(), out;
  for (auto d : rd) keep[d] = 1;
  for (int64_t i = 0; i < a.dim(); ++i)
    if (keepdim || !std::binary_search(rd.begin(), rd.end(), i)) out.push_back(keep[i]);
  Tensor y = empty(out, a.dtype(), a.device());
  ops::run_kernel(
      "sum", a.dtype(), {a},
      [&]<class T>() {
        std::vector<double> acc((size_t)numel_of(keep), 0.0);
        std::vector<int64_t> so = ops::broadcast_strides(keep, a.shape());
        for (auto d : rd) so[d] = 0;
        kc::reduce_sum<T>(a.shape(), a.data<T>(), so, acc.data());
        T* py = y.data<T>();
        for (size_t i = 0; i < acc.size(); ++i) py[i] = (T)acc[i];
      },
      [&]<class T>() {
        std::vector<bool> reduced((size_t)a.dim(), false);
        for (auto d : rd) reduced[d] = true;
        // Split reductions keep their partial sums (double) in a workspace from the allocator.
        const size_t ws_bytes = kernels::cuda::sum_workspace_bytes(a.shape(), reduced);
        Tensor ws;
        if (ws_bytes > 0) ws = empty({(int64_t)((ws_bytes + 7) / 8)}, DType::f64, a.device());
        kernels::cuda::sum<T>(a.shape(), reduced, a.data<T>(), y.data<T>(), ws.defined() ? ws.raw_data() : nullptr);
      });
  autograd::record("sum", {a}, {y}, std::bind_front(derivatives::sum, keep, a.shape()));
  return y;
}

Tensor mean(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  ops::check_defined("mean", a, "input");
  int64_t count = 1;
  for (auto d : reduced_dims("mean", a, dims)) count *= a.shape()[d];
  SG_CHECK(count > 0, "mean", "mean over an empty dimension of shape ", shape_str(a.shape()));
  return mul(sum(a, dims, keepdim), 1.0 / (double)count);
}

Tensor sum_to(const Tensor& a, const Shape& shape) {
  if (a.shape() == shape) return a;
  SG_CHECK(a.dim() >= (int64_t)shape.size(), "sum_to", "cannot sum ", shape_str(a.shape()), " to ", shape_str(shape));
  int64_t lead = a.dim() - (int64_t)shape.size();
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < a.dim(); ++i) {
    if (i < lead) {
      dims.push_back(i);
      continue;
    }
    int64_t want = shape[i - lead], have = a.shape()[i];
    SG_CHECK(want == have || want == 1, "sum_to", "cannot sum ", shape_str(a.shape()), " to ", shape_str(shape));
    if (want == 1 && have != 1) dims.push_back(i);
  }
  if (dims.empty()) return reshape(a, shape);
  return reshape(sum(a, dims, true), shape);
}

}  // namespace sg
