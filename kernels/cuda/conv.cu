// CUDA convolution kernels: implicit GEMM through shared memory, FMA and TF32 tensor-core
// variants, split-K weight gradient with a deterministic reduction.
//
// Formula, layout, variants and benchmarking: kernels/cuda/conv.h. In short:
//   C[m, n] = sum_k A[m, k] * B[k, n] per group, tiled BM x BN x BK = 64 x 64 x 16, with
//   conv2d / conv_transpose2d:  A = the weight of the group (m = output channel),
//                               B = the input gathered on the fly (k = (ci, tap y, tap x),
//                                   n = (batch, output pixel of the phase));
//   conv2d_weight_grad:         A = dy (m = output channel, k = (batch, output pixel)),
//                               B = the input gathered on the fly (n = (ci, i, j)).
// Every launch: 256 threads; thread t owns rows ty + 16*i and columns tx + 16*j (i, j < 4) of
// the tile, tx = t % 16, ty = t / 16, so the epilogue's stores along n are coalesced.
// Indices inside a plane are 32-bit (the host checks that every plane and every GEMM
// dimension fits); offsets across planes are 64-bit.
#include <mma.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/conv_tc.h"
#include "kernels/cuda/conv_thin.h"
#include "kernels/cuda/mma_ptx.cuh"

