// The modulated convolution's per-sample weights: see modconv.h.
#include "kernels/cpu/modconv.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace sg::kernels::cpu {

template <class T>
void modconv_weights(const T* w, const T* s, T* wd, T* dcoefs, int64_t N, int64_t O, int64_t C, int64_t K, double eps,
                     bool demodulate) {
  // sum_k w[o,i,k]^2 once per (o, i), shared by all samples: then dcoefs[n,o] costs C
  // multiply-adds, not C * K.
  std::vector<double> wsq(demodulate ? O * C : 0);
  const bool par = N * O * C * K > (1 << 16);
  if (demodulate) {
    parallel_for(O * C, par, [&](int64_t b, int64_t e) {
      for (int64_t oi = b; oi < e; ++oi) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += (double)w[oi * K + k] * (double)w[oi * K + k];
        wsq[oi] = acc;
      }
    });
  }
  parallel_for(N * O, par, [&](int64_t b, int64_t e) {
    for (int64_t no = b; no < e; ++no) {
      const int64_t n = no / O, o = no % O;
      const T* wo = w + o * C * K;
      const T* sn = s + n * C;
      T* out = wd + no * C * K;
      double d = 1;
      if (demodulate) {
        double acc = 0;
        for (int64_t i = 0; i < C; ++i) acc += wsq[o * C + i] * (double)sn[i] * (double)sn[i];
        d = 1.0 / std::sqrt(acc + eps);
      }
      if (dcoefs != nullptr) dcoefs[no] = (T)d;
      for (int64_t i = 0; i < C; ++i) {
        const T f = (T)((double)sn[i] * d);
        const T* wr = wo + i * K;
        T* dst = out + i * K;
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) dst[k] = wr[k] * f;
      }
    }
  });
}

template void modconv_weights<float>(const float*, const float*, float*, float*, int64_t, int64_t, int64_t, int64_t,
                                     double, bool);
template void modconv_weights<double>(const double*, const double*, double*, double*, int64_t, int64_t, int64_t,
                                      int64_t, double, bool);

}  // namespace sg::kernels::cpu
