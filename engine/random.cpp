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
// normal: kernels::philox_normal's values (per_block 2), else philox_uniform's (4). On the CPU
// each block of four words is computed once for the per_block elements it serves, with the
// functions philox_normal / philox_uniform apply to it element by element (normal_of_words,
// uniform_of_word), so the same values.
Tensor draw(const char* op, const Shape& s, Rng& g, DType t, Device d, uint64_t per_block, bool normal) {
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
    const int64_t per = (int64_t)per_block;
    kernels::cpu::parallel_for(n, n > 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e;) {  // the elements of block offset + i / per from slot i % per on
        const kernels::Philox4 r = kernels::philox4x32_10(offset + (uint64_t)(i / per), 0, seed);
        for (int64_t slot = i % per; slot < per && i < e; ++slot, ++i)
          p[i] = (T)(normal ? kernels::normal_of_words(r.v[2 * slot], r.v[2 * slot + 1])
                            : kernels::uniform_of_word(r.v[slot]));
      }
    });
  });
  g.offset += ((uint64_t)n + per_block - 1) / per_block;
  return d.type == DeviceType::cpu ? y : y.to(d);
}
}  // namespace

Tensor randn(const Shape& s, Rng& g, DType t, Device d) { return draw("randn", s, g, t, d, 2, true); }
Tensor rand(const Shape& s, Rng& g, DType t, Device d) { return draw("rand", s, g, t, d, 4, false); }

}  // namespace sg
