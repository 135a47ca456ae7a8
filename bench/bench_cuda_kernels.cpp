// CUDA kernel benchmark over StyleGAN2 layer shapes (batch 4..32, channels 64..512,
// resolution 8..256), through the engine's ops on CUDA tensors, f32, forward only.
//
// The twin of bench/torch_cuda_kernels.py, which reads this program's case list
// (`--list`) and times the same shapes in PyTorch; bench/run_cuda_bench.sh runs both on the
// same GPU and prints the ratio torch_ms / stylegrad_ms.
//
// Ops and variants:
//   conv2d             3x3 pad 1 (and stride 2)  fma | tf32 | bf16   (sg::set_cuda_math)
//   conv_transpose2d   3x3 stride 2 (G's up)     fma | tf32 | bf16
//   conv2d_weight_grad 3x3 pad 1                 fma | tf32 | bf16
//   modconv            3x3 demod pad 1 (and up 2) fused (grouped, one kernel) | act
//                      (modulate-activations path), each in fma, tf32 and bf16 (fused_tf32,
//                      act_bf16, ...: the suffix is the precision)
//   torgb              1x1 conv to 3 channels (toRGB): fwd (conv2d) | wgrad (conv2d_weight_grad);
//                      memory-bound (kernels/cuda/conv_thin.h), f32 whatever the math
//   upfirdn2d          [1,3,3,1] up2 (upsample2d) | down2 (downsample2d)
//   bias_act           lrelu, gain sqrt 2, bias
//   add                same-shape elementwise
//   adam               sg::Adam::step over a StyleGAN2-256-G-sized parameter set (~30M)
// Protocol: `warmup` untimed calls, then `reps` timed calls; before each timed call a buffer of
// 2 x L2 bytes is written (cudaMemsetAsync) so no input is served from L2; the time is
// cudaEventElapsedTime between events recorded on the engine's stream around the call (it
// includes the host's launch overhead whenever the GPU waits for it). Median (and min).
// Rooflines measured in the same run: cuBLAS SGEMM 8192^3 (CUBLAS_COMPUTE_32F) for fma and
// modconv, the same with CUBLAS_COMPUTE_32F_FAST_TF32 for tf32, bf16 inputs with f32 output
// and accumulation (CUDA_R_16BF, CUBLAS_COMPUTE_32F) for bf16, a 1 GiB device-to-device
// copy (GB/s = 2 x bytes / t) for the memory-bound ops.
// Allocator: the device mallocs during the timed calls (0 when the caching allocator serves
// the hot path), the case's peak allocated and the cache size.
//
// Usage: build/bench_cuda_kernels [--quick] [--list] [--filter SUBSTRING]
// Output (one line per case, key=value, no spaces in values but the trailing msg=):
//   case=<name> impl=stylegrad op=<op> variant=<v> shape=<NxCxHxW> median_ms=<> min_ms=<>
//     reps=<> gflop=<>|gbytes=<> tflops=<>|gbs=<> roof=<sgemm_fp32|sgemm_tf32|gemm_bf16|d2d_copy>
//     pct_roof=<> tf32_diff=|bf16_diff=<max rel diff against fma> mallocs=<> peak_mb=<>
//     cached_mb=<> status=ok          (or status=error msg=<what it threw>)
// Exit status: 0 when every case ran; 1 when a case threw; 0 with "no GPU: nothing measured"
// when there is no CUDA device.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/cuda/runtime.h"

