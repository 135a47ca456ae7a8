// The tensor-core convolution: a multi-stage implicit GEMM on NHWC operands (mma.sync, ldmatrix,
// cp.async). Implementation: kernels/cuda/conv_tc.cu. The public entry points are conv.h's
// conv2d_forward, conv_transpose2d_forward and conv2d_weight_grad (and modconv.h's
// modconv_forward): for ConvMath::tf32 and ConvMath::bf16 they take this path when the caller
// passes a workspace sized by their *_workspace function and the problem is one it takes
// (conv.h says which). Study and benchmark: study/conv.cu versions 5 and 6; on a GPU,
// bench/run_cuda_bench.sh (the tf32 / bf16 rows against cuDNN).
//
// Formula (cross-correlation, N images of C channels, O output channels, shared weight):
//   y[n,o,oy,ox] = epilogue( sum_{ty,tx,c} w'[o,ty,tx,c] * x'[n, oy*sy-py+ty, ox*sx-px+tx, c] )
//   x'[n,iy,ix,c] = x[n,c,iy,ix] * x_scale[n,c]   (NHWC, rounded to the format; zero outside)
//   w'[o,ty,tx,c] = w[o,c,ty,tx] * w_scale[c]     (conv_transpose2d: below)
//   epilogue(v) = clamp(act(v * row_scale[n*row_stride + o] + noise[n, pixel] + bias[o]) * gain)
// A GEMM with M = O (rows: output channels), N = N*Ho*Wo (columns: output pixels), K =
// kh*kw*Cp, K ordered (tap, channel) with C padded to Cp (a multiple of 16 bytes of the format):
// every 16-byte chunk of a K row is 8 bf16 / 4 TF32 channels of one tap, contiguous in x' and w',
// so the loader moves 16-byte chunks with cp.async and walks K with counters (no division in
// the main loop).
//
// Variants: ConvMath::bf16 (m16n8k16, x' and w' stored in bf16) and ConvMath::tf32 (m16n8k8,
// stored as f32 rounded to TF32); f32 accumulators either way. Split-K (a second kernel sums the
// splits in order and applies the epilogue) when the tile grid would leave the GPU's SMs idle.
#pragma once
#include <cstdint>

#include "kernels/cuda/conv.h"

namespace sg::kernels::cuda {

struct TcConv {
  int64_t N = 0, C = 0, H = 0, W = 0, O = 0, kh = 1, kw = 1, sy = 1, sx = 1, py = 0, px = 0;
  const float* x_scale = nullptr;    // [N, C] or null
  const float* w_scale = nullptr;    // [C] or null
  const float* row_scale = nullptr;  // row_scale[n*row_stride + o] or null
  int64_t row_stride = 0;
  const float* noise = nullptr;                    // [N, Ho*Wo] or null
  const float* bias = nullptr;                     // [O] or null
  int act = 0;                                     // 0 linear, 1 relu, 2 lrelu(alpha)
  float alpha = 0.2f, gain = 1.0f, clamp = -1.0f;  // clamp < 0: none
  int64_t Ho() const { return (H + 2 * py - kh) / sy + 1; }
  int64_t Wo() const { return (W + 2 * px - kw) / sx + 1; }
};

// Bytes of device workspace conv_tc_forward needs (x', w' and the split-K partial sums).
int64_t conv_tc_workspace_bytes(const TcConv& c, ConvMath math);

// y [N, O, Ho, Wo] (NCHW) from x [N, C, H, W] and w [O, C, kh, kw]; math is tf32 or bf16;
// workspace: at least conv_tc_workspace_bytes bytes, 256-byte aligned. Launch names:
// "conv_tc_pack_x <m>", "conv_tc_pack_w <m>", "conv_tc_kernel <m>" and, split,
// "conv_tc_splitk_epilogue".
void conv_tc_forward(const TcConv& c, const float* x, const float* w, float* y, void* workspace, ConvMath math);

// conv_transpose2d (groups 1) as sy*sx GEMMs, one per output phase (oy mod sy, ox mod sx):
// within a phase only every sy-th tap is live, and flipped they form a stride-1 conv of x
// (kernels/cuda/conv.h's phase split, here with the weight packed per phase: w [C, O, kh, kw]
// -> w' [O, Ty, Tx, Cp]); x' is packed once for all phases; each phase's epilogue writes its
// pixels of y. Applies when every phase has taps (kh >= sy, kw >= sx) and the sizes fit.
// x_scale and row_scale as for TcConv (the fused modulated conv's up layers: styles applied as x
// is packed, demodulation in every phase's epilogue).
struct TcConvTranspose {
  int64_t N = 0, C = 0, H = 0, W = 0, O = 0, kh = 1, kw = 1, sy = 1, sx = 1, py = 0, px = 0, opy = 0, opx = 0;
  const float* x_scale = nullptr;    // [N, C] or null
  const float* row_scale = nullptr;  // row_scale[n*row_stride + o] or null
  int64_t row_stride = 0;
  int64_t Ho() const { return (H - 1) * sy - 2 * py + kh + opy; }
  int64_t Wo() const { return (W - 1) * sx - 2 * px + kw + opx; }
};
bool conv_tc_transpose_applies(const TcConvTranspose& c, ConvMath math);
int64_t conv_tc_transpose_workspace_bytes(const TcConvTranspose& c, ConvMath math);
void conv_tc_transpose_forward(const TcConvTranspose& c, const float* x, const float* w, float* y, void* workspace,
                               ConvMath math);

// The weight gradient on the same machinery:
//   dw[o,c,ty,tx] = sum_{n,oy,ox} dy[n,o,oy,ox] * x'[n, oy*sy-py+ty, ox*sx-px+tx, c]
// a GEMM with M = O, N = kh*kw*Cp (columns (tap, channel)), K = N*Ho*Wo (output pixels): A is
// dy' (dy in the format, its own NCHW layout: consecutive pixels of one image per 16-byte chunk,
// hence Ho*Wo % 8 == 0), B is x' (NHWC, as the forward packs it) gathered per pixel into a
// [pixel][column] tile whose fragments are read transposed (bf16: ldmatrix .trans; TF32:
// scalar loads, as ldmatrix has no .trans for 32-bit elements); split-K over the pixels where
// the tile grid is small. Launch names: "conv_tc_pack_dy <m>", "conv_tc_pack_x <m>",
// "conv_tc_wgrad_kernel <m>" and, split, "conv_tc_wgrad_splitk".
struct TcWgrad {
  int64_t N = 0, C = 0, H = 0, W = 0, O = 0, kh = 1, kw = 1, sy = 1, sx = 1, py = 0, px = 0;
  int64_t Ho() const { return (H + 2 * py - kh) / sy + 1; }
  int64_t Wo() const { return (W + 2 * px - kw) / sx + 1; }
};
bool conv_tc_wgrad_applies(const TcWgrad& c, ConvMath math);  // tf32 / bf16, Ho*Wo % 8 == 0, sizes fit
int64_t conv_tc_wgrad_workspace_bytes(const TcWgrad& c, ConvMath math);
// dw [O, C, kh, kw] from dy [N, O, Ho, Wo] and x [N, C, H, W]; workspace as conv_tc_forward's.
void conv_tc_wgrad(const TcWgrad& c, const float* dy, const float* x, float* dw, void* workspace, ConvMath math);

}  // namespace sg::kernels::cuda
