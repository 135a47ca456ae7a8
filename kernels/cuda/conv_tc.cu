// The tensor-core convolution (formula, layout and variants: kernels/cuda/conv_tc.h).
//
// conv2d: three launches (four when split); conv_transpose2d: pack_x once, then pack_w, the
// GEMM (and the split pass) per output phase:
//   conv_tc_pack_x  x [N, C, H, W] f32 -> x' [N, H, W, Cp] in the format (x_scale applied),
//                   32 x 32 tiles transposed through shared memory (coalesced on both sides);
//   conv_tc_pack_w  w -> w' [O, kh*kw, Cp] in the format (w_scale applied; or a phase's taps of
//                   a transposed conv's weight, flipped: WMap);
//   conv_tc_kernel  the GEMM: a 128 x 128 tile of (output channel, output pixel) per block of
//                   256 threads = 8 warps as 2 (m) x 4 (n), each warp 64 x 32 = 4 x 4 mma tiles of
//                   16 x 8; K in tiles of 64 bytes (32 bf16 / 16 TF32), kStages = 3 tiles in
//                   flight through cp.async (48 KiB of shared memory); fragments read with
//                   ldmatrix.x4 from rows of 64 bytes whose 16-byte chunks are XOR-swizzled
//                   (chunk ^ (row / 2) % 4), so the 8 row addresses of each ldmatrix phase fall in
//                   8 different bank groups; the epilogue (or the split-K pass) writes NCHW.
//   conv_tc_splitk_epilogue  (splits > 1) sums the splits' partial tiles in order (deterministic)
//                   and applies the epilogue.
// The weight gradient (TF32, bf16): conv_tc_pack_dy, conv_tc_pack_x, conv_tc_wgrad_kernel on the
// same main loop with its B fragments read transposed, and conv_tc_wgrad_splitk (conv_tc.h).
//
// Benchmark: bench/run_cuda_bench.sh (build/bench_cuda_kernels, the bf16 and tf32 conv rows,
// next to cuDNN and the cuBLAS bf16 roofline of the same run), on a GPU.
#include <algorithm>
#include <string>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv_tc.h"
#include "kernels/cuda/mma_ptx.cuh"

namespace sg::kernels::cuda {

namespace {

constexpr int kBM = 128, kBN = 128, kRowBytes = 64, kStages = 3, kThreads = 256;
constexpr int kTileBytes = kBM * kRowBytes;  // one operand's tile of one stage (kBM == kBN)
constexpr int kStageBytes = 2 * kTileBytes;
constexpr int kSmemBytes = kStages * kStageBytes;  // 48 KiB: no opt-in needed
constexpr int64_t kTargetBlocks = 264;             // 2 blocks on each of an H100 / H200's 132 SMs
constexpr int64_t kInt32Max = 2147483647;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t align256(int64_t b) { return (b + 255) / 256 * 256; }

// The storage format of x' and w' and its mma.
template <ConvMath M>
struct Fmt;
template <>
struct Fmt<ConvMath::bf16> {
  using E = uint16_t;
  static constexpr int kChunk = 8;  // elements per 16 bytes
  __device__ static E from_float(float v) { return (E)(ptx::pack_bf16x2(v, 0.0f) & 0xffffu); }
  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    ptx::mma_m16n8k16_bf16(d, a, b);
  }
};
template <>
struct Fmt<ConvMath::tf32> {
  using E = uint32_t;
  static constexpr int kChunk = 4;
  __device__ static E from_float(float v) { return ptx::to_tf32(v); }
  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    ptx::mma_m16n8k8_tf32(d, a, b);
  }
};

int64_t elem_bytes(ConvMath m) { return m == ConvMath::bf16 ? 2 : 4; }
int64_t padded_channels(int64_t C, ConvMath m) {
  const int64_t chunk = 16 / elem_bytes(m);
  return ceil_div(C, chunk) * chunk;
}

struct TcParams {
  const void* xp;  // x' [N, H, W, Cp]
  const void* wp;  // w' [O, T, Cp]
  float* y;        // [N, O, Hy, Wy]
  float* part;     // [splits, O, NP] when splits > 1
  // The GEMM's output grid is Ho x Wo (NP = N*Ho*Wo columns); its pixel (qy, qx) is y's
  // (oy0 + osy*qy, ox0 + osx*qx) (a phase of a strided transposed conv; else Hy = Ho, os = 1).
  int N, Cp, H, W, O, Ho, Wo, kw, sy, sx, py, px, T, NP, ktiles, kt_per_split, splits;
  int Hy, Wy, osy, osx, oy0, ox0;
  int64_t K;  // T * Cp
  const float* row_scale;
  int64_t row_stride;
  const float* noise;
  const float* bias;
  int act, has_clamp;
  float alpha, gain, clamp;
};

// Byte offset of 16-byte chunk `chunk` (0..3) of row `row` in a swizzled tile.
__device__ __forceinline__ int swz(int row, int chunk) { return row * kRowBytes + ((chunk ^ ((row >> 1) & 3)) << 4); }

// Where GEMM pixel p (of the Ho x Wo grid) lands in an image of y.
__device__ __forceinline__ int y_offset(const TcParams& P, int p) {
  const int qy = p / P.Wo, qx = p - qy * P.Wo;
  return (P.oy0 + P.osy * qy) * P.Wy + P.ox0 + P.osx * qx;
}

