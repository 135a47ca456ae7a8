// study/implicit_gemm.cuh: the two generic kernels behind versions 1 and 2 of study/conv.cu
// and study/modconv.cu. A convolution (and each of its gradients) is a GEMM
//   out[z][m][n] = sum_k A(z, m, k) * B(z, k, n)
// whose operands are never materialised: a "problem" struct computes A and B from the
// tensors on the fly (the im2col gather) and stores the result. z is a batch of independent
// GEMMs (groups; the samples of the modulated conv). A problem provides
//   int M, N, K;                                   (per z)
//   __device__ float a(int z, int m, int k) const; __device__ float b(int z, int k, int n) const;
//   __device__ void store(int z, int m, int n, float v) const;
// Indices are int: the study shapes stay below 2^31 elements.
#pragma once
#include "study/common.h"

namespace study {

// Version 1: one thread per output element, K multiply-adds reading A and B from global memory:
// 2 loads per FMA, so it runs at the speed of the L1/L2 caches, far from the FMA peak.
template <class P>
__global__ void gemm_naive(P p) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x, m = blockIdx.y, z = blockIdx.z;
  if (n >= p.N) return;
  float acc = 0.0f;
  for (int k = 0; k < p.K; ++k) acc += p.a(z, m, k) * p.b(z, k, n);
  p.store(z, m, n, acc);
}

template <class P>
void launch_gemm_naive(const P& p, int batches) {
  kc::launch("gemm_naive", gemm_naive<P>, dim3((p.N + 127) / 128, p.M, batches), dim3(128), 0, p);
}

// Version 2: shared-memory tiling. A block of TILE x TILE threads owns a TILE x TILE output
// tile; per step of TILE along K it stages a TILE x TILE tile of A and one of B in shared
// memory (each thread gathers one element of each), syncs, and every thread does TILE FMAs
// from shared memory. Each global element is now read N/TILE (A) or M/TILE (B) times instead
// of N or M times: TILE FMAs per 2 global loads. The production kernel (kernels/cuda/conv.cu)
// goes further: 64x64 tiles with a 4x4 micro-tile per thread in registers (16 FMAs per 8
// shared loads), the next K step's global loads issued before the current step's math, and a
// TF32 tensor-core variant.
constexpr int TILE = 16;

template <class P>
__global__ void gemm_tiled(P p) {
  __shared__ float As[TILE][TILE];      // As[m][k]
  __shared__ float Bs[TILE][TILE + 1];  // Bs[k][n]; +1: no bank conflicts on the transposed store
  const int tx = threadIdx.x, ty = threadIdx.y, z = blockIdx.z;
  const int m = blockIdx.y * TILE + ty, n = blockIdx.x * TILE + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < p.K; k0 += TILE) {
    // Thread (ty, tx) loads A[m][k0 + tx] and B[k0 + ty][n]; zeros outside the matrices.
    As[ty][tx] = (m < p.M && k0 + tx < p.K) ? p.a(z, m, k0 + tx) : 0.0f;
    Bs[ty][tx] = (k0 + ty < p.K && n < p.N) ? p.b(z, k0 + ty, n) : 0.0f;
    __syncthreads();  // the tiles are complete
#pragma unroll
    for (int k = 0; k < TILE; ++k) acc += As[ty][k] * Bs[k][tx];
    __syncthreads();  // everyone is done with them before the next step overwrites them
  }
  if (m < p.M && n < p.N) p.store(z, m, n, acc);
}

template <class P>
void launch_gemm_tiled(const P& p, int batches) {
  kc::launch("gemm_tiled", gemm_tiled<P>, dim3((p.N + TILE - 1) / TILE, (p.M + TILE - 1) / TILE, batches),
             dim3(TILE, TILE), 0, p);
}

}  // namespace study
