// Thin 1x1 convolutions on CUDA: toRGB (at most 4 output channels) and fromRGB (at most 4 input
// channels), where a GEMM tile of 64 or 128 rows would leave nearly all of its rows empty.
// Implementation: kernels/cuda/conv_thin.cu. conv.h's conv2d_forward and
// conv_transpose2d_forward take it, whatever the ConvMath, for 1x1 kernels with stride 1, no
// padding, groups 1 and no fusion, when one side has at most kThinChannels channels.
//
//   y[n, o, p] = sum_{c < C} w[o, c] * x[n, c, p]         (conv2d: w [O, C, 1, 1])
//   y[n, o, p] = sum_{c < C} w[c, o] * x[n, c, p]         (conv_transpose2d: w [C, O, 1, 1])
// One thread per (n, p): with O thin, it accumulates the O outputs over the C inputs (x read
// once, coalesced across threads); with C thin, it holds the C inputs in registers and writes
// each of the O outputs (coalesced). f32 (or f64) arithmetic: no tensor cores, so the result is
// exact f32 whatever the precision asked for. Memory-bound: x and y are each touched once.
//
// The weight gradient of the same convs (conv.h's conv2d_weight_grad takes it likewise):
//   dw[o, c] = sum_{n, p} dy[n, o, p] * x[n, c, p]
// a reduction over N*HW pixels for each of the (at most 4) x (wide) channel pairs. Call the side
// with at most 4 channels thin (dy for toRGB, x for fromRGB) and the other wide. A block takes 4
// wide channels and a slice of the pixels; each thread accumulates its pixels' 4 x 4 products
// (wide read once, coalesced; thin re-read by each block, from L2), then the block sums its
// 256 threads in a fixed tree. Where the wide channels give too few blocks to fill the GPU
// (toRGB's 3 x 512 outputs: 128 blocks), the pixels are split into S slices whose partial sums
// go to a workspace [S, wide, thin] and a second kernel adds them in slice order: deterministic.
#pragma once
#include <cstdint>

namespace sg::kernels::cuda {

constexpr int64_t kThinChannels = 4;

// x [N, C, HW], y [N, O, HW]; w as above (transposed_weight: [C, O]).
template <class T>
void conv1x1_thin(const T* x, const T* w, T* y, int64_t N, int64_t C, int64_t O, int64_t HW, bool transposed_weight);

// Elements of T of workspace conv1x1_thin_wgrad needs (0: none, pass nullptr).
int64_t conv1x1_thin_wgrad_workspace(int64_t N, int64_t C, int64_t O, int64_t HW);
// dy [N, O, HW], x [N, C, HW] -> dw [O, C]; C or O at most kThinChannels.
template <class T>
void conv1x1_thin_wgrad(const T* dy, const T* x, T* dw, T* workspace, int64_t N, int64_t C, int64_t O, int64_t HW);

}  // namespace sg::kernels::cuda
