// study/conv.cu: 2-D convolution as an implicit GEMM, forward and both gradients.
//
// Build and run (study/README.md):
//   GPU:       cmake -S . -B build -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build build --target study_conv
//              build/study/study_conv            all versions: validate, then time
//              build/study/study_conv 2          version 2 only
//   emulator:  cmake -S . -B build-study -DSG_CUDA_EMU=ON && cmake --build build-study --target study_conv
//              build-study/study/study_conv --validate
//
// The op (cross-correlation, as PyTorch, kernels/cpu/conv.h and kernels/cuda/conv.h; groups = 1
// here, the grouped case is study/modconv.cu), stride s and zero padding p on both axes:
//   forward:      y[n,co,oy,ox]  = sum_{ci,i,j} w[co,ci,i,j] * x[n,ci,oy*s-p+i,ox*s-p+j]
//                 GEMM  M = Cout, N = batch*Ho*Wo, K = Cin*kh*kw       (Ho = (H+2p-kh)/s+1)
//   data grad:    dx[n,ci,iy,ix] = sum_{co,i,j} w[co,ci,i,j] * dy[n,co,oy,ox] over iy = oy*s-p+i
//                 (the transposed convolution of dy)
//                 GEMM  M = Cin,  N = batch*H*W,   K = Cout*kh*kw
//   weight grad:  dw[co,ci,i,j]  = sum_{n,oy,ox} dy[n,co,oy,ox] * x[n,ci,oy*s-p+i,ox*s-p+j]
//                 GEMM  M = Cout, N = Cin*kh*kw,   K = batch*Ho*Wo
// All three: 2 * batch * Cout * Ho * Wo * Cin * kh * kw flops, reported in TFLOP/s.
// Layout: NCHW contiguous; w [Cout, Cin, kh, kw].
//
// Versions (forward, data grad and weight grad each):
//   1  naive: one thread per output element, the K-long dot product gathered from global
//      memory (study/implicit_gemm.cuh: gemm_naive). The data grad visits every tap and
//      drops those that do not land on a stride-s output: with s = 2, 3/4 of its work is
//      wasted.
//   2  tiled: 16x16 output tiles, the A (weight) and B (im2col gather) tiles staged in shared
//      memory per K step of 16 (gemm_tiled): 16 FMAs per 2 global loads.
//   3  production, FMA: kernels::cuda::conv2d_forward / conv_transpose2d_forward /
//      conv2d_weight_grad (kernels/cuda/conv.cu): 64x64 tiles, 4x4 register micro-tiles,
//      loads of step k+1 issued before the math of step k, the transposed conv split by output
//      phase (no zero taps), split-K weight grad with a deterministic reduction.
//   4  production, TF32 tensor cores (ConvMath::tf32): the same tiles through PTX mma.sync;
//      10-bit mantissa inputs, so a looser tolerance.
//   5  conv_tc, TF32 (kernels/cuda/conv_tc.h, what the engine runs in TF32): x and w packed NHWC
//      into a workspace, 128x128 tiles of 8 warps, cp.async three stages deep, ldmatrix from
//      swizzled shared memory, K ordered (tap, channel) with no division in the main loop; the
//      data grad one GEMM per output phase, the weight grad with dy as A.
//   6  conv_tc, bf16 (7-bit mantissas: the loosest tolerance).
// Reference: kernels::cpu conv2d_forward / conv_transpose2d_forward / conv2d_weight_grad (im2col
// + Eigen GEMM) on the same f32 inputs. Tolerance |got - ref| <= atol + rtol*|ref| with
// rtol 1e-4 and atol 1e-6*K for f32 accumulation (K the GEMM's inner size: the summation
// orders differ), atol 5e-3*sqrt(K) and rtol 1e-2 for TF32 (about 1e-3 relative error per
// product, random in sign); bf16: atol 4e-2*sqrt(K), rtol 5e-2 (about 8e-3 per product).
#include "kernels/cpu/conv.h"
#include "kernels/cuda/conv.h"
#include "study/implicit_gemm.cuh"

