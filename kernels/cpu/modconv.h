// StyleGAN2's modulated convolution on the CPU: the per-sample weights in one pass.
// Implementation: kernels/cpu/modconv.cpp.
//
// Formula (the "fused" grouped path of engine/ops/modulated_conv.cpp):
//   w'[n,o,i,k]  = w[o,i,k] * s[n,i]                              (modulation)
//   dcoefs[n,o]  = 1 / sqrt(sum_{i,k} w'[n,o,i,k]^2 + eps)         (demodulation; 1 without)
//   wd[n,o,i,k]  = w'[n,o,i,k] * dcoefs[n,o]
// k runs over the kh * kw taps. The engine then runs wd as one grouped conv2d (groups = N,
// the batch folded into the channels: kernels/cpu/conv.h).
//
// Layout: w [O, C, K] (K = kh * kw), s [N, C], wd [N, O, C, K], dcoefs [N, O] (may be null).
//
// Variant: sum_k w[o,i,k]^2 once per (o, i) (in double, shared by all samples), then one
// task per (n, o), threads over them: dcoefs[n,o] from those sums and s[n]^2 (C multiply-adds),
// and the row w[o] written once, scaled by s[n, i] * dcoefs[n,o].
// The composite it replaces (mul, square, sum, add, rsqrt, mul: six kernels and five
// [N, O, C, K] tensors) read and wrote the per-sample weights about ten times.
//
// Benchmark: build/bench_cpu_conv (rows modconv_fused_*, bench/run_cpu_bench.sh next to
// PyTorch); tests: tests/test_cpu_kernels.cpp against the formula in f64, and every
// modulated_conv2d entry of the op table (fused, no resampling) through the engine.
#pragma once
#include <cstdint>

namespace sg::kernels::cpu {

template <class T>
void modconv_weights(const T* w, const T* s, T* wd, T* dcoefs, int64_t N, int64_t O, int64_t C, int64_t K, double eps,
                     bool demodulate);

}  // namespace sg::kernels::cpu
