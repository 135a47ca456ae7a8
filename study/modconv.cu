// study/modconv.cu: StyleGAN2's modulated convolution with demodulation, fused, and its
// backward: the data gradient and the GEMM of the weight-side gradient.
//
// Build and run (study/README.md):
//   GPU:       cmake -S . -B build -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build build --target study_modconv
//              build/study/study_modconv         all versions: validate, then time
//              build/study/study_modconv 2       version 2 only
//   emulator:  cmake -S . -B build-study -DSG_CUDA_EMU=ON && cmake --build build-study --target study_modconv
//              build-study/study/study_modconv --validate
//
// The op (kernels/cuda/modconv.h; engine/ops/modulated_conv.cpp's fused path), stride 1:
//   w'[n,o,i,a,b] = w[o,i,a,b] * s[n,i]                            modulation
//   d[n,o]        = 1 / sqrt(sum_{i,a,b} w'[n,o,i,a,b]^2 + eps)      demodulation
//   y[n,o,p]      = d[n,o] * sum_{i,a,b} w'[n,o,i,a,b] * x[n,i,p + (a,b) - pad]
// Per sample n a GEMM M = O, N = Ho*Wo, K = C*kh*kw with its own weight: a grouped conv with
// groups = batch. 2 * N * O * Ho * Wo * C * kh * kw flops, reported in TFLOP/s.
// Backward, data gradient (d depends on w and s only, so this is the whole dL/dx):
//   dx[n,i,q] = s[n,i] * sum_{o,a,b} w[o,i,a,b] * d[n,o] * dy[n,o,q - (a,b) + pad]
// a transposed conv of dy with the demodulated weight, GEMM M = C, N = H*W, K = O*kh*kw.
// Backward, weight side: the weight and style gradients both start from the gradient of the
// per-sample weight w'd = w' * d, a GEMM per sample M = O, N = C*kh*kw, K = Ho*Wo:
//   dwd[n,o,i,a,b] = sum_p dy[n,o,p] * x[n,i,p + (a,b) - pad]
// (conv2d_weight_grad with groups = N). The rest is elementwise products and sums, which the
// engine records as ops (engine/derivatives.cpp, modulated_conv2d_fused):
//   dws = dwd * d - ws * (sum_{i,a,b} dwd * ws) * d^3,  dw = sum_n dws * s,  ds = sum_{o,a,b} dws * w.
// Layout: x [N, C, H, W], w [O, C, kh, kw], s [N, C], d [N, O], y [N, O, Ho, Wo].
//
// Versions:
//   1  naive: d by one thread per (n, o) looping over C*kh*kw; y (and dx) one thread per
//      output, the modulation s[n,i] applied to each weight as it is read, d in the store
//      (study/implicit_gemm.cuh: gemm_naive with blockIdx.z = n).
//   2  tiled: d by one 256-thread block per (n, o), a tree reduction in shared memory; y and
//      dx through 16x16 shared-memory tiles (gemm_tiled), w' formed as the A tile is loaded,
//      never stored.
//   3  production, FMA: kernels::cuda::modconv_dcoefs (a warp per (n, o), fixed-order
//      shuffle reduction) + modconv_forward (kernels/cuda/conv.cu's 64x64 implicit GEMM run as
//      one grouped conv, modulation on load, demodulation in the epilogue). dx: the engine's
//      backward path, w'd materialised [N*O, C, kh, kw], then kernels::cuda::
//      conv_transpose2d_forward with groups = N.
//      dwd: kernels::cuda::conv2d_weight_grad with groups = N (split-K when the grid is small).
//   4  production, TF32 tensor cores (ConvMath::tf32, PTX mma.sync); looser tolerance.
// Versions 1 and 2 of dwd are the same naive and tiled GEMMs with dy as A and the im2col of
// x, transposed, as B.
// Reference: d in f64 on the host; y and dx from the CPU conv kernels (kernels/cpu/conv.h)
// with the materialised weight w*s*d and groups = N (x viewed as [1, N*C, H, W]); dwd from
// the CPU conv2d_weight_grad with groups = N. Tolerance
// |got - ref| <= atol + rtol*|ref|: d rtol 1e-5; y and dx as in study/conv.cu, atol 1e-6*K and
// rtol 1e-4 in f32, atol 5e-3*sqrt(K)*max|w*s*d| and rtol 1e-2 for TF32.
#include "kernels/cpu/conv.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/modconv.h"
#include "study/implicit_gemm.cuh"