namespace sg::kernels::cuda {

namespace {

constexpr int BM = 64, BN = 64, BK = 16, PAD = 4;
constexpr int LDA = BM + PAD, LDB = BN + PAD, LDC = BN + PAD;  // multiples of 4 (wmma tf32)
constexpr int kThreads = 256;
// Split-K of the weight gradient: aim for this many blocks, never below kMinSplitRows
// reduction rows per split nor more than kMaxSplits, and a workspace of at most
// kMaxWorkspace elements.
constexpr int64_t kTargetBlocks = 1024, kMinSplitRows = 512, kMaxSplits = 64, kMaxWorkspace = int64_t(1) << 26;
constexpr int64_t kInt32Max = 2147483647;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void require(bool ok, const char* kernel, const std::string& what) {
  if (!ok) throw CudaError(std::string(kernel) + ": " + what);
}

// ---- the shared main loop -------------------------------------------------------------
// Loader: fetch(kt) reads tile kt of A and B from global memory into registers; stash()
// writes them to As[k][m] and Bs[k][n].

template <class T, class Loader>
__device__ __forceinline__ void mainloop_fma(Loader& ld, int ktiles, T (&As)[BK][LDA], T (&Bs)[BK][LDB],
                                             T (&acc)[4][4]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  if (ktiles > 0) ld.fetch(0);
  for (int kt = 0; kt < ktiles; ++kt) {
    ld.stash(As, Bs);
    __syncthreads();
    if (kt + 1 < ktiles) ld.fetch(kt + 1);  // in flight while this tile is computed
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
}

// The tensor-core main loops leave the tile in Cs; every thread then takes the same 4x4
// micro-tile the FMA path computes (rows ty + 16 i, columns tx + 16 j), so one epilogue serves all.
__device__ __forceinline__ void from_cs(float (&Cs)[BM][LDC], float (&acc)[4][4]) {
  __syncthreads();
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = Cs[ty + 16 * i][tx + 16 * j];
}

// Tensor cores: 8 warps as 2 (m) x 4 (n), each computing a 32 x 16 block as two m16n16k8
// tf32 fragments; the result goes through Cs so that every thread ends with the same 4x4
// micro-tile the FMA path produces (one epilogue for both).
template <class Loader>
__device__ __forceinline__ void mainloop_tf32(Loader& ld, int ktiles, float (&As)[BK][LDA], float (&Bs)[BK][LDB],
                                              float (&Cs)[BM][LDC], float (&acc)[4][4]) {
  using namespace nvcuda;
  const int warp = threadIdx.x / 32, wm = warp % 2, wn = warp / 2;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> c[2];
  wmma::fill_fragment(c[0], 0.0f);
  wmma::fill_fragment(c[1], 0.0f);
  if (ktiles > 0) ld.fetch(0);
  for (int kt = 0; kt < ktiles; ++kt) {
    ld.stash(As, Bs);
    __syncthreads();
    if (kt + 1 < ktiles) ld.fetch(kt + 1);
#pragma unroll
    for (int ks = 0; ks < BK; ks += 8) {
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b;
      wmma::load_matrix_sync(b, &Bs[ks][wn * 16], LDB);
#pragma unroll
      for (int t = 0; t < b.num_elements; ++t) b.x[t] = wmma::__float_to_tf32(b.x[t]);
#pragma unroll
      for (int f = 0; f < 2; ++f) {
        // A is stored k-major (As[k][m]): an M x K col-major matrix with ldm = LDA.
        wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> a;
        wmma::load_matrix_sync(a, &As[ks][wm * 32 + f * 16], LDA);
#pragma unroll
        for (int t = 0; t < a.num_elements; ++t) a.x[t] = wmma::__float_to_tf32(a.x[t]);
        wmma::mma_sync(c[f], a, b, c[f]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int f = 0; f < 2; ++f) wmma::store_matrix_sync(&Cs[wm * 32 + f * 16][wn * 16], c[f], LDC, wmma::mem_row_major);
  from_cs(Cs, acc);
}

// Tensor cores through PTX mma.sync (kernels/cuda/mma_ptx.cuh), ConvMath::tf32 (m16n8k8, TF32
// inputs) or ConvMath::bf16 (m16n8k16, bf16 inputs), f32 accumulators. The same 8 warps as
// 2 (m) x 4 (n), each a 32 x 16 block = 2 x 2 tiles of 16 x 8. The fragments are read from the
// f32 tiles As[k][m] and Bs[k][n] at the positions the PTX ISA gives each lane and rounded on the
// way (g = lane / 4, t = lane % 4):
//   tf32, per k-step of 8:  A (row m, col k): As[k][m] at (g | g+8, t | t+4); B: Bs[t | t+4][g]
//   bf16, per k-step of 16: A pairs k = 2t, 2t+1 (and +8) at rows g | g+8; B pairs likewise
// The result goes through Cs, as in mainloop_tf32, so both end in the FMA path's epilogue.
template <ConvMath kMath, class Loader>
__device__ __forceinline__ void mainloop_mma(Loader& ld, int ktiles, float (&As)[BK][LDA], float (&Bs)[BK][LDB],
                                             float (&Cs)[BM][LDC], float (&acc)[4][4]) {
  static_assert(kMath == ConvMath::tf32 || kMath == ConvMath::bf16, "mainloop_mma: tf32 or bf16");
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int mw = (warp % 2) * 32, nw = (warp / 2) * 16;  // this warp's block in the tile
  float d[2][2][4] = {};                                 // [m tile][n tile][fragment]
  if (ktiles > 0) ld.fetch(0);
  for (int kt = 0; kt < ktiles; ++kt) {
    ld.stash(As, Bs);
    __syncthreads();
    if (kt + 1 < ktiles) ld.fetch(kt + 1);
    if constexpr (kMath == ConvMath::tf32) {
#pragma unroll
      for (int ks = 0; ks < BK; ks += 8) {
        uint32_t a[2][4], b[2][2];
#pragma unroll
        for (int f = 0; f < 2; ++f) {
          const int m = mw + 16 * f + g;
          a[f][0] = ptx::to_tf32(As[ks + t][m]);
          a[f][1] = ptx::to_tf32(As[ks + t][m + 8]);
          a[f][2] = ptx::to_tf32(As[ks + t + 4][m]);
          a[f][3] = ptx::to_tf32(As[ks + t + 4][m + 8]);
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int n = nw + 8 * h + g;
          b[h][0] = ptx::to_tf32(Bs[ks + t][n]);
          b[h][1] = ptx::to_tf32(Bs[ks + t + 4][n]);
        }
#pragma unroll
        for (int f = 0; f < 2; ++f)
#pragma unroll
          for (int h = 0; h < 2; ++h) ptx::mma_m16n8k8_tf32(d[f][h], a[f], b[h]);
      }
    } else {
      static_assert(BK == 16, "one bf16 m16n8k16 step per k-tile");
      uint32_t a[2][4], b[2][2];
      const int k0 = 2 * t;
#pragma unroll
      for (int f = 0; f < 2; ++f) {
        const int m = mw + 16 * f + g;
        a[f][0] = ptx::pack_bf16x2(As[k0][m], As[k0 + 1][m]);
        a[f][1] = ptx::pack_bf16x2(As[k0][m + 8], As[k0 + 1][m + 8]);
        a[f][2] = ptx::pack_bf16x2(As[k0 + 8][m], As[k0 + 9][m]);
        a[f][3] = ptx::pack_bf16x2(As[k0 + 8][m + 8], As[k0 + 9][m + 8]);
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int n = nw + 8 * h + g;
        b[h][0] = ptx::pack_bf16x2(Bs[k0][n], Bs[k0 + 1][n]);
        b[h][1] = ptx::pack_bf16x2(Bs[k0 + 8][n], Bs[k0 + 9][n]);
      }
#pragma unroll
      for (int f = 0; f < 2; ++f)
#pragma unroll
        for (int h = 0; h < 2; ++h) ptx::mma_m16n8k16_bf16(d[f][h], a[f], b[h]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int f = 0; f < 2; ++f)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = mw + 16 * f + g, c = nw + 8 * h + 2 * t;
      Cs[r][c] = d[f][h][0];
      Cs[r][c + 1] = d[f][h][1];
      Cs[r + 8][c] = d[f][h][2];
      Cs[r + 8][c + 1] = d[f][h][3];
    }
  from_cs(Cs, acc);
}

// The main loop of variant kMath: FMA for T = double and ConvMath::fma, else the tensor cores.
template <ConvMath kMath, class T, class Loader>
__device__ __forceinline__ void mainloop(Loader& ld, int ktiles, T (&As)[BK][LDA], T (&Bs)[BK][LDB], T (&acc)[4][4]) {
  if constexpr (kMath == ConvMath::fma) {
    mainloop_fma(ld, ktiles, As, Bs, acc);
  } else {
    static_assert(std::is_same_v<T, float>, "tensor-core variants are f32 only");
    __shared__ __align__(32) float Cs[BM][LDC];
    if constexpr (kMath == ConvMath::tf32_wmma)
      mainloop_tf32(ld, ktiles, As, Bs, Cs, acc);
    else
      mainloop_mma<kMath>(ld, ktiles, As, Bs, Cs, acc);
  }
}

// Launch name suffix of each variant (the tests check which one ran).
const char* math_suffix(ConvMath m) {
  switch (m) {
    case ConvMath::tf32_wmma:
      return " <tf32 wmma>";
    case ConvMath::tf32:
      return " <tf32>";
    case ConvMath::bf16:
      return " <bf16>";
    default:
      return "";
  }
}

// Launches kernel<kMath> for math (T = double always takes FMA).
template <class T, template <class, ConvMath> class K, class... A>
void launch_math(ConvMath math, const char* name, dim3 grid, A&&... args) {
  if constexpr (std::is_same_v<T, float>) {
    const std::string full = std::string(name) + math_suffix(math);
    switch (math) {
      case ConvMath::tf32_wmma:
        return launch(full.c_str(), K<float, ConvMath::tf32_wmma>::fn(), grid, kThreads, 0, args...);
      case ConvMath::tf32:
        return launch(full.c_str(), K<float, ConvMath::tf32>::fn(), grid, kThreads, 0, args...);
      case ConvMath::bf16:
        return launch(full.c_str(), K<float, ConvMath::bf16>::fn(), grid, kThreads, 0, args...);
      default:
        break;
    }
  }
  launch(name, K<T, ConvMath::fma>::fn(), grid, kThreads, 0, args...);
}

// ---- conv2d and conv_transpose2d -------------------------------------------------------

template <class T>
struct ConvProblem {
  const T* x;
  const T* w;
  T* y;
  int N, Cin, H, W, Cout, Ho, Wo, kh, kw, sy, sx, py, px, groups, Cg, Cgo;
  int transposed;          // 0: conv2d, 1: conv_transpose2d (gather form, one phase per blockIdx.z)
  int phases;              // 1, or sy*sx for the transposed conv
  int group0;              // first group of this launch (grids of more than 65535 groups are split)
  int64_t w_group_stride;  // elements between the weights of consecutive groups (0: shared)
  // fusion (conv2d only)
  const T* a_scale;
  const T* row_scale;
  const T* noise;
  const T* bias;
  int bias_shared;  // bias indexed by the channel within the group
  int act;
  T alpha, gain, clamp;
  int has_clamp;
};

// One block's GEMM: the group, the taps per axis of its phase, the grid of output pixels it
// covers, and how a (pixel, tap) pair maps to input and weight positions:
//   input  iy = qy*in_my + in_oy + tsign*ty      (likewise x)
//   output oy = out_oy + out_my*qy
//   weight offset in the group = m*a_m + ci*a_ci + ty*a_ty + tx*a_tx + a_off
struct ConvView {
  int g, Ty, Tx, Qy, Qx;
  int in_my, in_mx, in_oy, in_ox, tsign;
  int out_my, out_mx, out_oy, out_ox;
  int a_m, a_ci, a_ty, a_tx, a_off;
  int K, ncols;
};

template <class T>
__device__ __forceinline__ ConvView make_view(const ConvProblem<T>& P, int z) {
  ConvView v;
  v.g = P.group0 + z / P.phases;
  const int khw = P.kh * P.kw;
  if (!P.transposed) {
    v.Ty = P.kh, v.Tx = P.kw, v.Qy = P.Ho, v.Qx = P.Wo;
    v.in_my = P.sy, v.in_mx = P.sx, v.in_oy = -P.py, v.in_ox = -P.px, v.tsign = 1;
    v.out_my = 1, v.out_mx = 1, v.out_oy = 0, v.out_ox = 0;
    v.a_m = P.Cg * khw, v.a_ci = khw, v.a_ty = P.kw, v.a_tx = 1, v.a_off = 0;
  } else {
    // Output phase (ry, rx): oy = ry + sy*qy receives taps i = iy0 + sy*ty from input row
    // iy = (oy + py - i) / sy = qy + (ry + py - iy0) / sy - ty.
    const int ph = z % P.phases, ry = ph / P.sx, rx = ph % P.sx;
    const int iy0 = (ry + P.py) % P.sy, ix0 = (rx + P.px) % P.sx;
    v.Ty = iy0 < P.kh ? (P.kh - iy0 + P.sy - 1) / P.sy : 0;
    v.Tx = ix0 < P.kw ? (P.kw - ix0 + P.sx - 1) / P.sx : 0;
    v.Qy = ry < P.Ho ? (P.Ho - ry + P.sy - 1) / P.sy : 0;
    v.Qx = rx < P.Wo ? (P.Wo - rx + P.sx - 1) / P.sx : 0;
    v.in_my = 1, v.in_mx = 1, v.in_oy = (ry + P.py - iy0) / P.sy, v.in_ox = (rx + P.px - ix0) / P.sx, v.tsign = -1;
    v.out_my = P.sy, v.out_mx = P.sx, v.out_oy = ry, v.out_ox = rx;
    // w [Cin, Cgo, kh, kw]: element (g*Cg + ci, m, iy0 + sy*ty, ix0 + sx*tx)
    v.a_m = khw, v.a_ci = P.Cgo * khw, v.a_ty = P.sy * P.kw, v.a_tx = P.sx, v.a_off = iy0 * P.kw + ix0;
  }
  v.K = P.Cg * v.Ty * v.Tx;
  v.ncols = P.N * v.Qy * v.Qx;
  return v;
}

template <class T>
struct ConvLoader {
  const ConvProblem<T>& P;
  const ConvView& V;
  const T* wg;  // weights of the block's group
  int m0, TT;
  // A: this thread loads k = a_k and rows a_row + 16*r of every tile.
  int a_k, a_row;
  // B: this thread loads column b_n (fixed) and rows b_k + 4*r of every tile.
  int b_k, b_n;
  bool b_valid;
  const T* xb;  // x[b, g*Cg, 0, 0] of the column's batch element
  int b_iy, b_ix;
  T ra[4], rb[4];

  __device__ ConvLoader(const ConvProblem<T>& P_, const ConvView& V_, int m0_, int n0) : P(P_), V(V_), m0(m0_) {
    const int t = threadIdx.x;
    TT = V.Ty * V.Tx;
    wg = P.w + (int64_t)V.g * P.w_group_stride;
    a_k = t % BK, a_row = t / BK;
    b_n = t % BN, b_k = t / BN;
    const int n = n0 + b_n;
    b_valid = n < V.ncols;
    xb = P.x;
    b_iy = b_ix = 0;
    if (b_valid) {
      const int QQ = V.Qy * V.Qx;
      const int b = n / QQ, q = n - b * QQ, qy = q / V.Qx, qx = q - qy * V.Qx;
      xb = P.x + ((int64_t)b * P.Cin + (int64_t)V.g * P.Cg) * ((int64_t)P.H * P.W);
      b_iy = qy * V.in_my + V.in_oy;
      b_ix = qx * V.in_mx + V.in_ox;
    }
  }

  __device__ __forceinline__ void fetch(int kt) {
    {
      const int k = kt * BK + a_k;
      if (k < V.K) {
        const int ci = k / TT, rem = k - ci * TT, ty = rem / V.Tx, tx = rem - ty * V.Tx;
        const int64_t off = (int64_t)ci * V.a_ci + ty * V.a_ty + tx * V.a_tx + V.a_off;
        const T s = P.a_scale ? P.a_scale[(int64_t)V.g * P.Cg + ci] : T(1);
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int m = m0 + a_row + 16 * r;
          ra[r] = m < P.Cgo ? wg[(int64_t)m * V.a_m + off] * s : T(0);
        }
      } else {
#pragma unroll
        for (int r = 0; r < 4; ++r) ra[r] = T(0);
      }
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int k = kt * BK + b_k + 4 * r;
      T v = T(0);
      if (b_valid && k < V.K) {
        const int ci = k / TT, rem = k - ci * TT, ty = rem / V.Tx, tx = rem - ty * V.Tx;
        const int iy = b_iy + V.tsign * ty, ix = b_ix + V.tsign * tx;
        if ((unsigned)iy < (unsigned)P.H && (unsigned)ix < (unsigned)P.W)
          v = xb[(int64_t)ci * P.H * P.W + iy * P.W + ix];
      }
      rb[r] = v;
    }
  }

  __device__ __forceinline__ void stash(T (&As)[BK][LDA], T (&Bs)[BK][LDB]) const {
#pragma unroll
    for (int r = 0; r < 4; ++r) As[a_k][a_row + 16 * r] = ra[r];
#pragma unroll
    for (int r = 0; r < 4; ++r) Bs[b_k + 4 * r][b_n] = rb[r];
  }
};

template <class T>
__device__ __forceinline__ void conv_epilogue(const ConvProblem<T>& P, const ConvView& V, int m0, int n0,
                                              const T (&acc)[4][4]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int QQ = V.Qy * V.Qx, HoWo = P.Ho * P.Wo;
  int bj[4], pj[4];
  bool vj[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int n = n0 + tx + 16 * j;
    vj[j] = n < V.ncols;
    bj[j] = pj[j] = 0;
    if (vj[j]) {
      const int b = n / QQ, q = n - b * QQ, qy = q / V.Qx, qx = q - qy * V.Qx;
      bj[j] = b;
      pj[j] = (V.out_oy + V.out_my * qy) * P.Wo + V.out_ox + V.out_mx * qx;
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int m = m0 + ty + 16 * i;
    if (m >= P.Cgo) continue;
    const int co = V.g * P.Cgo + m;
    const T rs = P.row_scale ? P.row_scale[co] : T(1);
    const T bias = P.bias ? P.bias[P.bias_shared ? m : co] : T(0);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (!vj[j]) continue;
      T v = acc[i][j];
      if (P.row_scale) v *= rs;
      if (P.noise) v += P.noise[((int64_t)bj[j] * P.groups + V.g) * HoWo + pj[j]];
      if (P.bias) v += bias;
      if (P.act == 1) v = v > T(0) ? v : T(0);
      if (P.act == 2) v = v > T(0) ? v : v * P.alpha;
      v *= P.gain;
      if (P.has_clamp) {
        v = v < -P.clamp ? -P.clamp : v;  // std::max(v, -clamp), NaN passes through
        v = P.clamp < v ? P.clamp : v;    // std::min(v, clamp)
      }
      P.y[((int64_t)bj[j] * P.Cout + co) * HoWo + pj[j]] = v;
    }
  }
}

template <class T, ConvMath kMath>
__global__ void __launch_bounds__(kThreads) conv_gemm_kernel(__grid_constant__ const ConvProblem<T> P) {
  __shared__ __align__(32) T As[BK][LDA];
  __shared__ __align__(32) T Bs[BK][LDB];
  const ConvView V = make_view(P, (int)blockIdx.z);
  const int n0 = (int)blockIdx.x * BN, m0 = (int)blockIdx.y * BM;
  if (n0 >= V.ncols) return;  // a phase with a smaller pixel grid: the whole block leaves
  ConvLoader<T> ld(P, V, m0, n0);
  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
  const int ktiles = (V.K + BK - 1) / BK;
  mainloop<kMath>(ld, ktiles, As, Bs, acc);
  conv_epilogue(P, V, m0, n0, acc);
}
template <class T, ConvMath kMath>
struct ConvGemm {
  static auto fn() { return conv_gemm_kernel<T, kMath>; }
};

// Checks the 32-bit index assumptions of the kernels.
void check_conv_sizes(const char* kernel, int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t Ho,
                      int64_t Wo, int64_t kh, int64_t kw, int64_t groups) {
  require(H * W <= kInt32Max && Ho * Wo <= kInt32Max, kernel, "image plane too large for 32-bit indexing");
  require(N * Ho * Wo <= kInt32Max && N * H * W <= kInt32Max, kernel, "batch x pixels exceeds 2^31");
  require(Cin * kh * kw <= kInt32Max && Cout * kh * kw <= kInt32Max, kernel, "channels x taps exceeds 2^31");
  require(Cout <= kInt32Max && Cin <= kInt32Max && groups <= kInt32Max, kernel, "too many channels");
}

template <class T>
void launch_conv(ConvProblem<T> P, ConvMath math, const char* name) {
  const int64_t qy = ceil_div(P.Ho, P.transposed ? P.sy : 1), qx = ceil_div(P.Wo, P.transposed ? P.sx : 1);
  const int64_t max_cols = (int64_t)P.N * qy * qx;  // phase 0 has the largest pixel grid
  if (max_cols == 0 || P.Cgo == 0 || P.groups == 0) return;
  const int64_t mtiles = ceil_div(P.Cgo, BM), max_yz = launch_limits().max_grid_yz;
  require(mtiles <= max_yz, name, "too many output channels per group");
  require(P.phases <= max_yz, name, "stride too large");
  const int64_t groups_per_launch = std::max<int64_t>(1, max_yz / P.phases);
  for (int64_t g0 = 0; g0 < P.groups; g0 += groups_per_launch) {
    const int64_t ng = std::min<int64_t>(groups_per_launch, P.groups - g0);
    P.group0 = (int)g0;
    dim3 grid((unsigned)ceil_div(max_cols, BN), (unsigned)mtiles, (unsigned)(ng * P.phases));
    launch_math<T, ConvGemm>(math, name, grid, P);
  }
}

template <class T>
ConvProblem<T> base_problem(const T* x, const T* w, T* y, int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout,
                            int64_t Ho, int64_t Wo, int64_t kh, int64_t kw, int64_t sy, int64_t sx, int64_t py,
                            int64_t px, int64_t groups) {
  ConvProblem<T> P{};
  P.x = x, P.w = w, P.y = y;
  P.N = (int)N, P.Cin = (int)Cin, P.H = (int)H, P.W = (int)W, P.Cout = (int)Cout, P.Ho = (int)Ho, P.Wo = (int)Wo;
  P.kh = (int)kh, P.kw = (int)kw, P.sy = (int)sy, P.sx = (int)sx, P.py = (int)py, P.px = (int)px;
  P.groups = (int)groups, P.Cg = (int)(Cin / groups), P.Cgo = (int)(Cout / groups);
  P.w_group_stride = (Cout / groups) * (Cin / groups) * kh * kw;
  P.a_scale = P.row_scale = P.noise = P.bias = nullptr;
  P.bias_shared = 0, P.act = 0, P.alpha = T(0), P.gain = T(1), P.clamp = T(0), P.has_clamp = 0;
  return P;
}

// ---- conv2d_weight_grad ----------------------------------------------------------------

template <class T>
struct WgradProblem {
  const T* dy;
  const T* x;
  T* dw;         // [Cout, Cg*kh*kw]
  T* workspace;  // [splits, Cout, Cg*kh*kw] when splits > 1
  int N, Cin, H, W, Cout, Ho, Wo, kh, kw, sy, sx, py, px, groups, Cg, Cgo, Kw;
  int R;           // N*Ho*Wo, the reduction length
  int64_t rchunk;  // reduction rows per split (a multiple of BK)
  int splits;
  int group0;
};

template <class T>
struct WgradLoader {
  const WgradProblem<T>& P;
  int g, m0, r_begin, r_end;
  int r_local, mk;  // this thread loads reduction row r_local of each tile, and rows / columns mk + 16*r
  bool kvalid[4];
  int64_t xoff[4];  // (g*Cg + ci) * H*W of column kk = n0 + mk + 16*r
  int ki[4], kj[4];
  T ra[4], rb[4];

  __device__ WgradLoader(const WgradProblem<T>& P_, int g_, int m0_, int n0, int rb_, int re_)
      : P(P_), g(g_), m0(m0_), r_begin(rb_), r_end(re_) {
    r_local = threadIdx.x % BK, mk = threadIdx.x / BK;
    const int khw = P.kh * P.kw;
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int kk = n0 + mk + 16 * r;
      kvalid[r] = kk < P.Kw;
      const int ci = kvalid[r] ? kk / khw : 0, rem = kvalid[r] ? kk - ci * khw : 0;
      ki[r] = rem / P.kw;
      kj[r] = rem - ki[r] * P.kw;
      xoff[r] = ((int64_t)g * P.Cg + ci) * ((int64_t)P.H * P.W);
    }
  }

  __device__ __forceinline__ void fetch(int kt) {
    const int r = r_begin + kt * BK + r_local;
    if (r < r_end) {
      const int HoWo = P.Ho * P.Wo;
      const int b = r / HoWo, p = r - b * HoWo, oy = p / P.Wo, ox = p - oy * P.Wo;
      const T* dyb = P.dy + ((int64_t)b * P.Cout + (int64_t)g * P.Cgo) * HoWo + p;
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int m = m0 + mk + 16 * q;
        ra[q] = m < P.Cgo ? dyb[(int64_t)m * HoWo] : T(0);
      }
      const T* xb = P.x + (int64_t)b * P.Cin * ((int64_t)P.H * P.W);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int iy = oy * P.sy - P.py + ki[q], ix = ox * P.sx - P.px + kj[q];
        rb[q] = kvalid[q] && (unsigned)iy < (unsigned)P.H && (unsigned)ix < (unsigned)P.W ? xb[xoff[q] + iy * P.W + ix]
                                                                                          : T(0);
      }
    } else {
#pragma unroll
      for (int q = 0; q < 4; ++q) ra[q] = rb[q] = T(0);
    }
  }

  __device__ __forceinline__ void stash(T (&As)[BK][LDA], T (&Bs)[BK][LDB]) const {
#pragma unroll
    for (int q = 0; q < 4; ++q) As[r_local][mk + 16 * q] = ra[q];
#pragma unroll
    for (int q = 0; q < 4; ++q) Bs[r_local][mk + 16 * q] = rb[q];
  }
};

template <class T, ConvMath kMath>
__global__ void __launch_bounds__(kThreads) conv_wgrad_kernel(__grid_constant__ const WgradProblem<T> P) {
  __shared__ __align__(32) T As[BK][LDA];
  __shared__ __align__(32) T Bs[BK][LDB];
  const int z = (int)blockIdx.z, g = P.group0 + z / P.splits, split = z % P.splits;
  const int n0 = (int)blockIdx.x * BN, m0 = (int)blockIdx.y * BM;
  const int r_begin = (int)min((int64_t)P.R, split * P.rchunk);
  const int r_end = (int)min((int64_t)P.R, r_begin + P.rchunk);
  WgradLoader<T> ld(P, g, m0, n0, r_begin, r_end);
  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
  const int ktiles = (r_end - r_begin + BK - 1) / BK;  // 0 for an empty split: it writes zeros
  mainloop<kMath>(ld, ktiles, As, Bs, acc);
  T* out = P.splits > 1 ? P.workspace + (int64_t)split * P.Cout * P.Kw : P.dw;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int m = m0 + ty + 16 * i;
    if (m >= P.Cgo) continue;
    T* row = out + ((int64_t)g * P.Cgo + m) * P.Kw;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int kk = n0 + tx + 16 * j;
      if (kk < P.Kw) row[kk] = acc[i][j];
    }
  }
}

// dw[i] = sum_{s < splits} ws[s][i], in order: deterministic.
template <class T>
__global__ void splitk_reduce_kernel(const T* __restrict__ ws, T* __restrict__ dw, int64_t total, int splits) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    T s = ws[i];
    for (int k = 1; k < splits; ++k) s += ws[(int64_t)k * total + i];
    dw[i] = s;
  }
}

