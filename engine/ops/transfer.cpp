// to_device: host <-> device copies. Differentiable: the backward copies the gradient back.
#include <cstring>
#include <functional>

#include "engine/derivatives.h"
#include "engine/ops/common.h"
#ifdef SG_HAVE_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace sg {

Tensor to_device(const Tensor& a, Device d) {
  ops::check_defined("to_device", a, "input");
  if (a.device() == d) return reshape(a, a.shape());
#ifndef SG_HAVE_CUDA
  throw Error(str("to_device: cannot move ", a.str(), " to ", device_name(d),
                  ": stylegrad was built without the CUDA backend"));
#else
  Tensor y = empty(a.shape(), a.dtype(), d);
  const size_t n = (size_t)a.numel() * dtype_size(a.dtype());
  if (n > 0) {
    if (a.is_cpu())
      kernels::cuda::memcpy_h2d(y.raw_data(), a.raw_data(), n);
    else if (d.type == DeviceType::cpu)
      kernels::cuda::memcpy_d2h(y.raw_data(), a.raw_data(), n);
    else
      kernels::cuda::memcpy_d2d(y.raw_data(), a.raw_data(), n);
  }
  autograd::record("to_device", {a}, {y}, std::bind_front(derivatives::to_device, a.device()));
  return y;
#endif
}

void copy_into(const Tensor& dst, const Tensor& src) {
  ops::check_defined("copy_into", dst, "dst");
  ops::check_defined("copy_into", src, "src");
  SG_CHECK(dst.shape() == src.shape() && dst.dtype() == src.dtype(), "copy_into", "dst ", dst.str(), " and src ",
           src.str(), " differ in shape or dtype");
  const size_t n = (size_t)dst.numel() * dtype_size(dst.dtype());
  if (n == 0 || dst.raw_data() == src.raw_data()) return;
  if (dst.is_cpu() && src.is_cpu()) {
    std::memcpy(dst.raw_data(), src.raw_data(), n);
    return;
  }
#ifdef SG_HAVE_CUDA
  if (dst.is_cpu())
    kernels::cuda::memcpy_d2h(dst.raw_data(), src.raw_data(), n);
  else if (src.is_cpu())
    kernels::cuda::memcpy_h2d(dst.raw_data(), src.raw_data(), n);
  else
    kernels::cuda::memcpy_d2d(dst.raw_data(), src.raw_data(), n);
#endif
}

}  // namespace sg