namespace {

using namespace sg;

#define BENCH_CUDA(call)                                                                     \
  do {                                                                                       \
    cudaError_t e_ = (call);                                                                 \
    if (e_ != cudaSuccess) throw Error(str("bench: ", #call, ": ", cudaGetErrorString(e_))); \
  } while (0)
#define BENCH_CUBLAS(call)                                                                            \
  do {                                                                                                \
    cublasStatus_t s_ = (call);                                                                       \
    if (s_ != CUBLAS_STATUS_SUCCESS) throw Error(str("bench: ", #call, ": cuBLAS status ", (int)s_)); \
  } while (0)

cudaStream_t engine_stream() { return static_cast<cudaStream_t>(kernels::cuda::stream()); }

// CUDA-event timing on the engine's stream, with an L2 flush before every timed call.
class EventTimer {
 public:
  EventTimer() {
    int dev = 0;
    BENCH_CUDA(cudaGetDevice(&dev));
    BENCH_CUDA(cudaDeviceGetAttribute(&l2_bytes_, cudaDevAttrL2CacheSize, dev));
    flush_bytes_ = std::max<size_t>(size_t(2) * (size_t)l2_bytes_, size_t(64) << 20);
    BENCH_CUDA(cudaMalloc(&flush_, flush_bytes_));
    BENCH_CUDA(cudaEventCreate(&start_));
    BENCH_CUDA(cudaEventCreate(&stop_));
  }
  ~EventTimer() {
    cudaFree(flush_);
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  int l2_bytes() const { return l2_bytes_; }
  size_t flush_bytes() const { return flush_bytes_; }

  // Milliseconds of each of `reps` calls of f, after `warmup` untimed calls.
  std::vector<double> time(const std::function<void()>& f, int warmup, int reps) {
    cudaStream_t s = engine_stream();
    for (int i = 0; i < warmup; ++i) f();
    BENCH_CUDA(cudaStreamSynchronize(s));
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
      BENCH_CUDA(cudaMemsetAsync(flush_, i & 0xff, flush_bytes_, s));
      BENCH_CUDA(cudaEventRecord(start_, s));
      f();
      BENCH_CUDA(cudaEventRecord(stop_, s));
      BENCH_CUDA(cudaEventSynchronize(stop_));
      float ms = 0;
      BENCH_CUDA(cudaEventElapsedTime(&ms, start_, stop_));
      t.push_back(ms);
    }
    return t;
  }

 private:
  int l2_bytes_ = 0;
  size_t flush_bytes_ = 0;
  void* flush_ = nullptr;
  cudaEvent_t start_{}, stop_{};
};

double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  const size_t n = t.size();
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

struct Rooflines {
  double sgemm_fp32_tflops = 0, sgemm_tf32_tflops = 0, gemm_bf16_tflops = 0, d2d_copy_gbs = 0;
};

Rooflines measure_rooflines(EventTimer& timer, int reps) {
  Rooflines r;
  const int64_t n = 8192;
  float *a = nullptr, *b = nullptr, *c = nullptr;
  BENCH_CUDA(cudaMalloc(&a, n * n * 4));
  BENCH_CUDA(cudaMalloc(&b, n * n * 4));
  BENCH_CUDA(cudaMalloc(&c, n * n * 4));
  BENCH_CUDA(cudaMemsetAsync(a, 0x3c, n * n * 4, engine_stream()));  // ~0.01: finite, nonzero
  BENCH_CUDA(cudaMemsetAsync(b, 0x3c, n * n * 4, engine_stream()));
  cublasHandle_t h;
  BENCH_CUBLAS(cublasCreate(&h));
  BENCH_CUBLAS(cublasSetStream(h, engine_stream()));
  const float one = 1, zero = 0;
  for (cublasComputeType_t ct : {CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32}) {
    auto gemm = [&] {
      BENCH_CUBLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)n, (int)n, (int)n, &one, a, CUDA_R_32F, (int)n, b,
                                CUDA_R_32F, (int)n, &zero, c, CUDA_R_32F, (int)n, ct, CUBLAS_GEMM_DEFAULT));
    };
    const double ms = median(timer.time(gemm, 2, reps));
    const double tflops = 2.0 * n * n * n / (ms * 1e-3) * 1e-12;
    (ct == CUBLAS_COMPUTE_32F ? r.sgemm_fp32_tflops : r.sgemm_tf32_tflops) = tflops;
  }
  {  // bf16 inputs (the same buffers read as bf16: 0x3c3c, about 0.011), f32 output and accumulation
    auto gemm = [&] {
      BENCH_CUBLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)n, (int)n, (int)n, &one, a, CUDA_R_16BF, (int)n, b,
                                CUDA_R_16BF, (int)n, &zero, c, CUDA_R_32F, (int)n, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
    };
    const double ms = median(timer.time(gemm, 2, reps));
    r.gemm_bf16_tflops = 2.0 * n * n * n / (ms * 1e-3) * 1e-12;
  }
  cublasDestroy(h);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  const size_t bytes = size_t(1) << 30;
  void *src = nullptr, *dst = nullptr;
  BENCH_CUDA(cudaMalloc(&src, bytes));
  BENCH_CUDA(cudaMalloc(&dst, bytes));
  BENCH_CUDA(cudaMemsetAsync(src, 1, bytes, engine_stream()));
  const double ms = median(timer.time(
      [&] { BENCH_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, engine_stream())); }, 2, reps));
  r.d2d_copy_gbs = 2.0 * bytes / (ms * 1e-3) * 1e-9;
  cudaFree(src);
  cudaFree(dst);
  return r;
}

