// The convolution family's parameters, shared by the CPU kernels (kernels/cpu/conv.h) and the
// CUDA kernels (kernels/cuda/conv.h): conv2d_forward, conv_transpose2d_forward and
// conv2d_weight_grad all take one Conv2dParams.
//
// Output sizes (the kernels assume them; the engine checks them):
//   conv2d and its weight gradient: Ho = (H + 2*py - kh) / sy + 1, Wo likewise.
//   conv_transpose2d:               Ho = (H - 1)*sy - 2*py + kh + opy (0 <= opy < sy), Wo likewise.
#pragma once
#include <cstdint>

namespace sg::kernels {

struct Conv2dParams {
  int64_t N = 1, Cin = 1, H = 1, W = 1;  // the input x [N, Cin, H, W]
  int64_t Cout = 1;                      // output channels
  int64_t kh = 1, kw = 1;                // kernel size
  int64_t sy = 1, sx = 1;                // stride
  int64_t py = 0, px = 0;                // zero padding
  int64_t opy = 0, opx = 0;              // output_padding (conv_transpose2d only)
  int64_t groups = 1;
};

}  // namespace sg::kernels