struct WgradPlan {
  int64_t splits = 1, rchunk = 0;
};

WgradPlan wgrad_plan(int64_t N, int64_t Cout, int64_t Ho, int64_t Wo, int64_t Kw, int64_t groups) {
  WgradPlan p;
  const int64_t R = N * Ho * Wo, Cgo = groups > 0 ? Cout / groups : 0;
  const int64_t tiles = ceil_div(Kw, BN) * ceil_div(Cgo, BM) * groups;
  int64_t s = 1;
  if (tiles > 0 && tiles < kTargetBlocks) s = ceil_div(kTargetBlocks, tiles);
  s = std::min(s, std::max<int64_t>(1, R / kMinSplitRows));
  s = std::min(s, kMaxSplits);
  if (Cout * Kw > 0) s = std::min(s, std::max<int64_t>(1, kMaxWorkspace / (Cout * Kw)));
  s = std::max<int64_t>(s, 1);
  p.rchunk = std::max<int64_t>(BK, ceil_div(ceil_div(R, s), BK) * BK);
  p.splits = R > 0 ? ceil_div(R, p.rchunk) : 1;  // no empty splits
  return p;
}

template <class T, ConvMath kMath>
struct ConvWgrad {
  static auto fn() { return conv_wgrad_kernel<T, kMath>; }
};

}  // namespace