namespace {

using namespace study;

constexpr double kEps = 1e-8;

struct Geometry {
  int N, C, H, W, O, k, pad;
  __host__ __device__ int Ho() const { return H + 2 * pad - k + 1; }
  __host__ __device__ int Wo() const { return W + 2 * pad - k + 1; }
};

// ---- demodulation coefficients ----------------------------------------------------------
__global__ void dcoefs_v1(const float* w, const float* s, float* d, int N, int O, int C, int kk, float eps) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;  // (n, o)
  if (t >= N * O) return;
  const int n = t / O, o = t % O;
  float acc = 0.0f;
  for (int i = 0; i < C; ++i)
    for (int j = 0; j < kk; ++j) {
      const float v = w[((size_t)o * C + i) * kk + j] * s[n * C + i];
      acc += v * v;
    }
  d[t] = 1.0f / sqrtf(acc + eps);
}

__global__ void dcoefs_v2(const float* w, const float* s, float* d, int O, int C, int kk, float eps) {
  __shared__ float part[256];
  const int n = blockIdx.y, o = blockIdx.x;
  float acc = 0.0f;
  for (int e = threadIdx.x; e < C * kk; e += 256) {  // coalesced over w[o, :, :, :]
    const float v = w[(size_t)o * C * kk + e] * s[n * C + e / kk];
    acc += v * v;
  }
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int half = 128; half > 0; half /= 2) {  // tree: log2(256) steps, half the threads idle each
    if ((int)threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) d[n * O + o] = 1.0f / sqrtf(part[0] + eps);
}

// ---- the GEMMs (study/implicit_gemm.cuh), z = sample -----------------------------------
struct Forward {  // y[z] = d[z] * (w * s[z]) @ im2col(x[z])
  Geometry g;
  const float *x, *w, *s, *d;
  float* y;
  int M, N, K;
  __device__ float a(int z, int m, int k) const { return w[(size_t)m * K + k] * s[z * g.C + k / (g.k * g.k)]; }
  __device__ float b(int z, int k, int n) const {
    const int kk = g.k * g.k, i = k / kk, a = (k % kk) / g.k, bb = k % g.k;
    const int iy = n / g.Wo() + a - g.pad, ix = n % g.Wo() + bb - g.pad;
    if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) return 0.0f;
    return x[(((size_t)z * g.C + i) * g.H + iy) * g.W + ix];
  }
  __device__ void store(int z, int m, int n, float v) const { y[((size_t)z * g.O + m) * N + n] = v * d[z * g.O + m]; }
};

struct DataGrad {  // dx[z] = s[z] * (w^T as [C, O*kk]) @ transposed gather of d[z] * dy[z]
  Geometry g;
  const float *dy, *w, *s, *d;
  float* dx;
  int M, N, K;
  __device__ float a(int z, int m, int k) const {
    const int kk = g.k * g.k, o = k / kk;
    return w[((size_t)o * g.C + m) * kk + k % kk] * d[z * g.O + o];
  }
  __device__ float b(int z, int k, int n) const {
    const int kk = g.k * g.k, o = k / kk, a = (k % kk) / g.k, bb = k % g.k;
    const int oy = n / g.W - a + g.pad, ox = n % g.W - bb + g.pad;
    if (oy < 0 || oy >= g.Ho() || ox < 0 || ox >= g.Wo()) return 0.0f;
    return dy[(((size_t)z * g.O + o) * g.Ho() + oy) * g.Wo() + ox];
  }
  __device__ void store(int z, int m, int n, float v) const { dx[((size_t)z * g.C + m) * N + n] = v * s[z * g.C + m]; }
};

struct WeightGrad {  // dwd[z] = dy[z] ([O, Ho*Wo]) @ im2col(x[z])^T ([Ho*Wo, C*kk])
  Geometry g;
  const float *dy, *x;
  float* dwd;
  int M, N, K;
  __device__ float a(int z, int m, int k) const { return dy[((size_t)z * g.O + m) * K + k]; }
  __device__ float b(int z, int k, int n) const {
    const int kk = g.k * g.k, i = n / kk, a = (n % kk) / g.k, bb = n % g.k;
    const int iy = k / g.Wo() + a - g.pad, ix = k % g.Wo() + bb - g.pad;
    if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) return 0.0f;
    return x[(((size_t)z * g.C + i) * g.H + iy) * g.W + ix];
  }
  __device__ void store(int z, int m, int n, float v) const { dwd[((size_t)z * g.O + m) * N + n] = v; }
};

// w'd[n, o, i, t] = w[o, i, t] * s[n, i] * d[n, o]: what the engine's backward materialises.
__global__ void materialise(const float* w, const float* s, const float* d, float* wd, int N, int O, int C, int kk) {
  const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= (int64_t)N * O * C * kk) return;
  const int i = (e / kk) % C, o = (e / ((int64_t)kk * C)) % O, n = (int)(e / ((int64_t)kk * C * O));
  wd[e] = w[((size_t)o * C + i) * kk + e % kk] * s[n * C + i] * d[n * O + o];
}