namespace {

using namespace study;

struct Geometry {
  int batch, Cin, H, W, Cout, kh, kw, s, p;
  __host__ __device__ int Ho() const { return (H + 2 * p - kh) / s + 1; }
  __host__ __device__ int Wo() const { return (W + 2 * p - kw) / s + 1; }
  // x[n, ci, iy, ix] with zero padding
  __device__ float x_at(const float* x, int n, int ci, int iy, int ix) const {
    return (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[(((size_t)n * Cin + ci) * H + iy) * W + ix] : 0.0f;
  }
  // im2col(x)[k][(img, pix)]: k = (ci, i, j), pix = oy * Wo + ox
  __device__ float im2col(const float* x, int img, int pix, int k) const {
    const int kk = kh * kw, ci = k / kk, i = (k % kk) / kw, j = k % kw;
    return x_at(x, img, ci, pix / Wo() * s - p + i, pix % Wo() * s - p + j);
  }
};

// forward: A = w [Cout, K], B = im2col(x) [K, batch*Ho*Wo]
struct Forward {
  Geometry g;
  const float* x;
  const float* w;
  float* y;
  int M, N, K;
  __device__ float a(int, int m, int k) const { return w[(size_t)m * K + k]; }
  __device__ float b(int, int k, int n) const {
    const int hw = g.Ho() * g.Wo();
    return g.im2col(x, n / hw, n % hw, k);
  }
  __device__ void store(int, int m, int n, float v) const {
    const int hw = g.Ho() * g.Wo();
    y[((size_t)(n / hw) * g.Cout + m) * hw + n % hw] = v;
  }
};

// data grad: A[ci][(co, i, j)] = w[co, ci, i, j], B = the transposed gather of dy
struct DataGrad {
  Geometry g;
  const float* dy;
  const float* w;
  float* dx;
  int M, N, K;
  __device__ float a(int, int m, int k) const {
    const int kk = g.kh * g.kw;
    return w[((size_t)(k / kk) * g.Cin + m) * kk + k % kk];
  }
  __device__ float b(int, int k, int n) const {
    const int hw = g.H * g.W, img = n / hw, iy = (n % hw) / g.W, ix = n % g.W;
    const int kk = g.kh * g.kw, co = k / kk, i = (k % kk) / g.kw, j = k % g.kw;
    const int ty = iy + g.p - i, tx = ix + g.p - j;  // = oy * s when this tap is live
    if (ty < 0 || tx < 0 || ty % g.s || tx % g.s) return 0.0f;
    const int oy = ty / g.s, ox = tx / g.s;
    if (oy >= g.Ho() || ox >= g.Wo()) return 0.0f;
    return dy[(((size_t)img * g.Cout + co) * g.Ho() + oy) * g.Wo() + ox];
  }
  __device__ void store(int, int m, int n, float v) const {
    const int hw = g.H * g.W;
    dx[((size_t)(n / hw) * g.Cin + m) * hw + n % hw] = v;
  }
};

// weight grad: A = dy as [Cout, batch*Ho*Wo], B = im2col(x) transposed [batch*Ho*Wo, Cin*kh*kw]
struct WeightGrad {
  Geometry g;
  const float* dy;
  const float* x;
  float* dw;
  int M, N, K;
  __device__ float a(int, int m, int k) const {
    const int hw = g.Ho() * g.Wo();
    return dy[((size_t)(k / hw) * g.Cout + m) * hw + k % hw];
  }
  __device__ float b(int, int k, int n) const {
    const int hw = g.Ho() * g.Wo();
    return g.im2col(x, k / hw, k % hw, n);
  }
  __device__ void store(int, int m, int n, float v) const { dw[(size_t)m * N + n] = v; }
};

void run(const Args& args, const Geometry& g) {
  const int Ho = g.Ho(), Wo = g.Wo(), kk = g.kh * g.kw;
  std::printf("conv2d x [%d, %d, %d, %d] w [%d, %d, %d, %d] stride %d pad %d -> [%d, %d, %d, %d], f32\n", g.batch,
              g.Cin, g.H, g.W, g.Cout, g.Cin, g.kh, g.kw, g.s, g.p, g.batch, g.Cout, Ho, Wo);
  const size_t nx = (size_t)g.batch * g.Cin * g.H * g.W, ny = (size_t)g.batch * g.Cout * Ho * Wo,
               nw = (size_t)g.Cout * g.Cin * kk;
  const int opy = g.H - ((Ho - 1) * g.s - 2 * g.p + g.kh), opx = g.W - ((Wo - 1) * g.s - 2 * g.p + g.kw);
  const std::vector<float> hx = randn(nx, 1), hw = randn(nw, 2), hdy = randn(ny, 3);
  std::vector<float> ref_y(ny), ref_dx(nx), ref_dw(nw);
  namespace cpu = sg::kernels::cpu;
  cpu::conv2d_forward(
      sg::kernels::Conv2dParams{g.batch, g.Cin, g.H, g.W, g.Cout, g.kh, g.kw, g.s, g.s, g.p, g.p, 0, 0, 1}, hx.data(),
      hw.data(), ref_y.data());
  // The data grad is the transposed conv of dy with the same weight, read as [Cin_t = Cout, Cout_t = Cin, kh, kw].
  cpu::conv_transpose2d_forward(
      sg::kernels::Conv2dParams{g.batch, g.Cout, Ho, Wo, g.Cin, g.kh, g.kw, g.s, g.s, g.p, g.p, opy, opx, 1},
      hdy.data(), hw.data(), ref_dx.data());
  cpu::conv2d_weight_grad(
      sg::kernels::Conv2dParams{g.batch, g.Cin, g.H, g.W, g.Cout, g.kh, g.kw, g.s, g.s, g.p, g.p, 0, 0, 1}, hdy.data(),
      hx.data(), ref_dw.data());

  DeviceBuffer x(hx), w(hw), dy(hdy), y(ny), dx(nx), dw(nw);
  // (sized for TF32, the most this program runs: the bf16 tensor-core weight gradient needs more)
  DeviceBuffer ws(std::max<int64_t>(
      1, kc::conv2d_weight_grad_workspace(
             sg::kernels::Conv2dParams{g.batch, g.Cin, g.H, g.W, g.Cout, g.kh, g.kw, g.s, g.s, g.p, g.p, 0, 0, 1},
             kc::ConvMath::tf32)));
  const Forward fp{g, x.p, w.p, y.p, g.Cout, g.batch * Ho * Wo, g.Cin * kk};
  const DataGrad dp{g, dy.p, w.p, dx.p, g.Cin, g.batch * g.H * g.W, g.Cout * kk};
  const WeightGrad wp{g, dy.p, x.p, dw.p, g.Cout, g.Cin * kk, g.batch * Ho * Wo};

  // conv_tc's workspace: the most any of the three passes needs in either format
  const sg::kernels::Conv2dParams pf{g.batch, g.Cin, g.H, g.W, g.Cout, g.kh, g.kw, g.s, g.s, g.p, g.p, 0, 0, 1};
  const sg::kernels::Conv2dParams pt{g.batch, g.Cout, Ho, Wo, g.Cin, g.kh, g.kw, g.s, g.s, g.p, g.p, opy, opx, 1};
  int64_t tc_bytes = 0;
  for (kc::ConvMath m : {kc::ConvMath::tf32, kc::ConvMath::bf16})
    tc_bytes =
        std::max({tc_bytes, kc::conv2d_forward_workspace<float>(pf, m),
                  kc::conv_transpose2d_forward_workspace<float>(pt, m), 4 * kc::conv2d_weight_grad_workspace(pf, m)});
  DeviceBuffer tc_ws((size_t)tc_bytes / 4 + 64);
  auto production = [&](int which, bool tf32) {
    if (which == 0)
      kc::conv2d_forward<float>(pf, x.p, w.p, y.p, tf32 ? kc::ConvMath::tf32 : kc::ConvMath::fma);
    else if (which == 1)
      kc::conv_transpose2d_forward<float>(pt, dy.p, w.p, dx.p, tf32 ? kc::ConvMath::tf32 : kc::ConvMath::fma);
    else
      kc::conv2d_weight_grad<float>(pf, dy.p, x.p, dw.p, ws.p, tf32 ? kc::ConvMath::tf32 : kc::ConvMath::fma);
  };
  auto conv_tc = [&](int which, kc::ConvMath m) {
    if (which == 0)
      kc::conv2d_forward<float>(pf, x.p, w.p, y.p, m, nullptr, tc_ws.p);
    else if (which == 1)
      kc::conv_transpose2d_forward<float>(pt, dy.p, w.p, dx.p, m, tc_ws.p);
    else
      kc::conv2d_weight_grad<float>(pf, dy.p, x.p, dw.p, tc_ws.p, m);
  };
  // calls[which][version - 1]; which: 0 forward, 1 data grad, 2 weight grad
  const std::function<void()> calls[3][6] = {
      {[&] { launch_gemm_naive(fp, 1); }, [&] { launch_gemm_tiled(fp, 1); }, [&] { production(0, false); },
       [&] { production(0, true); }, [&] { conv_tc(0, kc::ConvMath::tf32); }, [&] { conv_tc(0, kc::ConvMath::bf16); }},
      {[&] { launch_gemm_naive(dp, 1); }, [&] { launch_gemm_tiled(dp, 1); }, [&] { production(1, false); },
       [&] { production(1, true); }, [&] { conv_tc(1, kc::ConvMath::tf32); }, [&] { conv_tc(1, kc::ConvMath::bf16); }},
      {[&] { launch_gemm_naive(wp, 1); }, [&] { launch_gemm_tiled(wp, 1); }, [&] { production(2, false); },
       [&] { production(2, true); }, [&] { conv_tc(2, kc::ConvMath::tf32); }, [&] { conv_tc(2, kc::ConvMath::bf16); }},
  };
  const char* versions[] = {"1 naive",        "2 tiled 16x16", "3 production fma", "4 production tf32 (mma.sync)",
                            "5 conv_tc tf32", "6 conv_tc bf16"};
  const char* ops[] = {"forward", "data grad", "weight grad"};
  DeviceBuffer* outs[] = {&y, &dx, &dw};
  const std::vector<float>* refs[] = {&ref_y, &ref_dx, &ref_dw};
  const int Ks[] = {fp.K, dp.K, wp.K};
  for (int v = 1; v <= 6; ++v) {
    if (!args.wants(v)) continue;
    for (int op = 0; op < 3; ++op) {
      kc::memset_async(outs[op]->p, 0xff, outs[op]->bytes());
      calls[op][v - 1]();
      const double K = Ks[op];
      const double atol = v == 6 ? 4e-2 * std::sqrt(K) : v >= 4 ? 5e-3 * std::sqrt(K) : 1e-6 * K;
      const double rtol = v == 6 ? 5e-2 : v >= 4 ? 1e-2 : 1e-4;
      check((std::string(ops[op]) + " v" + versions[v - 1]).c_str(), outs[op]->download(), *refs[op], atol, rtol);
    }
  }
  if (!args.timing()) return;
  const double flop = 2.0 * g.batch * g.Cout * Ho * Wo * g.Cin * kk;
  for (int v = 1; v <= 6; ++v) {
    if (!args.wants(v)) continue;
    for (int op = 0; op < 3; ++op)
      report_tflops((std::string(ops[op]) + " v" + versions[v - 1]).c_str(), time_ms(calls[op][v - 1], 2, 10), flop);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv, "study_conv [version 1..6] [--validate]");
  if (args.validate) {
    run(args, {2, 8, 9, 9, 12, 3, 3, 1, 1});   // 3x3 same padding; sizes not multiples of the tiles
    run(args, {2, 6, 10, 9, 5, 3, 3, 2, 1});   // stride 2: the data grad's phases, output padding
    run(args, {3, 20, 4, 4, 17, 1, 1, 1, 0});  // 1x1
    run(args, {2, 16, 8, 8, 20, 3, 3, 1, 1});  // Ho*Wo a multiple of 8: conv_tc's weight grad too
  } else {
    run(args, {32, 512, 32, 32, 512, 3, 3, 1, 1});  // a StyleGAN2 layer at 32x32
    run(args, {32, 256, 64, 64, 256, 3, 3, 2, 1});  // stride 2 (the discriminator's down layers)
  }
  return finish();
}