// The epilogue of output (o, pixel n*Ho*Wo + p), written to y [N, O, Hy, Wy] at yoff = y_offset(p).
__device__ __forceinline__ void tc_finish(const TcParams& P, int o, int n, int p, int yoff, float v) {
  const int HW = P.Ho * P.Wo;
  if (P.row_scale) v *= P.row_scale[(int64_t)n * P.row_stride + o];
  if (P.noise) v += P.noise[(int64_t)n * HW + p];
  if (P.bias) v += P.bias[o];
  if (P.act == 1) v = v > 0.0f ? v : 0.0f;
  if (P.act == 2) v = v > 0.0f ? v : v * P.alpha;
  v *= P.gain;
  if (P.has_clamp) {
    v = v < -P.clamp ? -P.clamp : v;  // NaN passes through, as conv.cu's epilogue
    v = P.clamp < v ? P.clamp : v;
  }
  P.y[((int64_t)n * P.O + o) * P.Hy * P.Wy + yoff] = v;
}

template <ConvMath M>
__global__ void __launch_bounds__(256) conv_tc_pack_x(const float* __restrict__ x, const float* __restrict__ xs,
                                                      typename Fmt<M>::E* __restrict__ xp, int C, int Cp, int HW) {
  __shared__ float tile[32][33];
  const int p0 = (int)blockIdx.x * 32, c0 = (int)blockIdx.y * 32, n = (int)blockIdx.z;
  const int tx = (int)threadIdx.x % 32, ty = (int)threadIdx.x / 32;
  for (int r = ty; r < 32; r += 8) {
    const int c = c0 + r, p = p0 + tx;
    float v = 0.0f;
    if (c < C && p < HW) {
      v = x[((int64_t)n * C + c) * HW + p];
      if (xs) v *= xs[(int64_t)n * C + c];
    }
    tile[r][tx] = v;
  }
  __syncthreads();
  for (int r = ty; r < 32; r += 8) {
    const int p = p0 + r, c = c0 + tx;
    if (p < HW && c < Cp) xp[((int64_t)n * HW + p) * Cp + c] = Fmt<M>::from_float(tile[tx][r]);
  }
}

// Which weight element tap (ty, tx) of the GEMM reads: w[o, c, ty, tx] (conv2d), or, transposed,
// w[c, o, wy0 + wsy*(kh-1-ty), wx0 + wsx*(kw-1-tx)] of a conv_transpose2d weight [C, O, wkh, wkw]
// (the phase's taps, flipped).
struct WMap {
  int transposed = 0, wkh = 0, wkw = 0, wy0 = 0, wx0 = 0, wsy = 1, wsx = 1;
};

template <ConvMath M>
__global__ void __launch_bounds__(256)
    conv_tc_pack_w(const float* __restrict__ w, const float* __restrict__ ws, typename Fmt<M>::E* __restrict__ wp,
                   int64_t total, int C, int Cp, int O, int kh, int kw, WMap m) {
  const int T = kh * kw;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int c = (int)(i % Cp), tap = (int)((i / Cp) % T), o = (int)(i / ((int64_t)Cp * T));
    const int ty = tap / kw, tx = tap - ty * kw;
    float v = 0.0f;
    if (c < C) {
      v = m.transposed ? w[(((int64_t)c * O + o) * m.wkh + m.wy0 + m.wsy * (kh - 1 - ty)) * m.wkw + m.wx0 +
                           m.wsx * (kw - 1 - tx)]
                       : w[(((int64_t)o * C + c) * kh + ty) * kw + tx];
      if (ws) v *= ws[c];
    }
    wp[i] = Fmt<M>::from_float(v);
  }
}

// The main loop both GEMMs share: kStages tiles in flight through cp.async, then per tile two
// k-steps of 32 bytes (chunks 2ks and 2ks + 1), each 4 x 4 mma tiles of 16 x 8 per warp.
// load(stage) issues the copies of the next tile into `stage`; ldb(Bs, ks, r, jj) fills r with
// the B fragments of columns 16 jj .. 16 jj + 15 of the warp's block (b[2jj][0..1], b[2jj+1][0..1]);
// the A fragments (rows of 64 bytes, swizzled) are read here. acc: zeroed, then accumulated.
template <class F, class Load, class LoadB>
__device__ __forceinline__ void mainloop(unsigned char* smem, int kt0, int kt1, Load& load, int wm, int lm, int l8,
                                         float (&acc)[4][4][4], LoadB&& ldb) {
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (kt0 + s < kt1) load(s);
    ptx::cp_async_commit();  // (an empty group keeps the count uniform)
  }
  for (int kt = kt0; kt < kt1; ++kt) {
    ptx::cp_async_wait<kStages - 2>();  // tile kt has landed (this thread's copies) ...
    __syncthreads();                    // ... everyone's, and stage (kt - 1) % kStages is free
    if (kt + kStages - 1 < kt1) load((kt - kt0 + kStages - 1) % kStages);
    ptx::cp_async_commit();
    const unsigned char* As = smem + ((kt - kt0) % kStages) * kStageBytes;
    const unsigned char* Bs = As + kTileBytes;
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
      uint32_t a[4][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i)  // matrices (rows 0-7 | 8-15) x (k low | high): a0..a3
        ptx::ldmatrix_x4(a[i], As + swz(wm + 16 * i + 8 * (lm & 1) + l8, 2 * ks + (lm >> 1)));
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        uint32_t r[4];
        ldb(Bs, ks, r, jj);
        b[2 * jj][0] = r[0], b[2 * jj][1] = r[1], b[2 * jj + 1][0] = r[2], b[2 * jj + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) F::mma(acc[i][j], a[i], b[j]);
    }
  }
  ptx::cp_async_wait<0>();
}

