// study/upfirdn2d.cu: upsample, pad, FIR filter, downsample (StyleGAN2's resampling), forward
// and backward.
//
// Build and run (study/README.md):
//   GPU:       cmake -S . -B build -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build build --target study_upfirdn2d
//              build/study/study_upfirdn2d       all versions: validate, then time
//              build/study/study_upfirdn2d 2     version 2 only
//   emulator:  cmake -S . -B build-study -DSG_CUDA_EMU=ON && cmake --build build-study --target study_upfirdn2d
//              build-study/study/study_upfirdn2d --validate
//
// The op (kernels/cpu/upfirdn2d.h, kernels/cuda/upfirdn2d.h). Per (n, c) plane, with u the
// zero-upsampled (by up), padded (pad0 before, pad1 after) input,
//   y[oy][ox] = gain * sum_{i<fh, j<fw} u[oy*down + i][ox*down + j] * w[i][j]
// where w is f flipped in both axes (a true convolution). Ho = (H*up + pad0 + pad1 - fh)/down + 1.
// Cases: upsample2d (up 2, pads 2/1, gain 4) and downsample2d (down 2, pads 1/1) with
// StyleGAN2's [1,3,3,1] filter (normalised, separable: f2d = outer(f, f)).
// Backward (engine/ops/upfirdn2d.cpp): upfirdn2d is linear in x and its adjoint is upfirdn2d
// again with up and down swapped, the filter unflipped (flip_filter negated) and the pads
//   pad0' = fh - pad0 - 1,  pad1' = H*up - Ho*down + pad0 - up + 1
// so every version below runs it, on dy, as a second upfirdn2d call.
// Layout: x [planes, H, W], y [planes, Ho, Wo] row-major (planes = N*C); f [fh, fw].
// Memory bound: GB/s of x + y traffic against a device-to-device cudaMemcpy in the same run.
//
// Versions:
//   1  naive: one thread per output pixel, every one of the fh*fw taps visited and tested for
//      landing on a real input sample (up = 2: 3 of 4 taps are inserted zeros), the filter
//      and the input read from global memory.
//   2  tiled: a block computes a 16x16 output tile; it first stages the oriented, gain-scaled
//      filter and the input window the tile needs in shared memory (zeros outside the image),
//      then each thread reads only shared memory. Neighbouring outputs share most of their
//      inputs, so each input is read from global memory about once per block.
//   3  production: kernels::cuda::upfirdn2d (kernels/cuda/upfirdn2d.cu) with the 1-D filter:
//      the separable fast path (a horizontal pass into shared memory, then a vertical pass:
//      2k instead of k^2 taps per output), visiting only live taps.
// Reference: kernels::cpu::upfirdn2d with the 2-D filter, same f32 inputs; tolerance
// atol 1e-5, rtol 1e-5 (16 taps, summation orders differ).
#include "kernels/cpu/upfirdn2d.h"
#include "kernels/cuda/upfirdn2d.h"
#include "study/common.h"

namespace {

using namespace study;

struct Params {  // one upfirdn2d call, both axes alike
  int planes, H, W, Ho, Wo, fh, fw, up, down, pad0y, pad0x;
  bool flip;  // false: true convolution (w = f flipped)
  float gain;
};

// floor(a / b) for b > 0
__device__ __forceinline__ int floordiv(int a, int b) { return (a >= 0 ? a : a - b + 1) / b; }

// ---- version 1 ---------------------------------------------------------------------------
__global__ void upfirdn_v1(Params p, const float* x, const float* f, float* y) {
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= (int64_t)p.planes * p.Ho * p.Wo) return;
  const int ox = idx % p.Wo, oy = (idx / p.Wo) % p.Ho;
  const int64_t plane = idx / ((int64_t)p.Wo * p.Ho);
  float acc = 0.0f;
  for (int i = 0; i < p.fh; ++i) {
    const int Y = oy * p.down + i - p.pad0y;  // position in the upsampled input
    if (Y < 0 || Y % p.up || Y / p.up >= p.H) continue;
    for (int j = 0; j < p.fw; ++j) {
      const int X = ox * p.down + j - p.pad0x;
      if (X < 0 || X % p.up || X / p.up >= p.W) continue;
      const float w = p.flip ? f[i * p.fw + j] : f[(p.fh - 1 - i) * p.fw + (p.fw - 1 - j)];
      acc += x[(plane * p.H + Y / p.up) * p.W + X / p.up] * w;
    }
  }
  y[idx] = acc * p.gain;
}

// ---- version 2 ---------------------------------------------------------------------------
constexpr int T = 16;  // output tile T x T, one thread per output