// ---- host API --------------------------------------------------------------------------

namespace {

// The thin 1x1 path (conv_thin.h): 1x1, stride 1, no padding, groups 1, a side of at most
// kThinChannels channels (and, for conv2d, no fusion: the caller checks).
bool thin_1x1(const Conv2dParams& p, bool transposed) {
  return p.groups == 1 && p.kh == 1 && p.kw == 1 && p.sy == 1 && p.sx == 1 && p.py == 0 && p.px == 0 &&
         (!transposed || (p.opy == 0 && p.opx == 0)) && (p.Cin <= kThinChannels || p.Cout <= kThinChannels);
}

// The tensor-core path's problem for a conv2d_forward call; false: the call is not one it takes.
template <class T>
bool tc_conv2d(const Conv2dParams& p, ConvMath math, const ConvFusion<T>* fu, TcConv& c) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    if (math != ConvMath::tf32 && math != ConvMath::bf16) return false;
    c = TcConv{};
    if (p.groups == 1) {
      c.N = p.N, c.C = p.Cin, c.O = p.Cout;
      c.w_scale = fu ? fu->a_scale : nullptr;          // [Cin]
    } else if (fu && fu->shared_weight && p.N == 1) {  // the fused modconv: group g is image g
      c.N = p.groups, c.C = p.Cin / p.groups, c.O = p.Cout / p.groups;
      c.x_scale = fu->a_scale;  // [groups, Cg]
      c.row_stride = c.O;
    } else {
      return false;
    }
    c.H = p.H, c.W = p.W, c.kh = p.kh, c.kw = p.kw, c.sy = p.sy, c.sx = p.sx, c.py = p.py, c.px = p.px;
    if (fu) {
      c.row_scale = fu->row_scale, c.noise = fu->noise, c.bias = fu->bias, c.act = fu->act;
      c.alpha = (float)fu->alpha, c.gain = (float)fu->gain, c.clamp = (float)fu->clamp;
    }
    return c.N > 0 && c.O > 0 && c.Ho() >= 1 && c.Wo() >= 1;
  }
}