// Where mainloop's accumulators sit, for both epilogues. mma.sync's C fragment holds, of each
// 16 x 8 tile, d0 (g, 2t), d1 (g, 2t+1), d2 (g+8, 2t), d3 (g+8, 2t+1) with g = lane / 4,
// t = lane % 4; tile (i, j) starts at (16 i, 8 j) of the warp's 64 x 32 block. So a thread holds
// 8 columns, numbered c = 2 j + (e & 1), at acc_col(lane, c) of the block, and
// for_each_acc(acc, lane, f) calls f(row in the block, c, value) for each of its 64 values.
__device__ __forceinline__ int acc_col(int lane, int c) { return 8 * (c / 2) + 2 * (lane % 4) + (c % 2); }

template <class Fn>
__device__ __forceinline__ void for_each_acc(const float (&acc)[4][4][4], int lane, Fn&& f) {
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) f(16 * i + lane / 4 + 8 * (e >> 1), 2 * j + (e & 1), acc[i][j][e]);
}

template <ConvMath M>
__global__ void __launch_bounds__(kThreads, 2) conv_tc_kernel(__grid_constant__ const TcParams P) {
  using F = Fmt<M>;
  using E = typename F::E;
  constexpr int kTileK = kRowBytes / (int)sizeof(E);  // elements of K per tile
  SG_DYNAMIC_SHARED(unsigned char, smem);
  const int tid = (int)threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int n0 = (int)blockIdx.x * kBN, m0 = (int)blockIdx.y * kBM, split = (int)blockIdx.z;
  const int kt0 = split * P.kt_per_split, kt1 = min(P.ktiles, kt0 + P.kt_per_split);

  // ---- the loader: this thread moves chunk `lc` of rows lr and lr + 64 of both tiles ----
  const int lc = tid % 4, lr = tid / 4;
  const E* wp = static_cast<const E*>(P.wp);
  const E* xp = static_cast<const E*>(P.xp);
  const E* a_row[2];
  bool a_ok[2];
  const E* b_img[2];
  int b_iy[2], b_ix[2];
  bool b_ok[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int m = m0 + lr + 64 * i, pix = n0 + lr + 64 * i;
    a_ok[i] = m < P.O;
    a_row[i] = wp + (int64_t)(a_ok[i] ? m : 0) * P.K;
    b_ok[i] = pix < P.NP;
    const int HW = P.Ho * P.Wo, n = b_ok[i] ? pix / HW : 0, q = b_ok[i] ? pix - n * HW : 0;
    const int oy = q / P.Wo, ox = q - oy * P.Wo;
    b_img[i] = xp + (int64_t)n * P.H * P.W * P.Cp;
    b_iy[i] = oy * P.sy - P.py;
    b_ix[i] = ox * P.sx - P.px;
  }
  // Position in K of this thread's chunk in tile kt0: tap (ty, tx) and channel ci, advanced
  // tile by tile with counters.
  int tap, ci, ty, tx;
  {
    const int64_t k = (int64_t)kt0 * kTileK + lc * F::kChunk;
    tap = (int)(k / P.Cp), ci = (int)(k - (int64_t)tap * P.Cp);
    ty = tap / P.kw, tx = tap - ty * P.kw;
  }
  auto load = [&](int stage) {  // the tile at the counters' position, into `stage`
    unsigned char* As = smem + stage * kStageBytes;
    unsigned char* Bs = As + kTileBytes;
    const bool k_ok = tap < P.T;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int row = lr + 64 * i;
      const bool av = a_ok[i] && k_ok;
      ptx::cp_async_16(As + swz(row, lc), av ? a_row[i] + (int64_t)tap * P.Cp + ci : wp, av);
      const int iy = b_iy[i] + ty, ix = b_ix[i] + tx;
      const bool bv = b_ok[i] && k_ok && (unsigned)iy < (unsigned)P.H && (unsigned)ix < (unsigned)P.W;
      ptx::cp_async_16(Bs + swz(row, lc), bv ? b_img[i] + ((int64_t)iy * P.W + ix) * P.Cp + ci : xp, bv);
    }
    ci += kTileK;
    while (ci >= P.Cp) {  // at most once when Cp >= kTileK
      ci -= P.Cp;
      ++tap;
      if (++tx == P.kw) tx = 0, ++ty;
    }
  };

  const int wm = (warp % 2) * 64, wn = (warp / 2) * 32;  // this warp's block of the tile
  const int lm = lane / 8, l8 = lane % 8;                // ldmatrix: matrix and row this lane addresses
  float acc[4][4][4];
  mainloop<F>(smem, kt0, kt1, load, wm, lm, l8, acc, [&](const unsigned char* Bs, int ks, uint32_t(&r)[4], int jj) {
    // matrices (k low | high) x (columns 0-7 | 8-15)
    ptx::ldmatrix_x4(r, Bs + swz(wn + 16 * jj + 8 * (lm >> 1) + l8, 2 * ks + (lm & 1)));
  });

  // ---- epilogue (the accumulator layout: for_each_acc) ----
  const int HW = P.Ho * P.Wo;
  const int64_t plane = (int64_t)P.O * P.NP;
  int cn[8], cp[8], cy[8];  // image, pixel and offset in y of this thread's 8 columns
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    const int pix = n0 + wn + acc_col(lane, c);
    cn[c] = pix < P.NP ? pix / HW : -1;
    cp[c] = pix - cn[c] * HW;
    cy[c] = cn[c] >= 0 ? y_offset(P, cp[c]) : 0;
  }
  for_each_acc(acc, lane, [&](int row, int c, float v) {
    const int o = m0 + wm + row;
    if (o >= P.O || cn[c] < 0) return;
    if (P.splits > 1)
      P.part[split * plane + (int64_t)o * P.NP + n0 + wn + acc_col(lane, c)] = v;
    else
      tc_finish(P, o, cn[c], cp[c], cy[c], v);
  });
}