// The input rows a tile of outputs [o0, o0 + T) reads: upsampled positions
// [o0*down - pad0, (o0+T-1)*down - pad0 + fh), i.e. inputs [floor(lo/up), floor(hi/up)].
__host__ __device__ inline int window(int fh, int up, int down) { return ((T - 1) * down + fh - 1) / up + 2; }

__global__ void upfirdn_v2(Params p, const float* x, const float* f, float* y) {
  SG_DYNAMIC_SHARED(float, smem);
  const int wy = window(p.fh, p.up, p.down), wx = window(p.fw, p.up, p.down);
  float* ws = smem;                // [fh][fw]: the oriented filter times gain
  float* xs = smem + p.fh * p.fw;  // [wy][wx]: the input window
  const int plane = blockIdx.z, oy0 = blockIdx.y * T, ox0 = blockIdx.x * T;
  const int tid = threadIdx.y * T + threadIdx.x;
  const int iy0 = floordiv(oy0 * p.down - p.pad0y, p.up), ix0 = floordiv(ox0 * p.down - p.pad0x, p.up);
  for (int t = tid; t < p.fh * p.fw; t += T * T) {
    const int i = t / p.fw, j = t % p.fw;
    ws[t] = p.gain * (p.flip ? f[t] : f[(p.fh - 1 - i) * p.fw + (p.fw - 1 - j)]);
  }
  const float* xp = x + (int64_t)plane * p.H * p.W;
  for (int t = tid; t < wy * wx; t += T * T) {
    const int iy = iy0 + t / wx, ix = ix0 + t % wx;
    xs[t] = (iy >= 0 && iy < p.H && ix >= 0 && ix < p.W) ? xp[iy * p.W + ix] : 0.0f;
  }
  __syncthreads();
  const int oy = oy0 + threadIdx.y, ox = ox0 + threadIdx.x;
  if (oy >= p.Ho || ox >= p.Wo) return;  // after the barrier: every thread helped to load
  float acc = 0.0f;
  for (int i = 0; i < p.fh; ++i) {
    const int Y = oy * p.down + i - p.pad0y;
    if (Y - floordiv(Y, p.up) * p.up) continue;  // an inserted zero
    const int sy = floordiv(Y, p.up) - iy0;
    for (int j = 0; j < p.fw; ++j) {
      const int X = ox * p.down + j - p.pad0x;
      if (X - floordiv(X, p.up) * p.up) continue;
      acc += xs[sy * wx + floordiv(X, p.up) - ix0] * ws[i * p.fw + j];
    }
  }
  y[((int64_t)plane * p.Ho + oy) * p.Wo + ox] = acc;
}

void launch_v2(const Params& p, const float* x, const float* f, float* y) {
  const size_t smem = sizeof(float) * (p.fh * p.fw + window(p.fh, p.up, p.down) * window(p.fw, p.up, p.down));
  kc::launch("upfirdn_v2", upfirdn_v2, dim3((p.Wo + T - 1) / T, (p.Ho + T - 1) / T, p.planes), dim3(T, T), smem, p, x,
             f, y);
}

// ---- the cases -------------------------------------------------------------------------
Params make(int planes, int H, int W, int k, int up, int down, int pad0, int pad1, bool flip, float gain) {
  Params p{planes, H, W, 0, 0, k, k, up, down, pad0, pad0, flip, gain};
  p.Ho = (H * up + pad0 + pad1 - k) / down + 1;
  p.Wo = (W * up + pad0 + pad1 - k) / down + 1;
  return p;
}

// The adjoint of p (engine/ops/upfirdn2d.cpp): dy [planes, Ho, Wo] -> dx [planes, H, W]. H == W here.
Params backward_of(const Params& p) {
  const int pad0 = p.fh - p.pad0y - 1, pad1 = p.H * p.up - p.Ho * p.down + p.pad0y - p.up + 1;
  return make(p.planes, p.Ho, p.Wo, p.fh, p.down, p.up, pad0, pad1, !p.flip, p.gain);
}

// The kernels' parameters (kernels/upfirdn2d.h) for p with a 2-D filter, or the 1-D separable one.
sg::kernels::UpFirDn2dParams params(const Params& p, bool separable) {
  sg::kernels::UpFirDn2dParams q;
  q.planes = p.planes, q.in_h = p.H, q.in_w = p.W, q.out_h = p.Ho, q.out_w = p.Wo, q.fh = p.fh, q.fw = p.fw;
  q.separable = separable;
  q.upx = q.upy = p.up, q.downx = q.downy = p.down, q.padx0 = p.pad0x, q.pady0 = p.pad0y;
  q.flip_filter = p.flip, q.gain = p.gain;
  return q;
}

