// One whole R1 and one whole path-length regularization step, device-agnostic, for the CUDA
// tests ("cuda: R1 step", "cuda: path-length step", the allocator's hot-path test).
//
// The networks are those of the PyTorch-oracle tests (tests/test_oracle.cpp,
// tests/oracle/make_fixtures.py: case_r1, case_path_length), a little larger and with an up-2
// layer in G, so the CUDA kernels see several blocks and StyleGAN2's resampling:
//   D(x)  = linear(flatten(act(conv 3x3 s2 (act(conv 3x3 (x) + b1)) + b2)), w3, b3)
//           x [4, 3, 16, 16], 16 channels; act = lrelu(0.2) * sqrt 2 (bias_act, or composite)
//   G(z)  = ws = lrelu(linear(z)) * sqrt 2 (a one-layer mapping), then
//           modconv 3x3 demod (const 8 x 4 x 4) -> act -> modconv 3x3 up 2 demod -> act ->
//           modconv 1x1 (toRGB, no demod); img [4, 3, 8, 8]; fused or modulate-activations
// A step: the loss, its gradient with respect to every parameter (Tensor::backward), one
// Adam update (StyleGAN2's defaults: lr 0.002, beta1 0, beta2 0.99, eps 1e-8):
//   R1:  loss = mean(softplus(-D(x))) + gamma/2 * mean_n |dD(x_n)/dx_n|^2,  gamma = 1
//   PL:  pl_noise = randn(img) / sqrt(H W) (Philox, drawn on the device);
//        pl_grads = d sum(img * pl_noise) / d ws;  pl_lengths = |pl_grads| per sample;
//        pl_mean <- lerp(pl_mean, mean(pl_lengths), 0.01);
//        loss = pl_weight * mean((pl_lengths - pl_mean)^2),  pl_weight = 2
// The inner gradients run under NoWeightGradientsGuard and create_graph = true, as in training.
#pragma once
#include <cstdint>

#include "cuda_test_util.h"
#include "engine/optim.h"

namespace sgtest::cuda {

struct RegNet {
  Named params;  // leaves requiring grad
  Named inputs;  // "x" (R1) or "z" (PL): not trained
};

// f64, CPU, drawn from Philox(seed).
RegNet make_r1_net(uint64_t seed);
RegNet make_pl_net(uint64_t seed);
// An f32 copy on device() (fresh leaves).
RegNet to_dut(const RegNet& n);

struct StepRecord {
  Named values;  // intermediate results (logits, r1_grads, img, pl_grads, ..., loss)
  Named grads;   // each parameter's .grad after backward (undefined: none)
  Named deltas;  // each parameter's change in the Adam update
  Named params;  // each parameter after the update
};

StepRecord r1_step(RegNet& net, sg::Adam& opt, bool use_bias_act);
// pl_mean: a 0-dim tensor (dtype and device of the net), updated.
StepRecord pl_step(RegNet& net, sg::Adam& opt, bool use_bias_act, bool fused, sg::Tensor& pl_mean, uint64_t noise_seed);

// CHECKs every entry of `dut` against `ref` (SG_DEVICE_CHECK, 1e-4), naming the entries; the
// Adam update (deltas) to 1e-3 of its size plus one f32 ulp of the parameter (see there).
void check_record(const StepRecord& dut, const StepRecord& ref);

}  // namespace sgtest::cuda