__global__ void __launch_bounds__(256) conv_tc_splitk_epilogue(__grid_constant__ const TcParams P) {
  const int64_t plane = (int64_t)P.O * P.NP;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < plane; i += (int64_t)gridDim.x * blockDim.x) {
    float s = P.part[i];
    for (int k = 1; k < P.splits; ++k) s += P.part[k * plane + i];
    const int o = (int)(i / P.NP), pix = (int)(i - (int64_t)o * P.NP), HW = P.Ho * P.Wo, n = pix / HW;
    tc_finish(P, o, n, pix - n * HW, y_offset(P, pix - n * HW), s);
  }
}

// ---- the weight gradient ----------------------------------------------------------------------

struct TcWParams {
  const void* dyp;  // dy' [N, O, Ho*Wo] in the format
  const void* xp;   // x' [N, H, W, Cp] in the format
  float* dw;        // [O, C, kh, kw]
  float* part;      // [splits, O, NC] when splits > 1
  int N, O, C, Cp, H, W, Ho, Wo, kw, T, sy, sx, py, px, NC, ktiles, kt_per_split, splits;
  int step_y, step_x;  // one k-tile of pixels = step_y output rows + step_x pixels
};

// B tiles of the weight gradient: one row per pixel of the k-tile (32 bf16 / 16 TF32), of 128
// columns (256 / 512 bytes); chunk c of row r at (c ^ (r % 8)), so that the 8 rows an ldmatrix
// phase reads fall in 8 different bank groups.
template <ConvMath M>
__device__ __forceinline__ int swz_b(int row, int chunk) {
  return row * kBN * (int)sizeof(typename Fmt<M>::E) + ((chunk ^ (row & 7)) << 4);
}

template <ConvMath M>
__global__ void __launch_bounds__(256)
    conv_tc_pack_dy(const float* __restrict__ dy, typename Fmt<M>::E* __restrict__ dyp, int64_t n) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dyp[i] = Fmt<M>::from_float(dy[i]);
}

// The tile of dw's columns (tap, channel) n0.. and output channels m0.., over the pixels of
// this split. Warps and fragments as conv_tc_kernel; the loader moves chunk lc (kChunk pixels)
// of rows lr and lr + 64 of A, and chunk bc (kChunk channels of one tap) of two rows (pixels)
// of B. B fragments: bf16 with ldmatrix .trans; TF32 (no .trans for 32-bit elements) with
// scalar loads, b0 = (k t, n g), b1 = (k t+4, n g).
template <ConvMath M>
__global__ void __launch_bounds__(kThreads, 2) conv_tc_wgrad_kernel(__grid_constant__ const TcWParams P) {
  using F = Fmt<M>;
  using E = typename F::E;
  constexpr int kTileK = kRowBytes / (int)sizeof(E);     // pixels per k-tile
  constexpr int kRowChunks = kBN * (int)sizeof(E) / 16;  // 16-byte chunks per B row
  constexpr int kRowsPerPass = kThreads / kRowChunks;    // B rows the block moves at once
  static_assert(kRowsPerPass * 2 == kTileK, "two B chunks per thread per tile");
  const E* dyp = static_cast<const E*>(P.dyp);
  const E* xp = static_cast<const E*>(P.xp);
  SG_DYNAMIC_SHARED(unsigned char, smem);
  const int tid = (int)threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int n0 = (int)blockIdx.x * kBN, m0 = (int)blockIdx.y * kBM, split = (int)blockIdx.z;
  const int kt0 = split * P.kt_per_split, kt1 = min(P.ktiles, kt0 + P.kt_per_split);
  const int HW2 = P.Ho * P.Wo;

  // A: dy' rows o, kChunk pixels (an, ap) per chunk
  const int lc = tid % 4, lr = tid / 4;
  bool a_ok[2];
  int64_t a_row[2];  // (o) * HW2, the image added per load
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int o = m0 + lr + 64 * i;
    a_ok[i] = o < P.O;
    a_row[i] = (int64_t)(a_ok[i] ? o : 0) * HW2;
  }
  int an, ap;
  {
    const int64_t q = (int64_t)kt0 * kTileK + lc * F::kChunk;
    an = (int)(q / HW2), ap = (int)(q - (int64_t)an * HW2);
  }
  // B: column chunk bc = (tap, c .. c+kChunk-1), rows br, br + kRowsPerPass = pixels (bn, boy, box)
  const int bc = tid % kRowChunks, br = tid / kRowChunks;
  int tap, bch, bty, btx;
  {
    const int col = n0 + bc * F::kChunk;
    tap = col / P.Cp, bch = col - tap * P.Cp;
    bty = tap / P.kw, btx = tap - bty * P.kw;
  }
  const bool b_col_ok = tap < P.T;
  int bn[2], boy[2], box[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int64_t q = (int64_t)kt0 * kTileK + br + kRowsPerPass * i;
    bn[i] = (int)(q / HW2);
    const int r = (int)(q - (int64_t)bn[i] * HW2);
    boy[i] = r / P.Wo, box[i] = r - boy[i] * P.Wo;
  }
  auto load = [&](int stage) {
    unsigned char* As = smem + stage * kStageBytes;
    unsigned char* Bs = As + kTileBytes;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const bool av = a_ok[i] && an < P.N;
      ptx::cp_async_16(As + swz(lr + 64 * i, lc), av ? dyp + (int64_t)an * P.O * HW2 + a_row[i] + ap : dyp, av);
      const int iy = boy[i] * P.sy - P.py + bty, ix = box[i] * P.sx - P.px + btx;
      const bool bv = b_col_ok && bn[i] < P.N && (unsigned)iy < (unsigned)P.H && (unsigned)ix < (unsigned)P.W;
      ptx::cp_async_16(Bs + swz_b<M>(br + kRowsPerPass * i, bc),
                       bv ? xp + (((int64_t)bn[i] * P.H + iy) * P.W + ix) * P.Cp + bch : xp, bv);
    }
    ap += kTileK;
    while (ap >= HW2) ap -= HW2, ++an;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      box[i] += P.step_x, boy[i] += P.step_y;
      if (box[i] >= P.Wo) box[i] -= P.Wo, ++boy[i];
      while (boy[i] >= P.Ho) boy[i] -= P.Ho, ++bn[i];
    }
  };

  const int wm = (warp % 2) * 64, wn = (warp / 2) * 32;
  const int lm = lane / 8, l8 = lane % 8;
  float acc[4][4][4];
  const int g = lane / 4, t = lane % 4;
  int boff[4][2];  // TF32: this lane's B elements (k t | t+4, column 8q + g of the warp) in a stage