void run(const Args& args, const Geometry& g) {
  const int Ho = g.Ho(), Wo = g.Wo(), kk = g.k * g.k;
  std::printf("modconv x [%d, %d, %d, %d] w [%d, %d, %d, %d] pad %d, demodulated -> [%d, %d, %d, %d], f32\n", g.N, g.C,
              g.H, g.W, g.O, g.C, g.k, g.k, g.pad, g.N, g.O, Ho, Wo);
  const size_t nx = (size_t)g.N * g.C * g.H * g.W, ny = (size_t)g.N * g.O * Ho * Wo, nw = (size_t)g.O * g.C * kk;
  const std::vector<float> hx = randn(nx, 1), hw = randn(nw, 2), hs = randn((size_t)g.N * g.C, 3), hdy = randn(ny, 4);
  // Reference: d in f64, then the CPU conv kernels on the materialised w * s * d, groups = N.
  std::vector<float> ref_d((size_t)g.N * g.O), wd((size_t)g.N * nw);
  for (int n = 0; n < g.N; ++n)
    for (int o = 0; o < g.O; ++o) {
      double acc = 0;
      for (int i = 0; i < g.C; ++i)
        for (int t = 0; t < kk; ++t) acc += std::pow((double)hw[((size_t)o * g.C + i) * kk + t] * hs[n * g.C + i], 2);
      ref_d[n * g.O + o] = (float)(1.0 / std::sqrt(acc + kEps));
    }
  float wscale = 0;
  for (int n = 0; n < g.N; ++n)
    for (size_t e = 0; e < nw; ++e) {
      const int o = (int)(e / ((size_t)g.C * kk)), i = (int)(e / kk) % g.C;
      wd[n * nw + e] = (float)((double)hw[e] * hs[n * g.C + i] * ref_d[n * g.O + o]);
      wscale = std::max(wscale, std::fabs(wd[n * nw + e]));
    }
  std::vector<float> ref_y(ny), ref_dx(nx), ref_dwd((size_t)g.N * nw);
  namespace cpu = sg::kernels::cpu;
  // x viewed as [1, N*C, H, W], a grouped conv with groups = N, for both conv2d and its weight grad.
  const sg::kernels::Conv2dParams grouped{
      1, (int64_t)g.N * g.C, g.H, g.W, (int64_t)g.N * g.O, g.k, g.k, 1, 1, g.pad, g.pad, 0, 0, g.N};
  cpu::conv2d_weight_grad(grouped, hdy.data(), hx.data(), ref_dwd.data());
  cpu::conv2d_forward(grouped, hx.data(), wd.data(), ref_y.data());
  cpu::conv_transpose2d_forward(sg::kernels::Conv2dParams{1, (int64_t)g.N * g.O, Ho, Wo, (int64_t)g.N * g.C, g.k, g.k,
                                                          1, 1, g.pad, g.pad, 0, 0, g.N},
                                hdy.data(), wd.data(), ref_dx.data());

  DeviceBuffer x(hx), w(hw), s(hs), dy(hdy), d(ref_d.size()), y(ny), dx(nx), wdd(wd.size()), dwd(wd.size());
  // (sized for TF32, the most this program runs; a grouped weight gradient never takes conv_tc)
  DeviceBuffer ws((size_t)std::max<int64_t>(1, kc::conv2d_weight_grad_workspace(grouped, kc::ConvMath::tf32)));
  const Forward fp{g, x.p, w.p, s.p, d.p, y.p, g.O, Ho * Wo, g.C * kk};
  const DataGrad dp{g, dy.p, w.p, s.p, d.p, dx.p, g.C, g.H * g.W, g.O * kk};
  const WeightGrad wp{g, dy.p, x.p, dwd.p, g.O, g.C * kk, Ho * Wo};
  auto prod_dwd = [&](bool tf32) {
    kc::conv2d_weight_grad<float>(grouped, dy.p, x.p, dwd.p,
                                  kc::conv2d_weight_grad_workspace(grouped, kc::ConvMath::tf32) > 0 ? ws.p : nullptr,
                                  tf32 ? kc::ConvMath::tf32 : kc::ConvMath::fma);
  };
  const int nd = g.N * g.O;
  auto prod_dx = [&](bool tf32) {
    kc::launch("materialise", materialise, dim3((unsigned)((wd.size() + 255) / 256)), dim3(256), 0, w.p, s.p, d.p,
               wdd.p, g.N, g.O, g.C, kk);
    kc::conv_transpose2d_forward<float>(sg::kernels::Conv2dParams{1, (int64_t)g.N * g.O, Ho, Wo, (int64_t)g.N * g.C,
                                                                  g.k, g.k, 1, 1, g.pad, g.pad, 0, 0, g.N},
                                        dy.p, wdd.p, dx.p, tf32 ? kc::ConvMath::tf32 : kc::ConvMath::fma);
  };
  // calls[which][version - 1]; which: 0 dcoefs, 1 forward (reads d), 2 data grad (reads d),
  // 3 the weight-side GEMM dwd
  const std::function<void()> calls[4][4] = {
      {[&] {
         kc::launch("dcoefs_v1", dcoefs_v1, dim3((nd + 127) / 128), dim3(128), 0, w.p, s.p, d.p, g.N, g.O, g.C, kk,
                    (float)kEps);
       },
       [&] {
         kc::launch("dcoefs_v2", dcoefs_v2, dim3(g.O, g.N), dim3(256), 0, w.p, s.p, d.p, g.O, g.C, kk, (float)kEps);
       },
       [&] { kc::modconv_dcoefs<float>(w.p, s.p, d.p, g.N, g.O, g.C, kk, kEps); },
       [&] { kc::modconv_dcoefs<float>(w.p, s.p, d.p, g.N, g.O, g.C, kk, kEps); }},
      {[&] { launch_gemm_naive(fp, g.N); }, [&] { launch_gemm_tiled(fp, g.N); },
       [&] {
         kc::modconv_forward<float>(x.p, w.p, s.p, d.p, y.p, g.N, g.C, g.H, g.W, g.O, g.k, g.k, g.pad,
                                    kc::ConvMath::fma);
       },
       [&] {
         kc::modconv_forward<float>(x.p, w.p, s.p, d.p, y.p, g.N, g.C, g.H, g.W, g.O, g.k, g.k, g.pad,
                                    kc::ConvMath::tf32);
       }},
      {[&] { launch_gemm_naive(dp, g.N); }, [&] { launch_gemm_tiled(dp, g.N); }, [&] { prod_dx(false); },
       [&] { prod_dx(true); }},
      {[&] { launch_gemm_naive(wp, g.N); }, [&] { launch_gemm_tiled(wp, g.N); }, [&] { prod_dwd(false); },
       [&] { prod_dwd(true); }},
  };
  const char* versions[] = {"1 naive", "2 tiled", "3 production fma", "4 production tf32 (mma.sync)"};
  const char* ops[] = {"dcoefs", "forward", "data grad", "weight-side grad"};
  DeviceBuffer* outs[] = {&d, &y, &dx, &dwd};
  const std::vector<float>* refs[] = {&ref_d, &ref_y, &ref_dx, &ref_dwd};
  const int Ks[] = {g.C * kk, fp.K, dp.K, wp.K};
  float xscale = 0;  // dwd's terms are dy * x, with |dy| about 1
  for (float v : hx) xscale = std::max(xscale, std::fabs(v));
  for (int v = 1; v <= 4; ++v) {
    if (!args.wants(v)) continue;
    for (int op = 0; op < 4; ++op) {
      if (op > 0) d.upload(ref_d);  // the GEMMs of every version read the same d
      kc::memset_async(outs[op]->p, 0xff, outs[op]->bytes());
      calls[op][v - 1]();
      const double K = Ks[op];
      double atol = 1e-6 * K, rtol = 1e-4;
      if (op == 0) atol = 0, rtol = 1e-5;  // a sum of squares: relative error only
      if (v == 4 && op > 0) atol = 5e-3 * std::sqrt(K) * (op == 3 ? xscale : wscale), rtol = 1e-2;
      check((std::string(ops[op]) + " v" + versions[v - 1]).c_str(), outs[op]->download(), *refs[op], atol, rtol);
    }
  }
  if (!args.timing()) return;
  const double flop = 2.0 * g.N * g.O * Ho * Wo * g.C * kk;
  for (int v = 1; v <= 4; ++v) {
    if (!args.wants(v)) continue;
    report_tflops((std::string("dcoefs + forward v") + versions[v - 1]).c_str(),
                  time_ms(
                      [&] {
                        calls[0][v - 1]();
                        calls[1][v - 1]();
                      },
                      2, 10),
                  flop);
    report_tflops((std::string("data grad v") + versions[v - 1]).c_str(), time_ms(calls[2][v - 1], 2, 10), flop);
    report_tflops((std::string("weight-side grad v") + versions[v - 1]).c_str(), time_ms(calls[3][v - 1], 2, 10), flop);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv, "study_modconv [version 1..4] [--validate]");
  if (args.validate) {
    run(args, {3, 8, 7, 7, 10, 3, 1});  // 3x3 same padding, sizes not multiples of the tiles
    run(args, {2, 20, 5, 5, 3, 1, 0});  // 1x1 (toRGB-like)
  } else {
    run(args, {32, 512, 32, 32, 512, 3, 1});  // a StyleGAN2 synthesis layer at 32x32
    run(args, {32, 128, 128, 128, 128, 3, 1});
  }
  return finish();
}
