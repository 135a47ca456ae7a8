// Shared helpers for op implementations (engine/ops/*.cpp): input checks, broadcasting, and
// the one way an op runs a kernel on its tensors' device (run_kernel, pointwise, pointwise2).
#pragma once
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/device.h"
#include "kernels/cpu/loops.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/elementwise.h"

namespace sg::ops {

// Throws unless t is defined.
void check_defined(const char* op, const Tensor& t, const char* what);
// Same dtype and device for all given tensors (undefined ones are ignored).
void check_same(const char* op, const std::vector<Tensor>& ts);
// Throws unless every defined tensor is on the CPU: the fallback of an op's CUDA branch in a
// build without the CUDA backend (the error names the op and the device).
void check_cpu(const char* op, const std::vector<Tensor>& ts);
// True when the first defined tensor lives on CUDA (call check_same first so all agree).
bool is_cuda(const std::vector<Tensor>& ts);
// numpy broadcast of two shapes, or an sg::Error naming op and shapes.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// Element strides of `s` viewed as `out` (broadcast dims get stride 0). s must broadcast to out.
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out);
std::vector<int64_t> contiguous_strides(const Shape& s);
// Normalises a possibly negative dim against rank n.
int64_t wrap_dim(const char* op, int64_t d, int64_t n);

#ifdef SG_HAVE_CUDA
constexpr bool kHaveCuda = true;
#else
constexpr bool kHaveCuda = false;
#endif

// Runs an op's kernel on the device of its tensors `ts` (all on one device: check_same
// first): cpu.template operator()<T>() for CPU tensors, cuda.template operator()<T>() for CUDA
// tensors, with T the element type of `dtype` (float or double). Both are generic lambdas,
// [&]<class T>() { kernels::cpu::f<T>(...); } and [&]<class T>() { kernels::cuda::f<T>(...); }.
// A build without the CUDA backend never instantiates `cuda` (so nothing of kernels/cuda/ is
// linked), and a CUDA tensor there is an sg::Error naming the op and the device.
template <class Cpu, class Cuda>
void run_kernel(const char* op, DType dtype, const std::vector<Tensor>& ts, Cpu&& cpu, Cuda&& cuda) {
  if (is_cuda(ts)) {
    if constexpr (kHaveCuda)
      dispatch_dtype(dtype, cuda);
    else
      check_cpu(op, ts);
  } else {
    dispatch_dtype(dtype, cpu);
  }
}

// The convolution variant of the engine's CUDA math (sg::set_cuda_math, engine/device.h);
// used inside run_kernel's CUDA lambdas only.
inline kernels::cuda::ConvMath cuda_conv_math() {
  switch (cuda_math()) {
    case CudaMath::tf32:
      return kernels::cuda::ConvMath::tf32;
    case CudaMath::bf16:
      return kernels::cuda::ConvMath::bf16;
    default:
      return kernels::cuda::ConvMath::fma;
  }
}

// A device workspace of at least `bytes` bytes for one kernel call (an f32 tensor from the
// caching allocator, whose blocks are 512-byte aligned), or an undefined tensor for 0 bytes;
// workspace_ptr gives its memory, or nullptr. Used inside run_kernel's CUDA lambdas only.
inline Tensor cuda_workspace(int64_t bytes, Device device) {
  return bytes > 0 ? empty({(bytes + 3) / 4}, DType::f32, device) : Tensor();
}
inline void* workspace_ptr(const Tensor& ws) { return ws.defined() ? ws.data<float>() : nullptr; }

// run_kernel for a CUDA-only path (a fast path the op takes only for CUDA tensors): the CUDA
// kernel, or an sg::Error naming the op on any other device.
template <class Cuda>
void run_cuda_kernel(const char* op, DType dtype, const std::vector<Tensor>& ts, Cuda&& cuda) {
  run_kernel(
      op, dtype, ts, [&]<class T>() { SG_CHECK(false, op, "internal: a CUDA-only path was given CPU tensors"); }, cuda);
}

// y = f(a) elementwise, with no autograd: f is a functor of kernels/elementwise.h, run by the
// CPU loop (kernels/cpu/loops.h) or the CUDA kernel (kernels/cuda/elementwise.h).
template <class F>
Tensor pointwise(const char* op, const Tensor& a, F f) {
  check_defined(op, a, "input");
  Tensor y = empty(a.shape(), a.dtype(), a.device());
  run_kernel(
      op, a.dtype(), {a}, [&]<class T>() { kernels::cpu::unary<T>(a.numel(), a.data<T>(), y.data<T>(), f); },
      [&]<class T>() { kernels::cuda::unary<T>(a.numel(), a.data<T>(), y.data<T>(), f); });
  return y;
}

// y = f(a, b) elementwise with numpy broadcasting, no autograd; f as for pointwise.
template <class F>
Tensor pointwise2(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_defined(op, a, "a");
  check_defined(op, b, "b");
  check_same(op, {a, b});
  const Shape out = broadcast_shapes(op, a.shape(), b.shape());
  const std::vector<int64_t> sa = broadcast_strides(a.shape(), out), sb = broadcast_strides(b.shape(), out);
  Tensor y = empty(out, a.dtype(), a.device());
  run_kernel(
      op, a.dtype(), {a, b},
      [&]<class T>() { kernels::cpu::binary<T>(out, a.data<T>(), sa, b.data<T>(), sb, y.data<T>(), f); },
      [&]<class T>() { kernels::cuda::binary<T>(out, a.data<T>(), sa, b.data<T>(), sb, y.data<T>(), f); });
  return y;
}

}  // namespace sg::ops