// ---- cases -------------------------------------------------------------------------------
// The ceiling of a conv variant: fma against cuBLAS f32, tf32 against cuBLAS TF32, bf16
// against cuBLAS bf16 (f32 accumulation), all measured in this run.
// The precision a variant runs in: tf32 or bf16 (the variant itself, or a modconv variant's
// suffix: act_bf16), else f32.
std::string precision_of(const std::string& var) {
  const size_t u = var.rfind('_');
  const std::string p = u == std::string::npos ? var : var.substr(u + 1);
  return p == "tf32" || p == "bf16" ? p : "f32";
}
std::string roof_of(const std::string& var) {
  const std::string p = precision_of(var);
  return p == "tf32" ? "sgemm_tf32" : p == "bf16" ? "gemm_bf16" : "sgemm_fp32";
}
struct Case {
  std::string name, op, variant;
  int64_t N = 1, C = 1, H = 1, W = 1;  // the input's shape
  int64_t stride = 1;                  // conv2d
  int64_t up = 1;                      // modconv
  double gflop = 0, gbytes = 0;        // work: compute-bound ops gflop, memory-bound gbytes
  std::string roof;                    // sgemm_fp32 | sgemm_tf32 | gemm_bf16 | d2d_copy
};

// adam: N groups of [C, H, 3, 3], [C, H], [C] parameters.
int64_t adam_params(const Case& c) { return c.N * (c.C * c.H * 9 + c.C * c.H + c.C); }
std::string shape_of(const Case& c) {
  return c.op == "adam" ? str("params_", adam_params(c)) : str(c.N, "x", c.C, "x", c.H, "x", c.W);
}

Case make_case(std::string name, std::string op, std::string variant, int64_t N, int64_t C, int64_t H, int64_t W,
               int64_t stride = 1) {
  Case c;
  c.name = std::move(name), c.op = std::move(op), c.variant = std::move(variant);
  c.N = N, c.C = C, c.H = H, c.W = W, c.stride = stride;
  return c;
}