void run(const Args& args, const char* name, const Params& fwd) {
  const Params bwd = backward_of(fwd);
  std::printf("%s: x [%d planes, %d, %d] -> y [%d, %d]; backward dy -> dx [%d, %d], f32\n", name, fwd.planes, fwd.H,
              fwd.W, fwd.Ho, fwd.Wo, bwd.Ho, bwd.Wo);
  const std::vector<float> f1 = {0.125f, 0.375f, 0.375f, 0.125f};  // [1,3,3,1] / 8
  std::vector<float> f2(16);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) f2[i * 4 + j] = f1[i] * f1[j];
  const size_t nx = (size_t)fwd.planes * fwd.H * fwd.W, ny = (size_t)fwd.planes * fwd.Ho * fwd.Wo;
  const std::vector<float> hx = randn(nx, 1), hdy = randn(ny, 2);
  std::vector<float> ref_y(ny), ref_dx(nx);
  sg::kernels::cpu::upfirdn2d(params(fwd, false), hx.data(), f2.data(), ref_y.data());
  sg::kernels::cpu::upfirdn2d(params(bwd, false), hdy.data(), f2.data(), ref_dx.data());
  // The adjoint identity <y, dy> == <x, dx> checks backward_of's pads on the reference itself.
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < ny; ++i) lhs += (double)ref_y[i] * hdy[i];
  for (size_t i = 0; i < nx; ++i) rhs += (double)hx[i] * ref_dx[i];
  const std::vector<float> adj_got = {(float)rhs}, adj_ref = {(float)lhs};
  check("adjoint identity <y, dy> = <x, dx> (CPU)", adj_got, adj_ref, 1e-3, 1e-5);

  DeviceBuffer x(hx), dy(hdy), y(ny), dx(nx), d_f1(f1), d_f2(f2);
  const unsigned by = (unsigned)((ny + 255) / 256), bx = (unsigned)((nx + 255) / 256);
  const std::function<void()> calls[2][3] = {
      {[&] { kc::launch("upfirdn_v1", upfirdn_v1, dim3(by), dim3(256), 0, fwd, x.p, d_f2.p, y.p); },
       [&] { launch_v2(fwd, x.p, d_f2.p, y.p); }, [&] { kc::upfirdn2d<float>(params(fwd, true), x.p, d_f1.p, y.p); }},
      {[&] { kc::launch("upfirdn_v1", upfirdn_v1, dim3(bx), dim3(256), 0, bwd, dy.p, d_f2.p, dx.p); },
       [&] { launch_v2(bwd, dy.p, d_f2.p, dx.p); },
       [&] { kc::upfirdn2d<float>(params(bwd, true), dy.p, d_f1.p, dx.p); }},
  };
  const char* versions[] = {"1 naive", "2 tiled 16x16 in shared memory", "3 production separable"};
  for (int v = 1; v <= 3; ++v) {
    if (!args.wants(v)) continue;
    kc::memset_async(y.p, 0xff, y.bytes());
    kc::memset_async(dx.p, 0xff, dx.bytes());
    calls[0][v - 1]();
    check((std::string("forward  v") + versions[v - 1]).c_str(), y.download(), ref_y, 1e-5, 1e-5);
    calls[1][v - 1]();
    check((std::string("backward v") + versions[v - 1]).c_str(), dx.download(), ref_dx, 1e-5, 1e-5);
  }
  if (!args.timing()) return;
  const double roof = d2d_gbs(std::max(x.bytes(), y.bytes()));
  std::printf("  cudaMemcpy d2d: %.1f GB/s (read + write)\n", roof);
  const double bytes = 4.0 * (nx + ny);
  for (int v = 1; v <= 3; ++v) {
    if (!args.wants(v)) continue;
    report_gbs((std::string("forward  v") + versions[v - 1]).c_str(), time_ms(calls[0][v - 1]), bytes, roof);
    report_gbs((std::string("backward v") + versions[v - 1]).c_str(), time_ms(calls[1][v - 1]), bytes, roof);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv, "study_upfirdn2d [version 1..3] [--validate]");
  // StyleGAN2's upsample2d (up 2, pads (k+1)/2 and (k-2)/2, gain up^2) and downsample2d
  // (down 2, pads (k-1)/2 and (k-2)/2) with k = 4 taps, as engine/ops/upfirdn2d.cpp sets them.
  const int planes = args.validate ? 6 : 32 * 512, res = args.validate ? 19 : 64;
  run(args, "upsample2d", make(planes, res, res, 4, 2, 1, 2, 1, false, 4.0f));
  run(args, "downsample2d", make(planes, 2 * res, 2 * res, 4, 1, 2, 1, 1, false, 1.0f));
  return finish();
}