#pragma unroll
  for (int q = 0; q < 4; ++q)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int n = wn + 8 * q + g;
      boff[q][h] = swz_b<M>(t + 4 * h, n / 4) + (n % 4) * 4;  // (row t + 4h + 8ks: the same chunk order)
    }
  mainloop<F>(smem, kt0, kt1, load, wm, lm, l8, acc, [&](const unsigned char* Bs, int ks, uint32_t(&r)[4], int jj) {
    if constexpr (M == ConvMath::bf16) {
      // matrices (k low | high) x (columns 0-7 | 8-15), read transposed from the [k][n] tile
      ptx::ldmatrix_x4_trans(r, Bs + swz_b<M>(16 * ks + 8 * (lm & 1) + l8, (wn + 16 * jj + 8 * (lm >> 1)) / 8));
    } else {
      const unsigned char* Bk = Bs + 8 * ks * kBN * 4;  // rows 8ks ..
#pragma unroll
      for (int h = 0; h < 2; ++h) {  // columns 8h .. 8h+7 of the pair: b0 (k t, n g), b1 (k t+4, n g)
        r[2 * h] = *reinterpret_cast<const uint32_t*>(Bk + boff[2 * jj + h][0]);
        r[2 * h + 1] = *reinterpret_cast<const uint32_t*>(Bk + boff[2 * jj + h][1]);
      }
    }
  });

  int64_t cdst[8];  // dw offset (c * T + tap) of this thread's 8 columns, -1 for padding
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    const int col = n0 + wn + acc_col(lane, c), tp = col / P.Cp, ch = col - tp * P.Cp;
    cdst[c] = tp < P.T && ch < P.C ? (int64_t)ch * P.T + tp : -1;
  }
  const int64_t plane = (int64_t)P.O * P.NC;
  for_each_acc(acc, lane, [&](int row, int c, float v) {
    const int o = m0 + wm + row, col = n0 + wn + acc_col(lane, c);
    if (o >= P.O || col >= P.NC) return;
    if (P.splits > 1)
      P.part[split * plane + (int64_t)o * P.NC + col] = v;
    else if (cdst[c] >= 0)
      P.dw[(int64_t)o * P.C * P.T + cdst[c]] = v;
  });
}

__global__ void __launch_bounds__(256) conv_tc_wgrad_splitk(__grid_constant__ const TcWParams P) {
  const int64_t plane = (int64_t)P.O * P.NC;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < plane; i += (int64_t)gridDim.x * blockDim.x) {
    const int o = (int)(i / P.NC), col = (int)(i - (int64_t)o * P.NC), tp = col / P.Cp, ch = col - tp * P.Cp;
    if (ch >= P.C) continue;  // padding channels: no weight
    float s = P.part[i];
    for (int k = 1; k < P.splits; ++k) s += P.part[k * plane + i];
    P.dw[((int64_t)o * P.C + ch) * P.T + tp] = s;
  }
}

// One GEMM of the forward path: conv2d geometry over x [N, C, H, W] (the padding may be
// negative: an offset), kh x kw taps, an output grid Qy x Qx placed into y [N, O, Hy, Wy].
struct Gemm {
  int64_t N, C, H, W, O, kh, kw, sy, sx, py, px, Qy, Qx, Hy, Wy, osy = 1, osx = 1, oy0 = 0, ox0 = 0;
  WMap wmap{};  // (the transposed GEMMs set it)
};

struct TcPlan {
  int64_t Cp, T, K, NP, ktiles, splits, kt_per_split, w_bytes, part_bytes;
};

TcPlan tc_plan(const Gemm& g, ConvMath math) {
  TcPlan p;
  p.Cp = padded_channels(g.C, math);
  p.T = g.kh * g.kw;
  p.K = p.T * p.Cp;
  p.NP = g.N * g.Qy * g.Qx;
  p.ktiles = ceil_div(p.K * elem_bytes(math), kRowBytes);
  const int64_t tiles = ceil_div(p.NP, kBN) * ceil_div(g.O, kBM);
  int64_t s = 1;
  if (tiles > 0 && tiles < kTargetBlocks)
    s = std::min(ceil_div(kTargetBlocks, tiles), std::max<int64_t>(1, p.ktiles / 4));
  p.kt_per_split = ceil_div(p.ktiles, s);
  p.splits = ceil_div(p.ktiles, p.kt_per_split);  // no empty split
  p.w_bytes = align256(g.O * p.K * elem_bytes(math));
  p.part_bytes = p.splits > 1 ? p.splits * g.O * p.NP * 4 : 0;
  return p;
}