// conv_transpose2d (groups 1) on the tensor-core path: one GEMM per output phase.
template <class T>
bool tc_conv_transpose2d(const Conv2dParams& p, ConvMath math, TcConvTranspose& c) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    if (p.groups != 1) return false;
    c = TcConvTranspose{p.N, p.Cin, p.H, p.W, p.Cout, p.kh, p.kw, p.sy, p.sx, p.py, p.px, p.opy, p.opx};
    return conv_tc_transpose_applies(c, math);
  }
}

}  // namespace

template <class T>
int64_t conv2d_forward_workspace(const Conv2dParams& p, ConvMath math, const ConvFusion<T>* fusion) {
  if (!fusion && thin_1x1(p, false)) return 0;
  TcConv c;
  return tc_conv2d(p, math, fusion, c) ? conv_tc_workspace_bytes(c, math) : 0;
}

template <class T>
int64_t conv_transpose2d_forward_workspace(const Conv2dParams& p, ConvMath math) {
  if (thin_1x1(p, true)) return 0;
  TcConvTranspose c;
  return tc_conv_transpose2d<T>(p, math, c) ? conv_tc_transpose_workspace_bytes(c, math) : 0;
}

template <class T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, T* y, ConvMath math, const ConvFusion<T>* fusion,
                    void* workspace) {
  const int64_t N = p.N, Cin = p.Cin, H = p.H, W = p.W, Cout = p.Cout, kh = p.kh, kw = p.kw;
  const int64_t sy = p.sy, sx = p.sx, py = p.py, px = p.px, groups = p.groups;
  const char* name = fusion ? "conv2d_forward (fused)" : "conv2d_forward";
  const int64_t Ho = (H + 2 * py - kh) / sy + 1, Wo = (W + 2 * px - kw) / sx + 1;
  if (N == 0 || Cout == 0 || Ho <= 0 || Wo <= 0) return;
  check_conv_sizes(name, N, Cin, H, W, Cout, Ho, Wo, kh, kw, groups);
  if (!fusion && thin_1x1(p, false)) return conv1x1_thin(x, w, y, N, Cin, Cout, H * W, false);
  if constexpr (std::is_same_v<T, float>) {
    TcConv c;
    if (workspace && tc_conv2d(p, math, fusion, c)) return conv_tc_forward(c, x, w, y, workspace, math);
  }
  ConvProblem<T> P = base_problem(x, w, y, N, Cin, H, W, Cout, Ho, Wo, kh, kw, sy, sx, py, px, groups);
  P.transposed = 0, P.phases = 1;
  if (fusion) {
    P.a_scale = fusion->a_scale;
    if (fusion->shared_weight) P.w_group_stride = 0;
    P.row_scale = fusion->row_scale;
    P.noise = fusion->noise;
    P.bias = fusion->bias;
    P.bias_shared = fusion->shared_weight ? 1 : 0;
    P.act = fusion->act;
    P.alpha = (T)fusion->alpha;
    P.gain = (T)fusion->gain;
    P.has_clamp = fusion->clamp >= 0 ? 1 : 0;
    P.clamp = (T)(fusion->clamp >= 0 ? fusion->clamp : 0.0);
  }
  launch_conv(P, math, name);
}