std::vector<Case> cases() {
  std::vector<Case> v;
  auto add_case = [&](Case c) { v.push_back(std::move(c)); };
  auto nm = [](const std::string& op, const std::string& variant, int64_t N, int64_t C, int64_t H) {
    return str(op, "_", variant, "_n", N, "_c", C, "_r", H);
  };
  const int64_t k = 3;
  // conv2d 3x3 pad 1 over the synthesis / discriminator resolutions
  for (auto [N, C, H, s] : std::vector<std::array<int64_t, 4>>{
           {32, 512, 8, 1}, {16, 512, 32, 1}, {8, 256, 64, 1}, {4, 128, 128, 1}, {4, 64, 256, 1}, {8, 256, 64, 2}})
    for (const char* var : {"fma", "tf32", "bf16"}) {
      Case c = make_case(nm(s == 1 ? "conv2d" : "conv2d_s2", var, N, C, H), "conv2d", var, N, C, H, H, s);
      const int64_t Ho = (H + 2 - k) / s + 1;
      c.gflop = 2.0 * N * C * C * k * k * Ho * Ho * 1e-9;
      c.roof = roof_of(var);
      add_case(c);
    }
  // conv_transpose2d 3x3 stride 2 (the up layers of G before the FIR)
  for (auto [N, C, H] : std::vector<std::array<int64_t, 3>>{{16, 512, 16}, {8, 256, 32}, {4, 128, 64}})
    for (const char* var : {"fma", "tf32", "bf16"}) {
      Case c = make_case(nm("conv_transpose2d", var, N, C, H), "conv_transpose2d", var, N, C, H, H, 2);
      c.gflop = 2.0 * N * C * C * k * k * H * H * 1e-9;
      c.roof = roof_of(var);
      add_case(c);
    }
  // conv2d_weight_grad 3x3 pad 1
  for (auto [N, C, H] : std::vector<std::array<int64_t, 3>>{{16, 512, 32}, {8, 256, 64}, {4, 64, 256}})
    for (const char* var : {"fma", "tf32", "bf16"}) {
      Case c = make_case(nm("conv2d_weight_grad", var, N, C, H), "conv2d_weight_grad", var, N, C, H, H);
      c.gflop = 2.0 * N * C * C * k * k * H * H * 1e-9;
      c.roof = roof_of(var);
      add_case(c);
    }
  // modulated conv, 3x3 demodulated: fused grouped path vs modulate-activations path
  for (auto [N, C, H, up] : std::vector<std::array<int64_t, 4>>{
           {16, 512, 8, 1}, {16, 512, 32, 1}, {8, 256, 64, 1}, {4, 128, 128, 1}, {8, 512, 16, 2}})
    for (const char* var : {"fused", "act", "fused_tf32", "act_tf32", "fused_bf16", "act_bf16"}) {
      Case c = make_case(nm(up == 1 ? "modconv" : "modconv_up2", var, N, C, H), "modconv", var, N, C, H, H);
      c.up = up;
      c.gflop = 2.0 * N * C * C * k * k * H * H * 1e-9;  // the convolution (per input pixel for up 2)
      c.roof = roof_of(var);
      add_case(c);
    }
  // toRGB: 1x1 to 3 channels, forward and weight gradient (reads x and writes / reads the
  // 3-channel y / dy once)
  for (auto [N, C, H] : std::vector<std::array<int64_t, 3>>{{32, 512, 32}, {32, 64, 256}})
    for (const char* var : {"fwd", "wgrad"}) {
      Case c = make_case(nm("torgb", var, N, C, H), "torgb", var, N, C, H, H);
      c.gbytes = 4.0 * N * (C + 3) * H * H * 1e-9;
      c.roof = "d2d_copy";
      add_case(c);
    }
  // upfirdn2d with the [1,3,3,1] filter: up 2 and down 2
  for (auto [N, C, H] : std::vector<std::array<int64_t, 3>>{{16, 512, 32}, {8, 128, 128}, {4, 64, 128}}) {
    Case u = make_case(nm("upfirdn2d", "up2", N, C, H), "upfirdn2d", "up2", N, C, H, H);
    u.gbytes = 4.0 * N * C * H * H * (1 + 4) * 1e-9;
    u.roof = "d2d_copy";
    add_case(u);
    Case d = make_case(nm("upfirdn2d", "down2", N, C, 2 * H), "upfirdn2d", "down2", N, C, 2 * H, 2 * H);
    d.gbytes = 4.0 * N * C * (2 * H) * (2 * H) * (1 + 0.25) * 1e-9;
    d.roof = "d2d_copy";
    add_case(d);
  }
  // bias_act and add
  for (auto [N, C, H] : std::vector<std::array<int64_t, 3>>{{16, 512, 32}, {4, 64, 256}}) {
    Case b = make_case(nm("bias_act", "lrelu", N, C, H), "bias_act", "lrelu", N, C, H, H);
    b.gbytes = 4.0 * (2.0 * N * C * H * H + C) * 1e-9;
    b.roof = "d2d_copy";
    add_case(b);
    Case a = make_case(nm("add", "same_shape", N, C, H), "add", "same_shape", N, C, H, H);
    a.gbytes = 4.0 * 3.0 * N * C * H * H * 1e-9;
    a.roof = "d2d_copy";
    add_case(a);
  }
  // Adam over a StyleGAN2-256 G-sized parameter set: 13 x [512,512,3,3] + 13 x [512,512] + biases
  {
    Case a = make_case("adam_step_g256_31m", "adam", "step", 13, 512, 512, 1);
    a.gbytes = 4.0 * 7.0 * (double)adam_params(a) * 1e-9;  // read p, g, m, v; write p, m, v
    a.roof = "d2d_copy";
    add_case(a);
  }
  return v;
}

// The call to time, with its inputs made once. `output` gives the result for the TF32 check.
struct Prepared {
  std::function<void()> run;
  std::function<Tensor()> output;
};