int64_t x_bytes(const Gemm& g, ConvMath math) {
  return align256(g.N * g.H * g.W * padded_channels(g.C, math) * elem_bytes(math));
}

// x' once, then w' and the partial sums of each GEMM in turn (the stream orders the reuse).
int64_t workspace_bytes(const std::vector<Gemm>& gs, ConvMath math) {
  int64_t most = 0;
  for (const Gemm& g : gs) {
    const TcPlan p = tc_plan(g, math);
    most = std::max(most, p.w_bytes + p.part_bytes);
  }
  return gs.empty() ? 0 : x_bytes(gs[0], math) + most;
}

bool fits(const Gemm& g, ConvMath math) {
  const TcPlan p = tc_plan(g, math);
  return g.N >= 1 && g.C >= 1 && g.O >= 1 && g.Qy >= 1 && g.Qx >= 1 && g.kh >= 1 && g.kw >= 1 && p.NP <= kInt32Max &&
         g.H * g.W <= kInt32Max && g.Hy * g.Wy <= kInt32Max && p.K <= kInt32Max && g.O <= 65535 * (int64_t)kBM &&
         g.N <= 65535 && p.splits * g.O * p.NP <= (int64_t(1) << 40);
}

void require(const char* fn, bool ok, const std::string& what) {
  if (!ok) throw CudaError(std::string(fn) + ": " + what);
}

// The epilogue and input scalings of a conv2d (TcConv's; a transposed conv takes x_scale and
// row_scale only).
struct Extras {
  const float* x_scale = nullptr;
  const float* w_scale = nullptr;
  const float* row_scale = nullptr;
  int64_t row_stride = 0;
  const float* noise = nullptr;
  const float* bias = nullptr;
  int act = 0;
  float alpha = 0.2f, gain = 1.0f, clamp = -1.0f;
};

template <ConvMath M>
void run(const std::vector<Gemm>& gs, const Extras& ex, const float* x, const float* w, float* y, void* workspace) {
  using E = typename Fmt<M>::E;
  const std::string sfx = M == ConvMath::bf16 ? " <bf16>" : " <tf32>";
  auto* ws = static_cast<unsigned char*>(workspace);
  const Gemm& g0 = gs[0];
  const int64_t Cp = padded_channels(g0.C, M), HW = g0.H * g0.W;
  E* xp = reinterpret_cast<E*>(ws);
  launch(("conv_tc_pack_x" + sfx).c_str(), conv_tc_pack_x<M>,
         dim3((unsigned)ceil_div(HW, 32), (unsigned)ceil_div(Cp, 32), (unsigned)g0.N), 256, 0, x, ex.x_scale, xp,
         (int)g0.C, (int)Cp, (int)HW);
  for (const Gemm& g : gs) {
    const TcPlan pl = tc_plan(g, M);
    E* wp = reinterpret_cast<E*>(ws + x_bytes(g, M));
    float* part = pl.splits > 1 ? reinterpret_cast<float*>(ws + x_bytes(g, M) + pl.w_bytes) : nullptr;
    const int64_t wtotal = g.O * pl.K;
    launch(("conv_tc_pack_w" + sfx).c_str(), conv_tc_pack_w<M>, blocks_for(wtotal, 256), 256, 0, w, ex.w_scale, wp,
           wtotal, (int)g.C, (int)pl.Cp, (int)g.O, (int)g.kh, (int)g.kw, g.wmap);
    TcParams P{};
    P.xp = xp, P.wp = wp, P.y = y, P.part = part;
    P.N = (int)g.N, P.Cp = (int)pl.Cp, P.H = (int)g.H, P.W = (int)g.W, P.O = (int)g.O, P.Ho = (int)g.Qy;
    P.Wo = (int)g.Qx, P.kw = (int)g.kw, P.sy = (int)g.sy, P.sx = (int)g.sx, P.py = (int)g.py, P.px = (int)g.px;
    P.T = (int)pl.T, P.NP = (int)pl.NP, P.ktiles = (int)pl.ktiles, P.kt_per_split = (int)pl.kt_per_split;
    P.splits = (int)pl.splits, P.K = pl.K;
    P.Hy = (int)g.Hy, P.Wy = (int)g.Wy, P.osy = (int)g.osy, P.osx = (int)g.osx, P.oy0 = (int)g.oy0, P.ox0 = (int)g.ox0;
    P.row_scale = ex.row_scale, P.row_stride = ex.row_stride, P.noise = ex.noise, P.bias = ex.bias;
    P.act = ex.act, P.alpha = ex.alpha, P.gain = ex.gain;
    P.has_clamp = ex.clamp >= 0 ? 1 : 0, P.clamp = ex.clamp >= 0 ? ex.clamp : 0.0f;
    const dim3 grid((unsigned)ceil_div(pl.NP, kBN), (unsigned)ceil_div(g.O, kBM), (unsigned)pl.splits);
    launch(("conv_tc_kernel" + sfx).c_str(), conv_tc_kernel<M>, grid, kThreads, kSmemBytes, P);
    if (pl.splits > 1)
      launch("conv_tc_splitk_epilogue", conv_tc_splitk_epilogue, blocks_for(g.O * pl.NP, 256), 256, 0, P);
  }
}