template <class T>
void conv_transpose2d_forward(const Conv2dParams& p, const T* x, const T* w, T* y, ConvMath math, void* workspace) {
  const int64_t N = p.N, Cin = p.Cin, H = p.H, W = p.W, Cout = p.Cout, kh = p.kh, kw = p.kw;
  const int64_t sy = p.sy, sx = p.sx, py = p.py, px = p.px, opy = p.opy, opx = p.opx, groups = p.groups;
  const char* name = "conv_transpose2d_forward";
  const int64_t Ho = (H - 1) * sy - 2 * py + kh + opy, Wo = (W - 1) * sx - 2 * px + kw + opx;
  if (N == 0 || Cout == 0 || Ho <= 0 || Wo <= 0) return;
  check_conv_sizes(name, N, Cin, H, W, Cout, Ho, Wo, kh, kw, groups);
  require(sy * sx <= launch_limits().max_grid_yz, name, "stride too large");
  if (thin_1x1(p, true)) return conv1x1_thin(x, w, y, N, Cin, Cout, H * W, true);
  if constexpr (std::is_same_v<T, float>) {
    TcConvTranspose c;
    if (workspace && tc_conv_transpose2d<T>(p, math, c)) return conv_tc_transpose_forward(c, x, w, y, workspace, math);
  }
  ConvProblem<T> P = base_problem(x, w, y, N, Cin, H, W, Cout, Ho, Wo, kh, kw, sy, sx, py, px, groups);
  P.transposed = 1, P.phases = (int)(sy * sx);
  launch_conv(P, math, name);
}

