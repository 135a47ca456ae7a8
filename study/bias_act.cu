// study/bias_act.cu: bias + activation + gain + clamp in one pass, and its gradient.
//
// Build and run (study/README.md):
//   GPU:       cmake -S . -B build -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build build --target study_bias_act
//              build/study/study_bias_act        all versions: validate, then time
//              build/study/study_bias_act 2      version 2 only
//   emulator:  cmake -S . -B build-study -DSG_CUDA_EMU=ON && cmake --build build-study --target study_bias_act
//              build-study/study/study_bias_act --validate
//
// The op (kernels/cpu/bias_act.h, kernels/cuda/bias_act.h):
//   forward: y  = clamp(act(x + b[c]) * gain, -clamp, clamp)       act = lrelu(alpha) here
//   grad:    dx = dy * gain * act'(y) * (|y| < clamp)               reads y, not x
// Layout: x, y, dy, dx contiguous, viewed as [outer, C, inner]; b [C]. For NCHW with a
// per-channel bias: outer = N, C = C, inner = H*W.
// Memory bound: forward moves x + y (8 bytes per element in f32; b is C floats), the grad
// dy + y + dx (12 bytes). The roofline is a device-to-device cudaMemcpy, measured in the
// same run; flops do not matter.
//
// Versions:
//   1  naive: one thread per element, the channel c = (i / inner) % C from a 64-bit division
//      per element. Division by a runtime value costs tens of instructions; it still hides
//      behind memory on most GPUs, which is the first lesson: measure before optimising.
//   2  one block per row (o, c) of inner elements: c is blockIdx.x % C, the bias is read once
//      per block, threads stride over the row with coalesced loads, no division per element.
//      The grad has no channel; its version 2 gives each thread 4 independent elements per
//      iteration (instruction-level parallelism, fewer loop overheads) in a grid-stride loop.
//   3  production: kernels::cuda::bias_act_forward / bias_act_grad (kernels/cuda/bias_act.cu):
//      a grid-stride loop, 32-bit index arithmetic when the tensor allows it, activation and
//      clamp as uniform template branches.
// Reference: kernels::cpu::bias_act_forward / bias_act_grad on the same f32 inputs; an
// elementwise op in f32 matches to rounding (atol 1e-6, rtol 1e-6).
#include "kernels/cpu/bias_act.h"
#include "kernels/cuda/bias_act.h"
#include "study/common.h"

namespace {

using namespace study;

struct Act {  // lrelu with gain and clamp: StyleGAN2's defaults
  float alpha, gain, clamp;
};

__device__ __forceinline__ float act_forward(float v, Act a) {
  v = v > 0.0f ? v : v * a.alpha;
  v *= a.gain;
  return a.clamp >= 0.0f ? fminf(fmaxf(v, -a.clamp), a.clamp) : v;
}

__device__ __forceinline__ float act_grad(float dy, float y, Act a) {
  float d = y > 0.0f ? a.gain : a.gain * a.alpha;
  if (a.clamp >= 0.0f && !(y < a.clamp && y > -a.clamp)) d = 0.0f;
  return dy * d;
}

// ---- version 1: one thread per element -------------------------------------------------
__global__ void forward_v1(const float* x, const float* b, float* y, int64_t n, int64_t C, int64_t inner, Act a) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t c = (i / inner) % C;
  y[i] = act_forward(x[i] + b[c], a);
}

__global__ void grad_v1(const float* dy, const float* y, float* dx, int64_t n, Act a) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  dx[i] = act_grad(dy[i], y[i], a);
}

// ---- version 2: a block per (o, c) row; 4 elements per thread for the grad ----------------
__global__ void forward_v2(const float* x, const float* b, float* y, int C, int inner, Act a) {
  const int64_t row = blockIdx.x;  // o * C + c
  const float bias = b[row % C];   // one read per block, broadcast from the cache
  const float* xr = x + row * inner;
  float* yr = y + row * inner;
  for (int j = threadIdx.x; j < inner; j += blockDim.x) yr[j] = act_forward(xr[j] + bias, a);
}

__global__ void grad_v2(const float* dy, const float* y, float* dx, int64_t n, Act a) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {  // four independent loads in flight per thread
    const float d0 = dy[i], d1 = dy[i + stride], d2 = dy[i + 2 * stride], d3 = dy[i + 3 * stride];
    const float y0 = y[i], y1 = y[i + stride], y2 = y[i + 2 * stride], y3 = y[i + 3 * stride];
    dx[i] = act_grad(d0, y0, a);
    dx[i + stride] = act_grad(d1, y1, a);
    dx[i + 2 * stride] = act_grad(d2, y2, a);
    dx[i + 3 * stride] = act_grad(d3, y3, a);
  }
  for (; i < n; i += stride) dx[i] = act_grad(dy[i], y[i], a);
}