void run_math(const char* fn, ConvMath math, const std::vector<Gemm>& gs, const Extras& ex, const float* x,
              const float* w, float* y, void* workspace) {
  require(fn, math == ConvMath::bf16 || math == ConvMath::tf32, "math must be tf32 or bf16");
  require(fn, !gs.empty(), "empty problem");
  for (const Gemm& g : gs)
    require(fn, fits(g, math), "empty problem, or sizes beyond its 32-bit indexing or grid limits");
  require(fn, workspace != nullptr && reinterpret_cast<uintptr_t>(workspace) % 256 == 0,
          "needs a 256-byte aligned workspace");
  if (math == ConvMath::bf16)
    run<ConvMath::bf16>(gs, ex, x, w, y, workspace);
  else
    run<ConvMath::tf32>(gs, ex, x, w, y, workspace);
}

// conv2d: one GEMM.
std::vector<Gemm> gemms(const TcConv& c) {
  Gemm g{c.N, c.C, c.H, c.W, c.O, c.kh, c.kw, c.sy, c.sx, c.py, c.px, c.Ho(), c.Wo(), c.Ho(), c.Wo()};
  return {g};
}

// conv_transpose2d: one GEMM per output phase (ry, rx) (oy = ry + sy*qy). Phase ry takes taps
// i = iy0 + sy*t (iy0 = (ry + py) mod sy, Ty of them) from input row qy + in_oy - t; flipped
// (t' = Ty-1-t) that is a stride-1 conv with padding Ty-1-in_oy. Empty if a phase has no taps.
std::vector<Gemm> gemms(const TcConvTranspose& c) {
  std::vector<Gemm> gs;
  const int64_t Ho = c.Ho(), Wo = c.Wo();
  for (int64_t ry = 0; ry < std::min(c.sy, Ho); ++ry)
    for (int64_t rx = 0; rx < std::min(c.sx, Wo); ++rx) {
      const int64_t iy0 = (ry + c.py) % c.sy, ix0 = (rx + c.px) % c.sx;
      const int64_t Ty = iy0 < c.kh ? (c.kh - iy0 + c.sy - 1) / c.sy : 0,
                    Tx = ix0 < c.kw ? (c.kw - ix0 + c.sx - 1) / c.sx : 0;
      if (Ty == 0 || Tx == 0) return {};
      const int64_t in_oy = (ry + c.py - iy0) / c.sy, in_ox = (rx + c.px - ix0) / c.sx;
      Gemm g{c.N,
             c.C,
             c.H,
             c.W,
             c.O,
             Ty,
             Tx,
             1,
             1,
             Ty - 1 - in_oy,
             Tx - 1 - in_ox,
             (Ho - ry + c.sy - 1) / c.sy,
             (Wo - rx + c.sx - 1) / c.sx,
             Ho,
             Wo,
             c.sy,
             c.sx,
             ry,
             rx};
      g.wmap = WMap{1, (int)c.kh, (int)c.kw, (int)iy0, (int)ix0, (int)c.sy, (int)c.sx};
      gs.push_back(g);
    }
  return gs;
}

}  // namespace

int64_t conv_tc_workspace_bytes(const TcConv& c, ConvMath math) { return workspace_bytes(gemms(c), math); }

void conv_tc_forward(const TcConv& c, const float* x, const float* w, float* y, void* workspace, ConvMath math) {
  Extras ex;
  ex.x_scale = c.x_scale, ex.w_scale = c.w_scale, ex.row_scale = c.row_scale, ex.row_stride = c.row_stride;
  ex.noise = c.noise, ex.bias = c.bias, ex.act = c.act, ex.alpha = c.alpha, ex.gain = c.gain, ex.clamp = c.clamp;
  run_math("conv_tc_forward", math, gemms(c), ex, x, w, y, workspace);
}

bool conv_tc_transpose_applies(const TcConvTranspose& c, ConvMath math) {
  if (math != ConvMath::bf16 && math != ConvMath::tf32) return false;
  if (c.N < 1 || c.C < 1 || c.O < 1 || c.H < 1 || c.W < 1 || c.Ho() < 1 || c.Wo() < 1) return false;
  const std::vector<Gemm> gs = gemms(c);
  if (gs.empty()) return false;
  for (const Gemm& g : gs)
    if (!fits(g, math)) return false;
  return true;
}

int64_t conv_tc_transpose_workspace_bytes(const TcConvTranspose& c, ConvMath math) {
  return workspace_bytes(gemms(c), math);
}

void conv_tc_transpose_forward(const TcConvTranspose& c, const float* x, const float* w, float* y, void* workspace,
                               ConvMath math) {
  require("conv_tc_transpose_forward", conv_tc_transpose_applies(c, math),
          "a problem it does not take (a phase without taps, empty, or too large)");
  Extras ex;
  ex.x_scale = c.x_scale, ex.row_scale = c.row_scale, ex.row_stride = c.row_stride;
  run_math("conv_tc_transpose_forward", math, gemms(c), ex, x, w, y, workspace);
}