Prepared prepare(const Case& c, Rng& g) {
  const Device cu = Device::cuda();
  auto rnd = [&](const Shape& s, double scale = 1.0) { return mul(randn(s, g, DType::f32, cu), scale); };
  const int64_t N = c.N, C = c.C, H = c.H;
  Prepared p;
  if (c.op == "conv2d") {
    Tensor x = rnd({N, C, H, H}), w = rnd({C, C, 3, 3}, 1 / std::sqrt(9.0 * C));
    const int64_t s = c.stride;
    p.output = [=] { return conv2d(x, w, {s, s}, {1, 1}); };
  } else if (c.op == "conv_transpose2d") {
    Tensor x = rnd({N, C, H, H}), w = rnd({C, C, 3, 3}, 1 / std::sqrt(9.0 * C));
    p.output = [=] { return conv_transpose2d(x, w, {2, 2}, {0, 0}); };
  } else if (c.op == "conv2d_weight_grad") {
    Tensor x = rnd({N, C, H, H}), dy = rnd({N, C, H, H});
    p.output = [=] { return conv2d_weight_grad(dy, x, {C, C, 3, 3}, {1, 1}, {1, 1}, 1); };
  } else if (c.op == "modconv") {
    Tensor x = rnd({N, C, H, H}), w = rnd({C, C, 3, 3});
    Tensor styles = add(rnd({N, C}, 0.2), 1.0);
    ModConv mp;
    mp.demodulate = true;
    mp.padding = 1;
    mp.up = c.up;
    mp.fused = c.variant.rfind("fused", 0) == 0;
    mp.resample_filter = fir_filter({1, 3, 3, 1}, DType::f32).to(cu);
    p.output = [=] { return modulated_conv2d(x, w, styles, mp); };
  } else if (c.op == "torgb") {
    Tensor x = rnd({N, C, H, H}), w = rnd({3, C, 1, 1}, 1 / std::sqrt(double(C))), dy = rnd({N, 3, H, H});
    if (c.variant == "fwd")
      p.output = [=] { return conv2d(x, w); };
    else
      p.output = [=] { return conv2d_weight_grad(dy, x, {3, C, 1, 1}, {1, 1}, {0, 0}, 1); };
  } else if (c.op == "upfirdn2d") {
    Tensor x = rnd({N, C, H, H}), f = fir_filter({1, 3, 3, 1}, DType::f32).to(cu);
    const bool up = c.variant == "up2";
    p.output = [=] { return up ? upsample2d(x, f, 2) : downsample2d(x, f, 2); };
  } else if (c.op == "bias_act") {
    Tensor x = rnd({N, C, H, H}), b = rnd({C});
    p.output = [=] { return bias_act(x, b, Act::lrelu, 0.2, std::sqrt(2.0)); };
  } else if (c.op == "add") {
    Tensor a = rnd({N, C, H, H}), b = rnd({N, C, H, H});
    p.output = [=] { return add(a, b); };
  } else if (c.op == "adam") {
    std::vector<std::pair<std::string, Tensor>> params;
    for (int64_t i = 0; i < N; ++i) {
      for (const Shape& s : {Shape{C, H, 3, 3}, Shape{C, H}, Shape{C}}) {
        Tensor t = rnd(s, 0.1).detach();
        t.set_requires_grad(true);
        t.set_grad(rnd(s, 0.01));
        params.emplace_back(str("p", params.size()), t);
      }
    }
    auto opt = std::make_shared<Adam>(params);
    p.run = [opt] { opt->step(); };
    p.output = [] { return Tensor(); };
    return p;
  } else {
    throw Error("bench: unknown op " + c.op);
  }
  auto out = p.output;
  p.run = [out] { Tensor y = out(); };
  return p;
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector(), y = b.to_vector();
  double m = 0, d = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    m = std::max(m, std::abs(y[i]));
    d = std::max(d, std::abs(x[i] - y[i]));
  }
  return d / std::max(m, 1e-30);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, list = false;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0)
      quick = true;
    else if (std::strcmp(argv[i], "--list") == 0)
      list = true;
    else if (std::strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
      filter = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--list] [--filter SUBSTRING]\n", argv[0]);
      return 2;
    }
  }
  std::vector<Case> all;
  for (const Case& c : cases())
    if (filter.empty() || c.name.find(filter) != std::string::npos) all.push_back(c);
  if (list) {  // the case list bench/torch_cuda_kernels.py reads; needs no GPU
    for (const Case& c : all)
      std::printf(
          "case=%s op=%s variant=%s N=%lld C=%lld H=%lld W=%lld stride=%lld up=%lld gflop=%.6g gbytes=%.6g roof=%s\n",
          c.name.c_str(), c.op.c_str(), c.variant.c_str(), (long long)c.N, (long long)c.C, (long long)c.H,
          (long long)c.W, (long long)c.stride, (long long)c.up, c.gflop, c.gbytes, c.roof.c_str());
    return 0;
  }
  if (!cuda_available()) {
    std::printf("#### no GPU: nothing measured (%s) ####\n", cuda_device_name().c_str());
    return 0;
  }
  const int warmup = quick ? 2 : 3, reps = quick ? 5 : 15;
  int failed = 0;
  try {
    EventTimer timer;
    set_cuda_tf32(false);
    const Rooflines roof = measure_rooflines(timer, quick ? 3 : 5);
    std::printf(
        "# stylegrad bench_cuda_kernels: device=\"%s\" l2_bytes=%d flush_bytes=%zu warmup=%d reps=%d (median)\n",
        cuda_device_name().c_str(), timer.l2_bytes(), timer.flush_bytes(), warmup, reps);
    std::printf("roofline sgemm_fp32_tflops=%.2f sgemm_tf32_tflops=%.2f gemm_bf16_tflops=%.2f d2d_copy_gbs=%.1f\n",
                roof.sgemm_fp32_tflops, roof.sgemm_tf32_tflops, roof.gemm_bf16_tflops, roof.d2d_copy_gbs);
    std::fflush(stdout);
    Rng g(1234);
    NoGradGuard no_grad;
    for (const Case& c : all) {
      std::printf("case=%s impl=stylegrad op=%s variant=%s shape=%s ", c.name.c_str(), c.op.c_str(), c.variant.c_str(),
                  shape_of(c).c_str());
      try {
        Prepared p = prepare(c, g);
        const std::string prec = precision_of(c.variant);
        const CudaMath math = prec == "tf32" ? CudaMath::tf32 : prec == "bf16" ? CudaMath::bf16 : CudaMath::f32;
        double low_diff = -1;
        if (math != CudaMath::f32) {  // does the setting change this op's numbers at all?
          set_cuda_math(CudaMath::f32);
          Tensor ref = p.output();
          set_cuda_math(math);
          low_diff = max_rel_diff(p.output(), ref);
        }
        set_cuda_math(math);
        for (int i = 0; i < warmup; ++i) p.run();
        cuda_synchronize();
        cuda_reset_peak();
        const CudaMemoryStats s0 = cuda_memory_stats();
        const std::vector<double> t = timer.time(p.run, 0, reps);
        const CudaMemoryStats s1 = cuda_memory_stats();
        set_cuda_math(CudaMath::f32);
        const double ms = median(t), mn = *std::min_element(t.begin(), t.end());
        const double r = c.roof == "sgemm_tf32"   ? roof.sgemm_tf32_tflops
                         : c.roof == "sgemm_fp32" ? roof.sgemm_fp32_tflops
                         : c.roof == "gemm_bf16"  ? roof.gemm_bf16_tflops
                                                  : roof.d2d_copy_gbs;
        std::printf("median_ms=%.4f min_ms=%.4f reps=%d ", ms, mn, reps);
        if (c.gflop > 0) {
          const double tflops = c.gflop / ms;  // GFLOP / ms = TFLOP/s
          std::printf("gflop=%.4f tflops=%.2f ", c.gflop, tflops);
          std::printf("roof=%s pct_roof=%.1f ", c.roof.c_str(), 100.0 * tflops / r);
        } else {
          const double gbs = c.gbytes / ms * 1e3;
          std::printf("gbytes=%.4f gbs=%.1f ", c.gbytes, gbs);
          std::printf("roof=%s pct_roof=%.1f ", c.roof.c_str(), 100.0 * gbs / r);
        }
        if (math != CudaMath::f32) std::printf("%s_diff=%.3g ", prec.c_str(), low_diff);
        std::printf("mallocs=%lld peak_mb=%.1f cached_mb=%.1f status=ok\n",
                    (long long)(s1.num_device_mallocs - s0.num_device_mallocs), s1.peak_allocated / 1048576.0,
                    s1.cached / 1048576.0);
      } catch (const std::exception& e) {
        set_cuda_math(CudaMath::f32);
        ++failed;
        std::string msg = e.what();
        std::replace(msg.begin(), msg.end(), '\n', ' ');
        std::printf("status=error msg=%s\n", msg.c_str());
      }
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::printf("# FATAL: %s\n", e.what());
    return 1;
  }
  if (failed) std::printf("# %d case(s) FAILED\n", failed);
  return failed ? 1 : 0;
}