struct Shape {
  int64_t outer, C, inner;
  int64_t n() const { return outer * C * inner; }
};

void run(const Args& args, Shape s) {
  const int64_t n = s.n();
  std::printf("bias_act lrelu, [outer, C, inner] = [%lld, %lld, %lld], f32\n", (long long)s.outer, (long long)s.C,
              (long long)s.inner);
  sg::kernels::BiasActParams p;
  p.act = sg::kernels::BiasActKind::lrelu;
  p.alpha = 0.2, p.gain = std::sqrt(2.0), p.clamp = 1.5;  // a small clamp, so it bites on randn inputs
  const Act a{(float)p.alpha, (float)p.gain, (float)p.clamp};

  const std::vector<float> hx = randn(n, 1), hb = randn(s.C, 2), hdy = randn(n, 3);
  std::vector<float> ref_y(n), ref_dx(n);
  sg::kernels::cpu::bias_act_forward(p, s.outer, s.C, s.inner, hx.data(), hb.data(), ref_y.data());
  sg::kernels::cpu::bias_act_grad(p, n, hdy.data(), ref_y.data(), ref_dx.data());

  DeviceBuffer x(hx), b(hb), dy(hdy), y(n), dx(n), yref(ref_y);
  const unsigned blocks = (unsigned)((n + 255) / 256);
  const unsigned grid2 = (unsigned)std::min<int64_t>(blocks / 4 + 1, 1 << 16);
  const std::function<void()> fwd[] = {
      [&] { kc::launch("forward_v1", forward_v1, dim3(blocks), dim3(256), 0, x.p, b.p, y.p, n, s.C, s.inner, a); },
      [&] {
        kc::launch("forward_v2", forward_v2, dim3((unsigned)(s.outer * s.C)), dim3(256), 0, x.p, b.p, y.p, (int)s.C,
                   (int)s.inner, a);
      },
      [&] { kc::bias_act_forward<float>(p, s.outer, s.C, s.inner, x.p, b.p, y.p); },
  };
  // The grads read the reference y, so each is validated on its own.
  const std::function<void()> bwd[] = {
      [&] { kc::launch("grad_v1", grad_v1, dim3(blocks), dim3(256), 0, dy.p, yref.p, dx.p, n, a); },
      [&] { kc::launch("grad_v2", grad_v2, dim3(grid2), dim3(256), 0, dy.p, yref.p, dx.p, n, a); },
      [&] { kc::bias_act_grad<float>(p, n, dy.p, yref.p, dx.p); },
  };
  const char* names[] = {"1 naive", "2 row per block / 4 per thread", "3 production"};
  for (int v = 1; v <= 3; ++v) {
    if (!args.wants(v)) continue;
    kc::memset_async(y.p, 0xff, y.bytes());
    kc::memset_async(dx.p, 0xff, dx.bytes());
    fwd[v - 1]();
    check((std::string("forward v") + names[v - 1]).c_str(), y.download(), ref_y, 1e-6, 1e-6);
    bwd[v - 1]();
    check((std::string("grad    v") + names[v - 1]).c_str(), dx.download(), ref_dx, 1e-6, 1e-6);
  }
  if (!args.timing()) return;
  const double roof = d2d_gbs(x.bytes());
  std::printf("  cudaMemcpy d2d of %.0f MB: %.1f GB/s (read + write)\n", x.bytes() / 1e6, roof);
  for (int v = 1; v <= 3; ++v) {
    if (!args.wants(v)) continue;
    report_gbs((std::string("forward v") + names[v - 1]).c_str(), time_ms(fwd[v - 1]), 8.0 * n, roof);
    report_gbs((std::string("grad    v") + names[v - 1]).c_str(), time_ms(bwd[v - 1]), 12.0 * n, roof);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv, "study_bias_act [version 1..3] [--validate]");
  if (args.validate) {
    run(args, {2, 5, 37});  // inner not a multiple of the block: the tails
    run(args, {3, 16, 64});
  } else {
    run(args, {32, 512, 32 * 32});  // a StyleGAN2 layer: [32, 512, 32, 32]
  }
  return finish();
}