namespace {

struct TcWPlan {
  int64_t Cp, T, NC, P, tile_k, ktiles, splits, kt_per_split, dy_bytes, x_bytes, part_bytes;
};

TcWPlan tc_wplan(const TcWgrad& c, ConvMath math) {
  TcWPlan p;
  p.Cp = padded_channels(c.C, math);
  p.T = c.kh * c.kw;
  p.NC = p.T * p.Cp;
  p.P = c.N * c.Ho() * c.Wo();
  p.tile_k = kRowBytes / elem_bytes(math);  // pixels per k-tile
  p.ktiles = ceil_div(p.P, p.tile_k);
  const int64_t tiles = ceil_div(p.NC, kBN) * ceil_div(c.O, kBM);
  int64_t s = 1;
  if (tiles > 0 && tiles < kTargetBlocks)
    s = std::min(ceil_div(kTargetBlocks, tiles), std::max<int64_t>(1, p.ktiles / 4));
  p.kt_per_split = ceil_div(p.ktiles, s);
  p.splits = ceil_div(p.ktiles, p.kt_per_split);
  p.dy_bytes = align256(c.N * c.O * c.Ho() * c.Wo() * elem_bytes(math));
  p.x_bytes = align256(c.N * c.H * c.W * p.Cp * elem_bytes(math));
  p.part_bytes = p.splits > 1 ? p.splits * c.O * p.NC * 4 : 0;
  return p;
}

template <ConvMath M>
void run_wgrad(const TcWgrad& c, const float* dy, const float* x, float* dw, void* workspace, const TcWPlan& pl) {
  using E = typename Fmt<M>::E;
  const std::string sfx = M == ConvMath::bf16 ? " <bf16>" : " <tf32>";
  auto* ws = static_cast<unsigned char*>(workspace);
  auto* dyp = reinterpret_cast<E*>(ws);
  auto* xp = reinterpret_cast<E*>(ws + pl.dy_bytes);
  float* part = pl.splits > 1 ? reinterpret_cast<float*>(ws + pl.dy_bytes + pl.x_bytes) : nullptr;
  const int64_t ndy = c.N * c.O * c.Ho() * c.Wo(), HW = c.H * c.W;
  launch(("conv_tc_pack_dy" + sfx).c_str(), conv_tc_pack_dy<M>, blocks_for(ndy, 256), 256, 0, dy, dyp, ndy);
  launch(("conv_tc_pack_x" + sfx).c_str(), conv_tc_pack_x<M>,
         dim3((unsigned)ceil_div(HW, 32), (unsigned)ceil_div(pl.Cp, 32), (unsigned)c.N), 256, 0, x, nullptr, xp,
         (int)c.C, (int)pl.Cp, (int)HW);
  TcWParams P{};
  P.dyp = dyp, P.xp = xp, P.dw = dw, P.part = part;
  P.N = (int)c.N, P.O = (int)c.O, P.C = (int)c.C, P.Cp = (int)pl.Cp, P.H = (int)c.H, P.W = (int)c.W;
  P.Ho = (int)c.Ho(), P.Wo = (int)c.Wo(), P.kw = (int)c.kw, P.T = (int)pl.T;
  P.sy = (int)c.sy, P.sx = (int)c.sx, P.py = (int)c.py, P.px = (int)c.px, P.NC = (int)pl.NC;
  P.ktiles = (int)pl.ktiles, P.kt_per_split = (int)pl.kt_per_split, P.splits = (int)pl.splits;
  P.step_y = (int)(pl.tile_k / P.Wo), P.step_x = (int)(pl.tile_k % P.Wo);
  const dim3 grid((unsigned)ceil_div(pl.NC, kBN), (unsigned)ceil_div(c.O, kBM), (unsigned)pl.splits);
  launch(("conv_tc_wgrad_kernel" + sfx).c_str(), conv_tc_wgrad_kernel<M>, grid, kThreads, kSmemBytes, P);
  if (pl.splits > 1) launch("conv_tc_wgrad_splitk", conv_tc_wgrad_splitk, blocks_for(c.O * pl.NC, 256), 256, 0, P);
}

}  // namespace

bool conv_tc_wgrad_applies(const TcWgrad& c, ConvMath math) {
  if (math != ConvMath::bf16 && math != ConvMath::tf32) return false;
  if (c.N < 1 || c.C < 1 || c.O < 1 || c.Ho() < 1 || c.Wo() < 1 || (c.Ho() * c.Wo()) % 8 != 0) return false;
  const TcWPlan p = tc_wplan(c, math);
  return p.P <= kInt32Max && c.N * c.O * c.Ho() * c.Wo() <= kInt32Max && c.H * c.W <= kInt32Max && p.NC <= kInt32Max &&
         c.O <= 65535 * (int64_t)kBM && c.N <= 65535 && c.Wo() <= 32 * 65535;
}

int64_t conv_tc_wgrad_workspace_bytes(const TcWgrad& c, ConvMath math) {
  const TcWPlan p = tc_wplan(c, math);
  return p.dy_bytes + p.x_bytes + p.part_bytes;
}

void conv_tc_wgrad(const TcWgrad& c, const float* dy, const float* x, float* dw, void* workspace, ConvMath math) {
  require("conv_tc_wgrad", math == ConvMath::bf16 || math == ConvMath::tf32, "math must be tf32 or bf16");
  require("conv_tc_wgrad", conv_tc_wgrad_applies(c, math), "sizes it does not take (Ho*Wo % 8 != 0, or too large)");
  require("conv_tc_wgrad", workspace != nullptr && reinterpret_cast<uintptr_t>(workspace) % 256 == 0,
          "needs a 256-byte aligned workspace");
  const TcWPlan pl = tc_wplan(c, math);
  if (math == ConvMath::bf16)
    run_wgrad<ConvMath::bf16>(c, dy, x, dw, workspace, pl);
  else
    run_wgrad<ConvMath::tf32>(c, dy, x, dw, workspace, pl);
}

}  // namespace sg::kernels::cuda