namespace {
// The tensor-core weight gradient's problem (TF32 / bf16, groups 1, Ho*Wo % 8 == 0); false: not taken.
bool tc_wgrad(const Conv2dParams& p, ConvMath math, TcWgrad& c) {
  if (p.groups != 1) return false;
  c = TcWgrad{p.N, p.Cin, p.H, p.W, p.Cout, p.kh, p.kw, p.sy, p.sx, p.py, p.px};
  return conv_tc_wgrad_applies(c, math);
}
}  // namespace

int64_t conv2d_weight_grad_workspace(const Conv2dParams& p, ConvMath math) {
  const int64_t N = p.N, Cin = p.Cin, H = p.H, W = p.W, Cout = p.Cout, kh = p.kh, kw = p.kw;
  const int64_t sy = p.sy, sx = p.sx, py = p.py, px = p.px, groups = p.groups;
  const int64_t Ho = (H + 2 * py - kh) / sy + 1, Wo = (W + 2 * px - kw) / sx + 1;
  if (N == 0 || Cout == 0 || groups <= 0 || Ho <= 0 || Wo <= 0) return 0;
  if (thin_1x1(p, false)) return conv1x1_thin_wgrad_workspace(N, Cin, Cout, H * W);
  const int64_t Kw = Cin / groups * kh * kw;
  const WgradPlan plan = wgrad_plan(N, Cout, Ho, Wo, Kw, groups);
  const int64_t smem_path = plan.splits > 1 ? plan.splits * Cout * Kw : 0;
  TcWgrad c;  // (f32 elements; an f64 call never takes the path and gets at least its own need)
  return tc_wgrad(p, math, c) ? std::max(smem_path, ceil_div(conv_tc_wgrad_workspace_bytes(c, math), 4)) : smem_path;
}

