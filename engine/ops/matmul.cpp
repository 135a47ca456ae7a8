// matmul ([M,K]x[K,N] and batched [B,M,K]x[B,K,N]) through the Eigen GEMM in
// kernels/cpu/gemm.h or cuBLAS (kernels/cuda/gemm.h, strided-batched for 3-D), and linear.
// Backward (engine/derivatives.cpp): dA = dC B^T, dB = A^T dC, matmuls again.
#include <atomic>
#include <functional>

#include "engine/derivatives.h"
#include "engine/device.h"
#include "engine/ops/common.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/gemm.h"

namespace sg {

namespace {
std::atomic<int> g_cuda_math{(int)CudaMath::f32};  // without the CUDA backend: remembered only
}
void set_cuda_math(CudaMath math) {
  g_cuda_math.store((int)math);
#ifdef SG_HAVE_CUDA
  kernels::cuda::set_tf32(math != CudaMath::f32);  // cuBLAS's math mode
#endif
}
CudaMath cuda_math() { return (CudaMath)g_cuda_math.load(); }
CudaMath parse_cuda_math(const std::string& name, const std::string& what) {
  for (CudaMath m : {CudaMath::f32, CudaMath::tf32, CudaMath::bf16})
    if (name == cuda_math_name(m)) return m;
  SG_CHECK(false, what, "expected f32, tf32 or bf16, got '", name, "'");
  return CudaMath::f32;
}

const char* cuda_math_name(CudaMath math) {
  switch (math) {
    case CudaMath::tf32:
      return "tf32";
    case CudaMath::bf16:
      return "bf16";
    default:
      return "f32";
  }
}
void set_cuda_tf32(bool on) { set_cuda_math(on ? CudaMath::tf32 : CudaMath::f32); }
bool cuda_tf32() { return cuda_math() != CudaMath::f32; }

Tensor matmul(const Tensor& a, const Tensor& b) {
  ops::check_defined("matmul", a, "a");
  ops::check_defined("matmul", b, "b");
  ops::check_same("matmul", {a, b});
  SG_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3), "matmul",
           "expects 2-D x 2-D or 3-D x 3-D, got ", shape_str(a.shape()), " and ", shape_str(b.shape()));
  const bool batched = a.dim() == 3;
  const int64_t B = batched ? a.size(0) : 1;
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  SG_CHECK(b.size(-2) == K && (!batched || b.size(0) == B), "matmul", "shapes ", shape_str(a.shape()), " and ",
           shape_str(b.shape()), " do not multiply");
  Shape out = batched ? Shape{B, M, N} : Shape{M, N};
  Tensor y = empty(out, a.dtype(), a.device());
  ops::run_kernel(
      "matmul", a.dtype(), {a, b},
      [&]<class T>() {
        for (int64_t i = 0; i < B; ++i)
          kernels::cpu::gemm<T>(false, false, M, N, K, T(1), a.data<T>() + i * M * K, K, b.data<T>() + i * K * N, N,
                                T(0), y.data<T>() + i * M * N, N);
      },
      [&]<class T>() {
        if (K == 0) {
          y = zeros(out, a.dtype(), a.device());  // an empty sum; cuBLAS is not needed
        } else {
          kernels::cuda::gemm<T>(false, false, M, N, K, T(1), a.data<T>(), K, b.data<T>(), N, T(0), y.data<T>(), N, B,
                                 M * K, K * N, M * N);
        }
      });
  autograd::record("matmul", {a, b}, {y}, std::bind_front(derivatives::matmul, a, b));
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  ops::check_defined("linear", x, "x");
  ops::check_defined("linear", w, "weight");
  SG_CHECK(w.dim() == 2 && x.dim() >= 1 && x.size(-1) == w.size(1), "linear", "x ", shape_str(x.shape()),
           " does not match weight ", shape_str(w.shape()), " ([out, in])");
  SG_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == w.size(0)), "linear", "bias ", shape_str(b.shape()),
           " does not match weight ", shape_str(w.shape()));
  Shape out = x.shape();
  out.back() = w.size(0);
  Tensor y = matmul(reshape(x, {-1, w.size(1)}), transpose(w, 0, 1));
  if (b.defined()) y = add(y, b);
  return reshape(y, out);
}

}  // namespace sg
