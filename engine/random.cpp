// randn / rand from Philox4x32-10 (kernels/philox.h): element i depends only on
// (seed, offset, i), so results are reproducible, thread-count independent and (with the
// CUDA backend) device independent. A CUDA draw inside a CUDA graph capture takes its counter
// base from device memory, so every replay draws fresh numbers (engine/cuda_graph.h).
#include "engine/cuda_graph.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cuda/random.h"
#include "kernels/philox.h"

namespace sg {

namespace {
// f: the host function of kernels/philox.h; normal: which CUDA kernel computes the same.
template <class F>
Tensor draw(const char* op, const Shape& s, Rng& g, DType t, Device d, uint64_t per_block, F f, bool normal) {
  const uint64_t seed = g.seed, offset = g.offset;
  if (d.type == DeviceType::cuda) {
    Tensor y = empty(s, t, d);  // throws without the CUDA backend or a device
    const int64_t n = y.numel();
#ifdef SG_HAVE_CUDA
    const detail::CudaDrawOffset at = detail::cuda_draw_offset(g);  // eager: {nullptr, offset}
    dispatch_dtype(t, [&]<class T>() {
      if (normal)
        kernels::cuda::philox_normal<T>(n, y.data<T>(), seed, at.offset, at.base);
      else
        kernels::cuda::philox_uniform<T>(n, y.data<T>(), seed, at.offset, at.base);
    });
#endif
    g.offset += ((uint64_t)n + per_block - 1) / per_block;
    return y;
  }
  Tensor y = empty(s, t, Device::cpu());
  const int64_t n = y.numel();
  dispatch_dtype(t, [&]<class T>() {
    T* p = y.data<T>();
    kernels::cpu::parallel_for(n, n > 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = (T)f(seed, offset, i);
    });
  });
  g.offset += ((uint64_t)n + per_block - 1) / per_block;
  return d.type == DeviceType::cpu ? y : y.to(d);
}
}  // namespace

Tensor randn(const Shape& s, Rng& g, DType t, Device d) {
  return draw("randn", s, g, t, d, 2, kernels::philox_normal, true);
}
Tensor rand(const Shape& s, Rng& g, DType t, Device d) {
  return draw("rand", s, g, t, d, 4, kernels::philox_uniform, false);
}

}  // namespace sg