template <class T>
void conv2d_weight_grad(const Conv2dParams& p, const T* dy, const T* x, T* dw, T* workspace, ConvMath math) {
  const int64_t N = p.N, Cin = p.Cin, H = p.H, W = p.W, Cout = p.Cout, kh = p.kh, kw = p.kw;
  const int64_t sy = p.sy, sx = p.sx, py = p.py, px = p.px, groups = p.groups;
  const char* name = "conv2d_weight_grad";
  const int64_t Ho = (H + 2 * py - kh) / sy + 1, Wo = (W + 2 * px - kw) / sx + 1;
  const int64_t Cg = Cin / groups, Cgo = Cout / groups, Kw = Cg * kh * kw;
  if (Cout * Kw == 0) return;
  if (N == 0 || Ho <= 0 || Wo <= 0) {  // empty reduction
    memset_async(dw, 0, sizeof(T) * (size_t)(Cout * Kw));
    return;
  }
  check_conv_sizes(name, N, Cin, H, W, Cout, Ho, Wo, kh, kw, groups);
  // the thin 1x1 path (toRGB, fromRGB), whatever the math; without the workspace it needs, the
  // shared-memory kernels below
  if (thin_1x1(p, false) && (workspace || conv1x1_thin_wgrad_workspace(N, Cin, Cout, H * W) == 0))
    return conv1x1_thin_wgrad(dy, x, dw, workspace, N, Cin, Cout, H * W);
  if constexpr (std::is_same_v<T, float>) {
    TcWgrad c;
    if (workspace && tc_wgrad(p, math, c)) return conv_tc_wgrad(c, dy, x, dw, workspace, math);
  }
  const WgradPlan plan = wgrad_plan(N, Cout, Ho, Wo, Kw, groups);
  require(plan.splits == 1 || workspace != nullptr, name, "split-K needs the workspace");
  WgradProblem<T> P{};
  P.dy = dy, P.x = x, P.dw = dw, P.workspace = workspace;
  P.N = (int)N, P.Cin = (int)Cin, P.H = (int)H, P.W = (int)W, P.Cout = (int)Cout, P.Ho = (int)Ho, P.Wo = (int)Wo;
  P.kh = (int)kh, P.kw = (int)kw, P.sy = (int)sy, P.sx = (int)sx, P.py = (int)py, P.px = (int)px;
  P.groups = (int)groups, P.Cg = (int)Cg, P.Cgo = (int)Cgo, P.Kw = (int)Kw;
  P.R = (int)(N * Ho * Wo), P.rchunk = plan.rchunk, P.splits = (int)plan.splits;
  const int64_t mtiles = ceil_div(Cgo, BM), ntiles = ceil_div(Kw, BN), max_yz = launch_limits().max_grid_yz;
  require(mtiles <= max_yz, name, "too many output channels per group");
  const int64_t groups_per_launch = std::max<int64_t>(1, max_yz / plan.splits);
  for (int64_t g0 = 0; g0 < groups; g0 += groups_per_launch) {
    const int64_t ng = std::min<int64_t>(groups_per_launch, groups - g0);
    P.group0 = (int)g0;
    dim3 grid((unsigned)ntiles, (unsigned)mtiles, (unsigned)(ng * plan.splits));
    launch_math<T, ConvWgrad>(math, name, grid, P);
  }
  if (plan.splits > 1) {
    const int64_t total = Cout * Kw;
    launch("conv2d_weight_grad (split-K reduction)", splitk_reduce_kernel<T>, blocks_for(total, kThreads), kThreads, 0,
           workspace, dw, total, (int)plan.splits);
  }
}

#define SG_INSTANTIATE_CUDA_CONV(T)                                                                                    \
  template int64_t conv2d_forward_workspace<T>(const Conv2dParams&, ConvMath, const ConvFusion<T>*);                   \
  template int64_t conv_transpose2d_forward_workspace<T>(const Conv2dParams&, ConvMath);                               \
  template void conv2d_forward<T>(const Conv2dParams&, const T*, const T*, T*, ConvMath, const ConvFusion<T>*, void*); \
  template void conv_transpose2d_forward<T>(const Conv2dParams&, const T*, const T*, T*, ConvMath, void*);             \
  template void conv2d_weight_grad<T>(const Conv2dParams&, const T*, const T*, T*, T*, ConvMath);

SG_INSTANTIATE_CUDA_CONV(float)
SG_INSTANTIATE_CUDA_CONV(double)
#undef SG_INSTANTIATE_CUDA_CONV

}  // namespace sg::kernels::cuda
